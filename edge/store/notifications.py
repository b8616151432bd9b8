"""The notification queue: push notifications waiting for their target, in the daemon's SQLite database.

Why a table, as for the MQTT outbox (edge/store/outbox.py): a visit's notification is written in
the same transaction as the frame that made it worth one, so a crash or a power cut loses
nothing and a target that is away for hours gets it later; sending never holds up counting.
One row per (notification, target): a target that failed is retried alone, and one that
succeeded is never sent the same notification again.

A row is `queued` until it ends `sent`, `expired` (not delivered within `[notify] max_age_s`
of falling due) or `dropped` (`outcome` says why: `review` — the visit was reviewed "not a
bird" or corrected before it went out; `quiet_hours`; `target_removed` — its URL is no longer
configured). Ended rows are kept a while (cooldowns and "already notified" read them) and
pruned after PRUNE_DAYS; the cumulative figures `edge status` and the metrics show are in
`notification_stats`, kept across restarts and pruning.

The rules that decide what to queue are edge/alerts/rules.py's; the delivery is edge/alerts/delivery.py's.
Functions here take a `sqlite3.Connection`; writes run inside the caller's transaction.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from edge.store.times import format_utc

STATES = ("queued", "sent", "expired", "dropped")
STAT_KEYS = ("queued_total", "sent", "failed_attempts", "expired", "dropped_review", "dropped_quiet_hours",
             "dropped_target_removed", "suppressed_cooldown")
PRUNE_DAYS = 400  # a year and a bit: first-of-year checks read the store's visits, not this table

SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS notifications (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        created_at TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('visit', 'digest')),
        key TEXT NOT NULL,
        target TEXT NOT NULL,
        event_id INTEGER,
        species TEXT,
        day TEXT,
        reasons TEXT NOT NULL DEFAULT '',
        state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'sent', 'expired', 'dropped')),
        due_at TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        done_at TEXT,
        outcome TEXT
    )
    """,
    "CREATE UNIQUE INDEX IF NOT EXISTS notifications_key ON notifications (key, target)",
    "CREATE INDEX IF NOT EXISTS notifications_due ON notifications (due_at) WHERE state = 'queued'",
    "CREATE INDEX IF NOT EXISTS notifications_species ON notifications (species, created_at)",
    """
    CREATE TABLE IF NOT EXISTS notification_stats (
        key TEXT PRIMARY KEY,
        value INTEGER NOT NULL DEFAULT 0
    )
    """,
)


@dataclass(frozen=True)
class Notification:
    """One queued row: what to send to which target."""

    id: int
    created_at: str
    kind: str          # visit | digest
    key: str           # visit:<event id>:<species> | digest:<day>
    target: str        # the target's id (edge.alerts.targets.target_id), never the URL itself
    event_id: int | None
    species: str | None
    day: str | None
    reasons: tuple[str, ...]
    due_at: str
    attempts: int


COLUMNS = "id, created_at, kind, key, target, event_id, species, day, reasons, due_at, attempts"


def create_tables(conn: Any) -> None:
    """Schema 6's notification tables (edge/store/schema.py); idempotent."""
    for statement in SCHEMA:
        conn.execute(statement)


def visit_key(event_id: int, species: str) -> str:
    return f"visit:{int(event_id)}:{species}"


def digest_key(day: str) -> str:
    return f"digest:{day}"


def exists(conn: sqlite3.Connection, key: str) -> bool:
    """Whether a notification with this key was ever queued (any state, any target)."""
    return conn.execute("SELECT 1 FROM notifications WHERE key = ? LIMIT 1", (key,)).fetchone() is not None


def last_for_species(conn: sqlite3.Connection, species: str) -> str | None:
    """When the species' latest visit notification that was not dropped or expired was queued
    (the cooldown's reference)."""
    row = conn.execute("""SELECT MAX(created_at) FROM notifications WHERE species = ? AND kind = 'visit'
                              AND state IN ('queued', 'sent')""", (species,)).fetchone()
    return row[0] if row else None


