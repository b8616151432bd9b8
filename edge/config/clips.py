"""[clips] section: video clips in the camera folders (MP4, MOV, AVI; edge/ingest/clips.py decodes
them, edge/daemon/clips.py runs each sampled frame through the one frame analysis)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from edge.config.base import Section


class ClipsConfig(Section):
    enabled: bool = Field(
        default=True,
        description="Count video clips (.mp4, .mov, .avi) in the camera folders: frames are sampled and each goes "
                    "through the same analysis as a photo; one clip is one visit or continues the camera's open "
                    "one. Needs the `video` extra (PyAV); without it a clip is skipped with a log line and taken "
                    "at the next start once PyAV is installed. false: clips are left alone")
    sample_rate: float = Field(
        default=2.0, gt=0, le=30,
        description="Frames analysed per second of video (the first frame at or after each 1/rate step); "
                    "each costs one frame analysis, like a photo")
    keyframes_only: bool = Field(
        default=False,
        description="Decode only the clip's keyframes (at most sample_rate of them a second): far cheaper on a "
                    "slow device, but a camera writing a keyframe every few seconds gives that few samples")
    max_samples: int = Field(
        default=600, ge=1, le=100000,
        description="At most this many frames analysed per clip (a long recording stops being sampled there, "
                    "and the clip says so); bounds the work one file can make")
    container_time: Literal["local", "utc"] = Field(
        default="local",
        description='How a container\'s creation_time is read: "local" as the camera\'s wall clock in its '
                    "zone (what trail and feeder cameras write, whatever the MP4 standard says; read like an EXIF "
                    'time without offset), "utc" as UTC (phones, cameras that follow the standard). A time with '
                    "its own offset (QuickTime's creationdate) is read with it either way")
