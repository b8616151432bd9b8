"""[[cameras]] tables: which folders hold frames and how to notice new ones."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from edge.config.base import Section, TomlPath
from edge.config.deployment import DeploymentConfig


class CameraConfig(Section):
    name: str = Field(
        min_length=1, max_length=64,
        description="The camera's name, recorded with each of its frames and events and sent in MQTT messages; "
                    "unique among the cameras, without '/', '#', '+' or control characters")
    path: TomlPath = Field(
        description="The folder the camera writes its frames into (made absolute at start); frames already "
                    "there when the daemon starts are processed as its backlog, and a folder that does not "
                    "exist yet is watched once it appears (an error for `edge run --once`)")
    recursive: bool = Field(
        default=False,
        description="Also watch the folder's sub-folders (including ones created later)")
    mode: Literal["inotify", "poll"] = Field(
        default="inotify",
        description='"inotify": react when a file is closed after writing or renamed into the folder '
                    '(local disks, SD cards); "poll": rescan every poll_interval_s and take a file once its '
                    "size and mtime have not changed for settle_s (network and FUSE mounts, where inotify "
                    "sees nothing)")
    poll_interval_s: float = Field(
        default=2.0, gt=0, le=3600,
        description='With mode = "poll": seconds between two scans of the folder')
    settle_s: float = Field(
        default=2.0, ge=0, le=3600,
        description='With mode = "poll": a file is taken once its size and mtime have not changed for this many '
                    "seconds. Also inotify's folder scans (a new sub-folder, the periodic rescan): a file "
                    "modified less than settle_s ago may still be being written, so it is left to its close "
                    "event (in a new sub-folder: checked again once it has settled)")
    rescan_interval_s: float = Field(
        default=300.0, ge=0, le=86400,
        description='With mode = "inotify": rescan the folder this often for frames inotify missed '
                    "(queue overflow, hard links, a late mount); 0 = never")
    symlinks: Literal["skip", "inside"] = Field(
        default="skip",
        description='"skip": a symbolic link is never read (logged, counted); "inside": read it when its '
                    "target is a regular file inside this camera folder")

    deployment: DeploymentConfig | None = Field(
        default=None,
        description="Where and since when this camera stands (`[cameras.deployment]`: id, latitude, longitude, "
                    "start, end, camera height, bait, habitat, ...): what the Camtrap DP export, COCO Camera "
                    "Traps export and `edge report` need; `edge check` lists what is missing")

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        """Frames are recorded by path: make it absolute so a restart from another working
        directory (or `edge run --watch relative/dir`) names the same file the same way."""
        return value.expanduser().absolute()

    @field_validator("name")
    @classmethod
    def _name_is_simple(cls, value: str) -> str:
        if any(ch in value for ch in "/#+\n\t"):
            raise ValueError("must not contain '/', '#', '+' or control characters")
        return value
