"""A person releases a repeat place (`edge repeats release ID`, the web app's Repeats page): the
writing connection and the one transaction. Apart from edge/store/repeats.py because it opens the
database (db → schema → repeats), which the daemon-side memory never does."""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from edge.detect.repeats import RELEASED
from edge.store.db import StoreError, connect, immediate, schema_version
from edge.store.repeats import RepeatError, get_place, has_tables
from edge.store.schema import SCHEMA_VERSION
from edge.store.times import format_utc

log = logging.getLogger("edge.store.repeats")


def open_writer(path: Any, busy_timeout_s: float = 30.0) -> sqlite3.Connection:
    """A writing connection for a release (the CLI, the web app): a database of the current schema
    that has the places; the daemon migrates, this never does. Raises StoreError."""
    if not Path(path).exists():
        raise StoreError(f"{path}: database not found")
    conn = connect(Path(path), busy_timeout_s=busy_timeout_s)
    version = schema_version(sqlite_utils.Database(conn)) or 0
    if version != SCHEMA_VERSION or not has_tables(conn):
        conn.close()
        raise StoreError(f"{path}: schema version {version} without repeat places: "
                         + ("upgrade trailcam" if version > SCHEMA_VERSION else
                            "start the daemon once so that it migrates the database"))
    return conn


@dataclass(frozen=True)
class Release:
    """What `release` did: the place as it is now, and whether it was released before already."""

    place: dict[str, Any]
    already: bool


def release(conn: sqlite3.Connection, place_id: int, who: str, now: datetime) -> Release:
    """A person says birds are at this place: it is released (from any state) and never suppressed
    again, in one write transaction. Detections suppressed before stay recorded as they were (a
    person who wants them counted reviews those frames). Raises RepeatError for an unknown id."""
    with immediate(conn):
        found = get_place(conn, place_id)
        if found is None:
            raise RepeatError(f"no repeat place {place_id} (`edge repeats list --state all` lists them)")
        if found["state"] == RELEASED:
            return Release(found, True)
        conn.execute("UPDATE repeat_places SET state = ?, released_at = ?, released_by = ? WHERE id = ?",
                     (RELEASED, format_utc(now), who, place_id))
        released = get_place(conn, place_id)
    assert released is not None
    log.info("repeat place %d of camera %s released by %s (was %s after %d detections)", place_id,
             released["camera"], who, found["state"], found["repeats"])
    return Release(released, False)


__all__ = ["Release", "open_writer", "release"]
