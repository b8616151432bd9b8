"""The outbox: MQTT messages waiting for the broker, stored in the daemon's SQLite database.

Why a table and not paho's in-memory queue: a message is written in the same transaction as
the frame result that caused it, so a crash, a power cut or a broker that is away for days
loses nothing, and counting never waits for the network. The publisher (edge/publish/mqtt.py) reads
rows in id order and deletes a row only after the broker's PUBACK: at-least-once delivery.

The outbox is bounded (`[mqtt] outbox_max_rows`) so months without a broker cannot fill the
SD card. When the bound is hit, queued `counts` snapshots are coalesced first (a retained
snapshot is replaced by the next one of the same topic anyway, so only the newest matters);
only then are the oldest events dropped. Every drop is counted in `outbox_stats` (kept across
restarts, shown by `edge status`) and logged.

Functions take a `sqlite3.Connection` or a sqlite-utils `Database`. `enqueue` runs inside the
caller's open transaction and never commits: the frame's transaction decides.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from edge.store.tables import has_table
from edge.store.times import format_utc

log = logging.getLogger(__name__)

OUTBOX_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        created_at TEXT NOT NULL,
        topic TEXT NOT NULL,
        payload TEXT NOT NULL,
        qos INTEGER NOT NULL DEFAULT 1,
        retain INTEGER NOT NULL DEFAULT 0,
        kind TEXT NOT NULL CHECK (kind IN ('event', 'counts'))
    )
    """,
    "CREATE INDEX IF NOT EXISTS outbox_kind_topic ON outbox (kind, topic)",
    """
    CREATE TABLE IF NOT EXISTS outbox_stats (
        key TEXT PRIMARY KEY,
        value INTEGER NOT NULL DEFAULT 0
    )
    """,
)

STAT_KEYS = ("coalesced_counts", "dropped_events", "dropped_counts")


@dataclass(frozen=True)
class OutboxRow:
    id: int
    created_at: str
    topic: str
    payload: str
    qos: int
    retain: bool
    kind: str


@dataclass(frozen=True)
class EnqueueResult:
    """What one enqueue did, so the caller can log or surface it."""

    inserted: int
    coalesced_counts: int = 0
    dropped_events: int = 0
    dropped_counts: int = 0

    @property
    def lost_anything(self) -> bool:
        return bool(self.dropped_events or self.dropped_counts)


def _conn(db_or_conn: Any) -> sqlite3.Connection:
    """The raw connection of a sqlite-utils Database, or the connection itself."""
    return getattr(db_or_conn, "conn", db_or_conn)


def create_table(db_or_conn: Any) -> None:
    """Create the outbox and its counters if absent (the store calls this in its migrations)."""
    conn = _conn(db_or_conn)
    for statement in OUTBOX_SCHEMA:
        conn.execute(statement)


