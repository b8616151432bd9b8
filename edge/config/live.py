"""[cameras.live]: how a live camera (`[[cameras]] source = "rtsp://…"`) is read, gated and stored.

Only read for a camera with a `source`; every key has a default that suits a feeder camera at
1080p and a few frames per second (docs/edge.md, "Live cameras")."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from edge.config.base import Section


class LiveConfig(Section):
    transport: Literal["tcp", "udp"] = Field(
        default="tcp",
        description='RTSP only: "tcp" (RTP interleaved in the RTSP connection: no lost packets, through NAT and '
                    'firewalls; what Frigate uses) or "udp" (lower latency on a clean network)')
    connect_timeout_s: float = Field(
        default=10.0, gt=0, le=300,
        description="Give up a connection attempt after this many seconds (then reconnect with backoff)")
    read_timeout_s: float = Field(
        default=10.0, gt=0, le=300,
        description="A connected stream that delivers nothing for this many seconds is taken as lost and reconnected")
    reconnect_min_s: float = Field(
        default=1.0, gt=0, le=3600,
        description="The first wait before reconnecting a lost or refused stream; each failed attempt doubles it")
    reconnect_max_s: float = Field(
        default=60.0, gt=0, le=3600,
        description="The longest wait between two reconnection attempts (at least reconnect_min_s)")
    motion_fps: float = Field(
        default=5.0, gt=0, le=60,
        description="Frames per second the motion gate looks at (the stream is decoded whole; the gate compares "
                    "small grey copies of this many frames a second)")
    motion_width: int = Field(
        default=96, ge=16, le=640,
        description="Width in pixels of the grey copy the motion gate compares (its height keeps the aspect); "
                    "smaller is cheaper and less sensitive to noise and small movements")
    pixel_threshold: int = Field(
        default=25, ge=1, le=255,
        description="A pixel of the grey copy has changed when it differs from the learnt background by more "
                    "than this many grey levels (0-255)")
    motion_threshold: float = Field(
        default=0.01, gt=0, le=1,
        description="Motion: at least this share of the grey copy's pixels has changed (0.01 = 1 %; a bird "
                    "at a feeder 3 m away at 1080p is a few %)")
    background_s: float = Field(
        default=5.0, gt=0, le=3600,
        description="How quickly the learnt background follows slow changes (light, shadows, a moved branch): "
                    "a change is absorbed after about this many seconds")
    sample_fps: float = Field(
        default=2.0, gt=0, le=30,
        description="During a motion episode, frames per second written to the camera's folder and classified "
                    "like stills (and counted into visits)")
    tail_s: float = Field(
        default=3.0, ge=0, le=600,
        description="An episode goes on this many seconds after the last motion (a bird sitting still at the "
                    "feeder is still sampled for that long)")
    max_episode_s: float = Field(
        default=300.0, gt=0, le=86400,
        description="An episode longer than this (a branch swaying in the wind) ends and the background is "
                    "learnt anew; motion that goes on starts a new episode")
    queue_frames: int = Field(
        default=8, ge=1, le=1000,
        description="Frames held in memory between the stream reader and the writer; when it is full (the "
                    "disk is slow) further frames are dropped and counted, never queued without limit")
    max_pending: int = Field(
        default=50, ge=1, le=100000,
        description="Frames of this camera written but not yet processed (the detector cannot keep up, or "
                    "processing is paused for low disk space) above which new ones are dropped and counted")
    jpeg_quality: int = Field(
        default=90, ge=30, le=100,
        description="JPEG quality of the frames written")
    keep_empty: bool = Field(
        default=False,
        description="Keep the written frames in which nothing was counted (default: removed right after they "
                    "are recorded; their rows stay). Frames with a bird follow [retention]")
    keep_days: float | None = Field(
        default=30.0, gt=0,
        description="Remove this camera's recorded frames older than this many days from its folder (rows, "
                    "visits and counts stay; with [retention] archive they are already gone). Unset: keep them")

    @model_validator(mode="after")
    def _backoff_order(self) -> LiveConfig:
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be >= reconnect_min_s")
        return self