def enqueue(conn: sqlite3.Connection, *, kind: str, key: str, targets: list[str], now: datetime,
            event_id: int | None = None, species: str | None = None, day: str | None = None,
            reasons: tuple[str, ...] = ()) -> list[int]:
    """One row per target, inside the caller's transaction (never commits); a key already
    queued for a target is left as it is. Returns the new rows' ids."""
    ids = []
    stamp = format_utc(now)
    for target in targets:
        cursor = conn.execute(
            """INSERT INTO notifications (created_at, kind, key, target, event_id, species, day, reasons, due_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key, target) DO NOTHING""",
            (stamp, kind, key, target, event_id, species, day, ",".join(reasons), stamp))
        if cursor.rowcount:
            # An INSERT that added a row sets lastrowid (edge.store.db.inserted_id, not imported:
            # edge.store.db imports the schema, which imports this module).
            if cursor.lastrowid is None:
                raise sqlite3.DatabaseError("the notification INSERT added no row (no lastrowid)")
            ids.append(cursor.lastrowid)
    if ids:
        bump(conn, "queued_total", len(ids))
    return ids


def bump(conn: sqlite3.Connection, key: str, by: int = 1) -> None:
    conn.execute("""INSERT INTO notification_stats (key, value) VALUES (?, ?)
                    ON CONFLICT (key) DO UPDATE SET value = value + excluded.value""", (key, by))


def due(conn: sqlite3.Connection, now: datetime, limit: int = 50) -> list[Notification]:
    """Queued rows due by `now`, oldest due first."""
    return [_row(r) for r in conn.execute(
        f"SELECT {COLUMNS} FROM notifications WHERE state = 'queued' AND due_at <= ? ORDER BY due_at, id LIMIT ?",
        (format_utc(now), limit))]


def next_due(conn: sqlite3.Connection) -> str | None:
    """When the next queued row falls due (None: nothing queued)."""
    row = conn.execute("SELECT MIN(due_at) FROM notifications WHERE state = 'queued'").fetchone()
    return row[0] if row else None


def _row(row: tuple) -> Notification:
    values = list(row)
    values[8] = tuple(r for r in (values[8] or "").split(",") if r)
    return Notification(*values)


def finish(conn: sqlite3.Connection, row_id: int, state: str, now: datetime, outcome: str | None = None,
           error: str | None = None) -> None:
    """End a row (sent | expired | dropped) and count it, in the caller's transaction."""
    if state not in STATES[1:]:
        raise ValueError(f"not a final state: {state}")
    changed = conn.execute("""UPDATE notifications SET state = ?, done_at = ?, outcome = ?,
                                  last_error = COALESCE(?, last_error) WHERE id = ? AND state = 'queued'""",
                           (state, format_utc(now), outcome, error, row_id)).rowcount
    if changed:
        bump(conn, f"dropped_{outcome}" if state == "dropped" else state)


def postpone(conn: sqlite3.Connection, row_id: int, until: datetime, *, failed: bool, error: str | None = None) -> None:
    """Try again at `until`: after a failed try (counted) or past quiet hours."""
    conn.execute("""UPDATE notifications SET due_at = ?, attempts = attempts + ?, last_error = COALESCE(?, last_error)
                        WHERE id = ? AND state = 'queued'""", (format_utc(until), 1 if failed else 0, error, row_id))
    if failed:
        bump(conn, "failed_attempts")


def prune(conn: sqlite3.Connection, now: datetime) -> int:
    """Forget ended rows older than PRUNE_DAYS (the cumulative figures stay)."""
    cutoff = format_utc(now - timedelta(days=PRUNE_DAYS))
    return conn.execute("DELETE FROM notifications WHERE state != 'queued' AND created_at < ?", (cutoff,)).rowcount


def figures(conn: sqlite3.Connection) -> dict[str, int]:
    """What `edge status` and the metrics show: `queued` now (rows, one per target) and the
    cumulative counts of `notification_stats`. Zeros on a database without the tables."""
    result = {"queued": 0, **{key: 0 for key in STAT_KEYS}}
    try:
        result["queued"] = int(conn.execute("SELECT COUNT(*) FROM notifications WHERE state = 'queued'").fetchone()[0])
        result.update({k: int(v) for k, v in conn.execute("SELECT key, value FROM notification_stats")})
    except sqlite3.OperationalError:
        pass
    return result
