"""The `clips` table: one row per video clip file (its content's sha256), the parent of the
`frames` rows of its sampled frames (`frames.clip_id`, `frames.clip_offset_s`).

Why a parent row and one `frames` row per sampled frame: every sampled frame goes through the
frame's one transaction (Store.record: its detections, the visit, the tallies, MQTT, notifications)
exactly like a photo, so each is committed on its own and a SIGKILL in the middle of a clip loses
nothing committed. A sampled frame's key (`frames.sha256`, unique among counted rows) is
sha256("<clip sha256>@<offset in ms>"): the same clip sampled again after a restart (the same
offsets, edge/ingest/clips.py) finds its committed frames and counts none of them twice. The
clip row says whether the clip is finished (`state`: decoding | done | error), so a restart
resumes a clip in `decoding` and leaves a finished one alone; Camtrap DP makes it one media row.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from edge.store.times import format_utc

STATES = ("decoding", "done", "error")


def create_tables(conn: sqlite3.Connection) -> None:
    """The clips table and the frames columns that point to it (schema 6; idempotent)."""
    conn.execute(
        """CREATE TABLE IF NOT EXISTS clips (
               id INTEGER PRIMARY KEY,
               path TEXT NOT NULL,
               sha256 TEXT NOT NULL UNIQUE,
               camera TEXT NOT NULL,
               size INTEGER,
               mtime REAL,
               media_type TEXT NOT NULL,
               container TEXT,
               codec TEXT,
               width INTEGER,
               height INTEGER,
               duration_s REAL,
               fps REAL,
               captured_at TEXT,
               time_source TEXT,
               sample_rate REAL,
               keyframes_only INTEGER NOT NULL DEFAULT 0,
               state TEXT NOT NULL CHECK (state IN ('decoding', 'done', 'error')),
               error TEXT,
               frames_decoded INTEGER,
               frames_sampled INTEGER,
               decoded_s REAL,
               started_at TEXT NOT NULL,
               finished_at TEXT,
               stored_path TEXT
           )""")
    conn.execute("CREATE INDEX IF NOT EXISTS clips_path ON clips (path)")
    conn.execute("CREATE INDEX IF NOT EXISTS clips_camera_captured ON clips (camera, captured_at)")
    columns = {row[1] for row in conn.execute("PRAGMA table_info(frames)")}
    if "clip_id" not in columns:
        conn.execute("ALTER TABLE frames ADD COLUMN clip_id INTEGER REFERENCES clips(id)")
    if "clip_offset_s" not in columns:
        conn.execute("ALTER TABLE frames ADD COLUMN clip_offset_s REAL")
    conn.execute("CREATE INDEX IF NOT EXISTS frames_clip ON frames (clip_id, clip_offset_s) WHERE clip_id IS NOT NULL")


def sample_key(clip_sha256: str, offset_s: float) -> str:
    """The `frames.sha256` of a clip's sampled frame: its clip's content and its offset (ms)."""
    return hashlib.sha256(f"{clip_sha256}@{round(offset_s * 1000)}".encode()).hexdigest()


@dataclass(frozen=True)
class ClipRow:
    """A clip as recorded: enough to tell a finished clip from one to resume."""

    id: int
    path: str
    sha256: str
    camera: str
    size: int | None
    mtime: float | None
    state: str
    error: str | None
    captured_at: str | None
    time_source: str | None


_COLUMNS = "id, path, sha256, camera, size, mtime, state, error, captured_at, time_source"


def by_sha256(conn: sqlite3.Connection, sha256: str) -> ClipRow | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM clips WHERE sha256 = ?", (sha256,)).fetchone()
    return ClipRow(*row) if row else None


def finished_at_path(conn: sqlite3.Connection, path: str, size: int, mtime: float) -> bool:
    """A finished clip (done or error) recorded at this path with this size and mtime: skip it
    without hashing (a restart's backlog scan offers every clip in the folder again)."""
    return conn.execute("""SELECT 1 FROM clips WHERE path = ? AND size = ? AND mtime = ? AND state != 'decoding'
                           LIMIT 1""", (path, size, mtime)).fetchone() is not None


def begin(conn: sqlite3.Connection, values: dict[str, Any]) -> int:
    """Insert a clip in state `decoding` (inside the caller's transaction); returns its id."""
    values = dict(values, state="decoding")
    names = ", ".join(values)
    marks = ", ".join("?" * len(values))
    cursor = conn.execute(f"INSERT INTO clips ({names}) VALUES ({marks})", tuple(values.values()))
    # edge/store/db.py's inserted_id, inline: db imports the schema, which imports this module.
    if cursor.lastrowid is None:
        raise sqlite3.DatabaseError("the INSERT into clips added no row (sqlite3 gave no lastrowid)")
    return cursor.lastrowid


def recorded_offsets(conn: sqlite3.Connection, clip_id: int) -> set[int]:
    """The offsets (ms) of the clip's sampled frames already committed (a restart resumes after them)."""
    return {round(offset * 1000) for (offset,) in conn.execute(
        "SELECT clip_offset_s FROM frames WHERE clip_id = ? AND status = 'ok' AND clip_offset_s IS NOT NULL",
        (clip_id,))}


def finish(conn: sqlite3.Connection, clip_id: int, state: str, error: str | None, frames_decoded: int,
           frames_sampled: int, decoded_s: float | None, finished_at: str) -> None:
    """The clip is over (inside the caller's transaction): done, or error with its reason."""
    if state not in ("done", "error"):
        raise ValueError(f"a clip finishes done or error, not {state!r}")
    conn.execute("""UPDATE clips SET state = ?, error = ?, frames_decoded = ?, frames_sampled = ?, decoded_s = ?,
                        finished_at = ? WHERE id = ?""",
                 (state, error, frames_decoded, frames_sampled, decoded_s, finished_at, clip_id))


def move(conn: sqlite3.Connection, clip_id: int, path: str) -> None:
    """A recorded clip renamed (an uploader's temporary name → its final one): follow it."""
    conn.execute("UPDATE clips SET path = ? WHERE id = ?", (path, clip_id))
    conn.execute("UPDATE frames SET path = ? WHERE clip_id = ?", (path, clip_id))


class Clips:
    """The clips table as the daemon's clip reader uses it (edge/daemon/clips.py), as `store.clips`.

    Why an object of its own: a clip's row is bookkeeping around the frames that the Store's
    transaction records, not part of that transaction; it shares the Store's connection and its
    write transaction (`write`, BEGIN IMMEDIATE), and its clock for `finished_at`."""

    def __init__(self, conn: sqlite3.Connection, write: Callable[[], AbstractContextManager[None]],
                 clock: Callable[[], datetime]):
        self.conn = conn
        self._write = write
        self._clock = clock

    def by_sha256(self, sha256: str) -> ClipRow | None:
        """The clip recorded with this content, or None."""
        return by_sha256(self.conn, sha256)

    def finished_here(self, path: str, size: int, mtime: float) -> bool:
        """A clip at this path, with this size and mtime, already done or failed: skip it unhashed."""
        return finished_at_path(self.conn, path, size, mtime)

    def begin(self, values: dict[str, Any]) -> int:
        """Record a clip about to be sampled (state decoding); returns its id."""
        with self._write():
            return begin(self.conn, values)

    def offsets(self, clip_id: int) -> set[int]:
        """Offsets (ms) of the clip's sampled frames already committed."""
        return recorded_offsets(self.conn, clip_id)

    def finish(self, clip_id: int, state: str, error: str | None, frames_decoded: int, frames_sampled: int,
               decoded_s: float | None) -> None:
        """The clip is over: done, or error with its reason (the frames committed before stay)."""
        with self._write():
            finish(self.conn, clip_id, state, error, frames_decoded, frames_sampled, decoded_s,
                   format_utc(self._clock()))

    def move(self, clip_id: int, path: str) -> None:
        """A recorded clip renamed: its row and its frames' rows follow it."""
        with self._write():
            move(self.conn, clip_id, path)
