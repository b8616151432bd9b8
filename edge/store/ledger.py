"""The ingest ledger: what the `frames` table says about a file, before and after it is processed.

Why its own object: the Store's one job is the frame's transaction (record a frame, count it
into a visit). Deciding whether a file needs processing at all (seen before? a standing error
here? a transient error with attempts left, and when is the next one due?) and following a
renamed file are questions *about* the rows that transaction wrote, asked by the pipeline, the
clips reader, the daemon's idle work and the retention's restart check. They live here, on the
Store's connection and write lock (`store.ledger`), so the Store keeps the counting core.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta

from edge.store.times import format_utc


@dataclass(frozen=True)
class CommittedFrame:
    """One frame row as it was committed (or as the store reads it back for a duplicate or an
    interrupted post-processing): what retention, health and metrics need, typed, so that no
    one re-reads the row the store has just written or unpacks it by position."""

    id: int
    path: str
    status: str                 # 'ok' | 'error'
    captured_at: str | None     # UTC ISO 8601 with Z
    species: str | None
    confidence: float | None = None
    processed_at: str | None = None
    camera: str | None = None
    sha256: str | None = None
    inference_ms: float | None = None
    birds: int | None = None    # birds the detector found (0: empty); None: classified whole
    # What is doubtful about captured_at (frames.time_flags); filled for a frame just recorded,
    # () when read back (COMMITTED_COLUMNS): health and metrics count the flags as they commit.
    time_flags: tuple[str, ...] = ()


# The frames columns a CommittedFrame is read from, in its field order.
COMMITTED_COLUMNS = "id, path, status, captured_at, species, confidence, processed_at, camera, sha256, inference_ms, birds"


@dataclass(frozen=True)
class Attempt:
    """Another failed try of a transient error, counted on the row already on record."""

    frame_id: int
    attempts: int
    retry_at: datetime | None  # None: attempts spent, no more tries


class Ledger:
    """The frames table as the record of what was seen, what failed and what is retried.

    Shares the Store's connection and its write transaction (`write`: BEGIN IMMEDIATE, nested
    as a savepoint inside the frame's transaction), so a supersede or an attempt counted while a
    frame is recorded commits with that frame."""

    def __init__(self, conn: sqlite3.Connection, write: Callable[[], AbstractContextManager[None]], *,
                 retry_max_attempts: int = 5, retry_backoff_s: float = 30.0):
        # retry_max_attempts >= 1 and retry_backoff_s > 0: the Store checks them before it opens
        # the database, so a bad [storage] value creates no file.
        self.conn = conn
        self._write = write
        self.retry_max_attempts = retry_max_attempts
        self.retry_backoff = timedelta(seconds=retry_backoff_s)

    # -- seen before? ---------------------------------------------------------------------------

    def lookup(self, sha256: str, path: str) -> tuple[CommittedFrame | None, bool]:
        """(the `ok` row of this content or None, whether a standing error row exists for it at
        this path), in one indexed query: the per-frame "seen before?" check."""
        ok, error_here = None, False
        for row in self.conn.execute(f"SELECT {COMMITTED_COLUMNS}, superseded_by FROM frames WHERE sha256 = ?",
                                     (sha256,)):
            frame = CommittedFrame(*row[:-1])
            if frame.status == "ok":
                ok = frame
            elif frame.path == path and row[-1] is None:
                error_here = True
        return ok, error_here

    def recorded_error(self, sha256: str, path: str, size: int | None = None, mtime: float | None = None) -> bool:
        """An error row that settles this content at this path: not superseded, and not a
        transient error with attempts left. A transient error whose attempts are spent settles
        only the same file (size and mtime): a file that changed since gets attempts anew."""
        row = self.conn.execute(
            """SELECT 1 FROM frames WHERE sha256 = ? AND path = ? AND status = 'error'
                   AND superseded_by IS NULL AND retry_at IS NULL
                   AND (attempts IS NULL OR (size IS ? AND mtime IS ?)) LIMIT 1""",
            (sha256, path, size, mtime),
        ).fetchone()
        return row is not None

    def unchanged_known(self, path: str, size: int, mtime: float) -> bool:
        """A file already recorded at this path with this size and mtime: skip without hashing.

        A transient error row with a retry due or pending does not count: that file is not
        done yet (this is what lets the backlog scan at start retry it)."""
        row = self.conn.execute(
            """SELECT 1 FROM frames WHERE path = ? AND size = ? AND mtime = ?
                   AND retry_at IS NULL AND superseded_by IS NULL LIMIT 1""",
            (path, size, mtime),
        ).fetchone()
        return row is not None

    def unfinished_frames(self, limit: int) -> list[CommittedFrame]:
        """The newest `limit` frames whose post-processing left no stored_path, newest first: what
        a crash between a commit and its move or delete may have left in the camera folder."""
        return [CommittedFrame(*row) for row in self.conn.execute(
            f"""SELECT {COMMITTED_COLUMNS} FROM frames WHERE stored_path IS NULL
                    AND (clip_id IS NULL OR clip_id IN (SELECT id FROM clips WHERE state != 'decoding'))
                    ORDER BY id DESC LIMIT ?""", (limit,))]

    # -- errors replaced, retried, abandoned ----------------------------------------------------

    def supersede_errors(self, path: str, by_frame_id: int) -> list[tuple[int, str]]:
        """Mark the standing error rows at `path` as replaced by row `by_frame_id` (a file now
        valid, found to be a copy of a frame already recorded); returns (id, processed_at) of
        each. Writes only when there is something to mark."""
        with self._write():
            return self.supersede(path, by_frame_id)

    def supersede(self, path: str, by_frame_id: int) -> list[tuple[int, str]]:
        """supersede_errors inside the caller's transaction (the frame's: the newest row at a
        path says what the file there is)."""
        rows = [(int(i), str(at)) for i, at in self.conn.execute(
            """SELECT id, processed_at FROM frames WHERE path = ? AND status = 'error'
                   AND superseded_by IS NULL AND id != ?""",
            (path, by_frame_id),
        )]
        if rows:
            marks = ",".join("?" * len(rows))
            self.conn.execute(f"UPDATE frames SET superseded_by = ?, retry_at = NULL WHERE id IN ({marks})",
                              (by_frame_id, *(i for i, _ in rows)))
        return rows

    def abandon_retries(self, path: str) -> int:
        """The file of a transient error row is gone: nothing is due any more (else `edge
        status` would count it as being retried forever)."""
        if self.conn.execute("SELECT 1 FROM frames WHERE path = ? AND retry_at IS NOT NULL LIMIT 1",
                             (path,)).fetchone() is None:
            return 0
        with self._write():
            return self.conn.execute("UPDATE frames SET retry_at = NULL WHERE path = ? AND retry_at IS NOT NULL",
                                     (path,)).rowcount

    def next_retry(self, now: datetime, attempts: int) -> datetime | None:
        """When the next try of a transiently failing frame is due: the backoff doubles with
        each failed attempt (at most an hour apart); None once attempts are spent."""
        if attempts >= self.retry_max_attempts:
            return None
        delay = min(self.retry_backoff * (2 ** min(attempts - 1, 30)), max(timedelta(hours=1), self.retry_backoff))
        return now + delay

    def record_attempt(self, sha256: str, path: str, size: int | None, mtime: float | None, error: str | None,
                       model_id: str | None, now: datetime) -> Attempt | None:
        """Another failed try of a transient error already on record for this path (inside the
        frame's transaction): the same row counts the attempt (one row per failing file, however
        often it is tried); None when there is no such row. A file that changed (size, mtime)
        since starts counting anew."""
        row = self.conn.execute(
            """SELECT id, attempts, size, mtime FROM frames WHERE sha256 = ? AND path = ? AND status = 'error'
                   AND superseded_by IS NULL AND attempts IS NOT NULL ORDER BY id DESC LIMIT 1""",
            (sha256, path),
        ).fetchone()
        if row is None:
            return None
        frame_id, attempts, stored_size, stored_mtime = row
        attempts = int(attempts) + 1 if (stored_size, stored_mtime) == (size, mtime) else 1
        retry_at = self.next_retry(now, attempts)
        self.conn.execute(
            """UPDATE frames SET attempts = ?, retry_at = ?, error = ?, processed_at = ?, size = ?, mtime = ?,
                   model_id = ? WHERE id = ?""",
            (attempts, format_utc(retry_at) if retry_at else None, error, format_utc(now), size, mtime, model_id,
             frame_id),
        )
        return Attempt(int(frame_id), attempts, retry_at)

    # -- a file renamed -------------------------------------------------------------------------

    def update_path(self, frame_id: int, path: str) -> None:
        """A recorded frame renamed (uploader temp name → final name): follow it."""
        with self._write():
            self.conn.execute("UPDATE frames SET path = ? WHERE id = ?", (path, frame_id))
