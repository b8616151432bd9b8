"""[storage] section: where the SQLite database lives, and when a frame's error is final."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from edge.config.base import SECTION_CONFIG, TomlPath

DEFAULT_DATABASE = Path("/var/lib/trailcam/trailcam.db")


class StorageConfig(BaseModel):
    model_config = SECTION_CONFIG

    database: TomlPath = DEFAULT_DATABASE
    # How long a reader or the writer waits for a lock before failing (WAL makes waits rare).
    busy_timeout_s: float = Field(default=30.0, gt=0, le=600)
    # A frame that failed for a reason that may pass (unreadable: permissions, I/O error, a
    # file vanishing mid-read; cannot stat) is tried again, this many tries in all (1 = never
    # again), the first retry retry_backoff_s after the failure, each later one twice as long
    # after the one before (at most an hour). Corrupt, truncated or non-image files are final.
    retry_max_attempts: int = Field(default=5, ge=1, le=100)
    retry_backoff_s: float = Field(default=30.0, gt=0, le=86400)
