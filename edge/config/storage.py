"""[storage] section: where the SQLite database lives."""

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
