"""[[cameras]] tables: which folders hold frames and how to notice new ones."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from edge.config.base import SECTION_CONFIG, TomlPath


class CameraConfig(BaseModel):
    model_config = SECTION_CONFIG

    name: str = Field(min_length=1, max_length=64)
    path: TomlPath
    recursive: bool = False
    # inotify: react to close-after-write and rename-into (local disks, SD cards).
    # poll: rescan every poll_interval_s and wait until a file's size and mtime have not
    # changed for settle_s (network and FUSE mounts, where inotify sees nothing).
    mode: Literal["inotify", "poll"] = "inotify"
    poll_interval_s: float = Field(default=2.0, gt=0, le=3600)
    # settle_s also applies to inotify mode's folder scans (a new sub-folder, the periodic
    # rescan): a file modified less than settle_s ago may still be being written, so it is left
    # to its close event (new sub-folder: re-checked once it has settled).
    settle_s: float = Field(default=2.0, ge=0, le=3600)
    rescan_interval_s: float = Field(
        default=300.0, ge=0, le=86400,
        description="inotify: rescan the folder this often for frames inotify missed "
                    "(queue overflow, hard links, a late mount); 0 = never")
    symlinks: Literal["skip", "inside"] = Field(
        default="skip",
        description='"skip": a symbolic link is never read (logged, counted); "inside": read it when its '
                    "target is a regular file inside this camera folder")

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
