"""Where a station's pictures live: each camera's folder and the archive, as the daemon was
configured when it last started (schema 6, `picture_folders`).

Why in the database: the frames table stores each frame's path, but a path is served only when
it lies inside a folder the station owns (edge/web/images.py). `edge web --db edge.db` started
without the configuration knew no folder and answered every picture with 404. The daemon records
its folders at start, so the database alone says where its pictures may be read; a folder once
used stays listed (old frames still lie there), its `recorded_at` saying when it was last
configured. Only absolute paths are recorded and read back.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from edge.store.times import format_utc

KINDS = ("camera", "archive")

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS picture_folders (
           path TEXT PRIMARY KEY,
           kind TEXT NOT NULL CHECK (kind IN ('camera', 'archive')),
           name TEXT,
           recorded_at TEXT NOT NULL
       )""",
)


@dataclass(frozen=True)
class PictureFolder:
    """A folder pictures may be read from: a camera's (name = the camera) or the archive (name None)."""

    kind: str
    name: str | None
    path: Path


def create_tables(conn: sqlite3.Connection) -> None:
    """Schema 6's `picture_folders` (edge/store/schema.py); idempotent."""
    for statement in SCHEMA:
        conn.execute(statement)


def record(conn: sqlite3.Connection, folders: Iterable[PictureFolder], now: datetime) -> int:
    """Upsert the configured folders inside the caller's transaction; returns how many."""
    rows = [(str(Path(f.path).absolute()), f.kind, f.name, format_utc(now)) for f in folders]
    for _path, kind, _name, _at in rows:
        if kind not in KINDS:
            raise ValueError(f"picture folder kind must be one of {KINDS}, got {kind!r}")
    create_tables(conn)  # a schema-6 database from before the table existed
    conn.executemany("""INSERT INTO picture_folders (path, kind, name, recorded_at) VALUES (?, ?, ?, ?)
                        ON CONFLICT (path) DO UPDATE SET kind = excluded.kind, name = excluded.name,
                                                         recorded_at = excluded.recorded_at""", rows)
    return len(rows)


def read(conn: sqlite3.Connection) -> list[PictureFolder]:
    """Every recorded folder, cameras first; empty before the table existed (older databases)."""
    try:
        rows = conn.execute("SELECT kind, name, path FROM picture_folders ORDER BY kind DESC, name, path").fetchall()
    except sqlite3.OperationalError:
        return []
    return [PictureFolder(kind, name, Path(path)) for kind, name, path in rows if Path(path).is_absolute()]
