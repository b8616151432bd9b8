"""[storage] section: where the SQLite database lives, and when a frame's error is final."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from edge.config.base import Section, TomlPath

DEFAULT_DATABASE = Path("/var/lib/trailcam/trailcam.db")


class StorageConfig(Section):
    database: TomlPath = Field(
        default=DEFAULT_DATABASE,
        description="The SQLite database (frames, predictions, events, daily tallies, MQTT outbox); "
                    "status.json is written beside it. `--db` overrides it")
    busy_timeout_s: float = Field(
        default=30.0, gt=0, le=600,
        description="How long a reader or the writer waits for a database lock before failing (WAL makes "
                    "waits rare)")
    retry_max_attempts: int = Field(
        default=5, ge=1, le=100,
        description="Tries in all (1 = never again) for a frame that failed for a reason that may pass "
                    "(unreadable: permissions, an I/O error, a file vanishing mid-read). Corrupt, truncated "
                    "or non-image files are final at once")
    retry_backoff_s: float = Field(
        default=30.0, gt=0, le=86400,
        description="Delay before the first retry of such a frame; each later retry waits twice as long as "
                    "the one before (capped at an hour, or at retry_backoff_s when that is longer)")
