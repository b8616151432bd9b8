"""Fixtures for the field-operation tests: a real database, made by the real edge.store.Store.

Retention and health are tested standalone on it (the daemon-level tests run the whole
daemon). The helpers write rows the way the store does: UTC times through
edge.capture_time.format_utc (milliseconds and `Z`), predictions ranked from 1, and only
named columns, so that columns a later schema adds keep their defaults.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from edge.store import outbox
from edge.store.outbox import OutboxMessage
from edge.store.times import format_utc, parse_utc
from edge.store.writer import Store


@pytest.fixture
def field_store(tmp_path: Path) -> Store:
    """The writer on state/edge.db, schema created by its own migrations."""
    (tmp_path / "state").mkdir()
    store = Store(tmp_path / "state" / "edge.db")
    yield store
    store.close()


@pytest.fixture
def field_db(field_store: Store) -> sqlite_utils.Database:
    """The store's own connection, as the daemon hands it to retention."""
    return field_store.db


def utc_text(moment: str | datetime) -> str:
    """A time as the store writes it (`2026-11-28T10:00:00.000Z`), from text or a datetime."""
    return format_utc(parse_utc(moment) if isinstance(moment, str) else moment)


def insert(db: sqlite_utils.Database, table: str, row: dict[str, Any]) -> int:
    """INSERT only the named columns (the others keep their defaults); returns the rowid."""
    names = ", ".join(row)
    marks = ", ".join("?" * len(row))
    return db.execute(f"INSERT INTO {table} ({names}) VALUES ({marks})", tuple(row.values())).lastrowid


def add_frame(db: sqlite_utils.Database, path: Path | str, *, status: str = "ok", species: str | None = "robin",
              confidence: float = 0.9, captured_at: str | datetime = "2026-11-28T10:00:00Z",
              processed_at: str | datetime | None = None, error: str | None = None) -> int:
    """Insert one committed frame row and its top-1 prediction (as edge.store would); returns its id."""
    captured = utc_text(captured_at)
    ok = status == "ok"
    with db.atomic():
        frame_id = insert(db, "frames", {
            "path": str(path),
            "sha256": hashlib.sha256(f"{path}\0{captured}".encode()).hexdigest(),
            "camera": "cam1",
            "size": 10,
            "captured_at": captured,
            "time_source": "exif",
            "processed_at": utc_text(processed_at) if processed_at is not None else captured,
            "status": status,
            "error": error,
            "model_id": "test-model",
            "inference_ms": 12.0,
            "species": species if ok else None,
            "confidence": confidence if ok else None,
        })
        if ok:
            insert(db, "predictions", {"frame_id": frame_id, "rank": 1, "label": species, "score": confidence})
    return frame_id


def add_event(db: sqlite_utils.Database, uid: str, *, started_at: str | datetime, ended_at: str | datetime,
              frame_count: int, camera: str = "cam1", species: str = "robin", state: str = "closed") -> int:
    """Insert one event row (times as the store writes them); returns its id."""
    with db.atomic():
        return insert(db, "events", {"uid": uid, "camera": camera, "species": species,
                                     "started_at": utc_text(started_at), "ended_at": utc_text(ended_at),
                                     "frame_count": frame_count, "state": state})


def add_tally(db: sqlite_utils.Database, day: str, species: str, *, events: int, frames: int,
              camera: str = "cam1") -> None:
    """Insert one daily_tallies row."""
    with db.atomic():
        insert(db, "daily_tallies", {"day": day, "camera": camera, "species": species,
                                     "events": events, "frames": frames})


def add_outbox_message(db: sqlite_utils.Database, topic: str, payload: str, *, kind: str = "event",
                       now: datetime | None = None) -> None:
    """Queue one MQTT message through edge.outbox itself (its created_at, its columns)."""
    with db.atomic():
        outbox.enqueue(db, [OutboxMessage(topic, payload, kind=kind)], max_rows=1_000_000, now=now)


def set_outbox_stat(db: sqlite_utils.Database, key: str, value: int) -> None:
    """Set one of edge.outbox's cumulative counters (outbox_stats, created by the store)."""
    with db.atomic():
        db.execute("INSERT INTO outbox_stats (key, value) VALUES (?, ?) "
                   "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))
