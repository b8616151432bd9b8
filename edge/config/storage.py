"""[storage] section: where the SQLite database lives."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_DATABASE = Path("/var/lib/trailcam/trailcam.db")


class StorageConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    database: Path = DEFAULT_DATABASE
    # How long a reader or the writer waits for a lock before failing (WAL makes waits rare).
    busy_timeout_s: float = Field(default=30.0, gt=0, le=600)