def enqueue(
    db_or_conn: Any,
    messages: Iterable[OutboxMessage],
    max_rows: int,
    *,
    now: datetime | None = None,
) -> EnqueueResult:
    """Insert messages in order, then enforce the bound. Never commits (caller's transaction)."""
    if max_rows < 1:
        raise ValueError(f"outbox max_rows must be >= 1, got {max_rows}")
    conn = _conn(db_or_conn)
    created_at = format_utc(now or datetime.now(UTC))
    rows = [(created_at, m.topic, m.payload, m.qos, int(m.retain), m.kind) for m in messages]
    if rows:
        conn.executemany(
            "INSERT INTO outbox (created_at, topic, payload, qos, retain, kind) VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
    result = _enforce_bound(conn, max_rows, inserted=len(rows))
    if result.coalesced_counts or result.lost_anything:
        _bump_stats(conn, result)
        if result.lost_anything:
            log.warning(
                "MQTT outbox full (%d rows): dropped %d oldest event message(s) and %d counts "
                "snapshot(s) after coalescing %d snapshot(s); raise [mqtt] outbox_max_rows or "
                "restore the broker connection",
                max_rows, result.dropped_events, result.dropped_counts, result.coalesced_counts,
            )
        else:
            log.info("MQTT outbox full: coalesced %d queued counts snapshot(s)", result.coalesced_counts)
    return result


def _upper_bound(conn: sqlite3.Connection) -> int:
    """max(id) - min(id) + 1 >= number of rows, in O(log n): skips COUNT(*) while far from full."""
    low, high = conn.execute("SELECT min(id), max(id) FROM outbox").fetchone()
    return 0 if low is None else high - low + 1


def _enforce_bound(conn: sqlite3.Connection, max_rows: int, inserted: int) -> EnqueueResult:
    if _upper_bound(conn) <= max_rows:
        return EnqueueResult(inserted)
    excess = depth(conn) - max_rows
    if excess <= 0:
        return EnqueueResult(inserted)
    # 1. Keep only the newest queued snapshot of each counts topic. All superseded snapshots
    #    go at once, not just `excess` of them: it frees room for many frames, not one.
    coalesced = conn.execute(
        """
        DELETE FROM outbox
        WHERE kind = 'counts'
          AND id NOT IN (SELECT max(id) FROM outbox WHERE kind = 'counts' GROUP BY topic)
        """
    ).rowcount
    excess -= coalesced
    # 2. Then the oldest events; 3. then (an outbox of nothing but distinct snapshots) the oldest rows.
    dropped_events = dropped_counts = 0
    if excess > 0:
        dropped_events = conn.execute(
            "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE kind = 'event' ORDER BY id LIMIT ?)",
            (excess,),
        ).rowcount
        excess -= dropped_events
    if excess > 0:
        dropped_counts = conn.execute(
            "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT ?)", (excess,)
        ).rowcount
    return EnqueueResult(inserted, coalesced, dropped_events, dropped_counts)


def _bump_stats(conn: sqlite3.Connection, result: EnqueueResult) -> None:
    conn.execute(OUTBOX_SCHEMA[2])  # a store that created only `outbox` still gets its counters
    for key in STAT_KEYS:
        amount = getattr(result, key)
        if amount:
            conn.execute(
                "INSERT INTO outbox_stats (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = value + excluded.value",
                (key, amount),
            )


def peek(db_or_conn: Any, limit: int = 100, after_id: int = 0) -> list[OutboxRow]:
    """The oldest rows with id > after_id, in id (= enqueue) order; removes nothing."""
    conn = _conn(db_or_conn)
    cursor = conn.execute(
        "SELECT id, created_at, topic, payload, qos, retain, kind FROM outbox "
        "WHERE id > ? ORDER BY id LIMIT ?",
        (after_id, limit),
    )
    return [OutboxRow(r[0], r[1], r[2], r[3], r[4], bool(r[5]), r[6]) for r in cursor]


def delete(db_or_conn: Any, ids: Sequence[int]) -> int:
    """Remove delivered rows (after PUBACK). Commits unless the caller had a transaction open."""
    if not ids:
        return 0
    conn = _conn(db_or_conn)
    had_transaction = conn.in_transaction
    deleted = 0
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        marks = ",".join("?" * len(chunk))
        deleted += conn.execute(f"DELETE FROM outbox WHERE id IN ({marks})", chunk).rowcount
    if not had_transaction and conn.in_transaction:
        conn.commit()
    return deleted


def depth(db_or_conn: Any) -> int:
    """Rows waiting for the broker."""
    return _conn(db_or_conn).execute("SELECT count(*) FROM outbox").fetchone()[0]


def stats(db_or_conn: Any) -> dict[str, int]:
    """Counters of what the bound coalesced or dropped since the database was created, plus depth."""
    conn = _conn(db_or_conn)
    values = {key: 0 for key in STAT_KEYS}
    if has_table(conn, "outbox_stats"):
        values.update(dict(conn.execute("SELECT key, value FROM outbox_stats").fetchall()))
    values["depth"] = depth(conn)
    return values


KINDS: tuple[str, ...] = ("event", "counts")

@dataclass(frozen=True)
class OutboxMessage:
    """One row of the outbox: a message waiting for the broker's PUBACK."""

    topic: str
    payload: str
    qos: int = 1
    retain: bool = False
    kind: str = "event"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"outbox message kind must be one of {KINDS}, got {self.kind!r}")
        if self.qos not in (0, 1, 2):
            raise ValueError(f"qos must be 0, 1 or 2, got {self.qos!r}")
        if not self.topic or self.topic.startswith("/") or any(c in self.topic for c in "+#\0"):
            raise ValueError(f"invalid relative MQTT topic {self.topic!r}")
