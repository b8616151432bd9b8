"""The outbox on a real SQLite file: order, the caller's transaction, the bound and its counters."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlite_utils

from edge.store import outbox
from edge.store.outbox import OutboxMessage


def event(n: int) -> OutboxMessage:
    return OutboxMessage("events", f'{{"n":{n}}}', kind="event")


def snapshot(topic: str, n: int) -> OutboxMessage:
    return OutboxMessage(topic, f'{{"n":{n}}}', retain=True, kind="counts")


@pytest.fixture
def db(tmp_path: Path) -> sqlite_utils.Database:
    database = sqlite_utils.Database(tmp_path / "edge.db")
    database.execute("PRAGMA journal_mode=WAL")
    outbox.create_table(database)
    return database


def reopen(db: sqlite_utils.Database) -> sqlite3.Connection:
    """A second connection sees only what was committed."""
    return sqlite3.connect(db.conn.execute("PRAGMA database_list").fetchone()[2])


def test_enqueue_keeps_order_and_fields(db: sqlite_utils.Database) -> None:
    with db.atomic():
        outbox.enqueue(db, [event(1), snapshot("counts", 1), event(2)], max_rows=100)
    rows = outbox.peek(reopen(db))
    assert [(r.topic, r.payload, r.retain, r.kind, r.qos) for r in rows] == [
        ("events", '{"n":1}', False, "event", 1),
        ("counts", '{"n":1}', True, "counts", 1),
        ("events", '{"n":2}', False, "event", 1),
    ]
    assert rows[0].created_at.endswith("Z")
    assert outbox.peek(db, limit=1, after_id=rows[0].id) == [rows[1]]


def test_enqueue_never_commits_the_callers_transaction(db: sqlite_utils.Database) -> None:
    with pytest.raises(RuntimeError):
        with db.atomic():
            outbox.enqueue(db, [event(1)], max_rows=100)
            assert outbox.depth(db) == 1
            assert outbox.depth(reopen(db)) == 0  # not visible before the frame commits
            raise RuntimeError("frame failed")
    assert outbox.depth(db) == 0


def test_enqueue_with_plain_sqlite3_connection(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "plain.db")
    outbox.create_table(conn)
    outbox.enqueue(conn, [event(1)], max_rows=10)
    assert conn.in_transaction
    conn.rollback()
    assert outbox.depth(conn) == 0


def test_delete_after_ack_removes_only_those_rows(db: sqlite_utils.Database) -> None:
    with db.atomic():
        outbox.enqueue(db, [event(n) for n in range(5)], max_rows=100)
    publisher_conn = reopen(db)
    ids = [r.id for r in outbox.peek(publisher_conn)]
    assert outbox.delete(publisher_conn, ids[:2]) == 2
    assert not publisher_conn.in_transaction
    assert [r.id for r in outbox.peek(reopen(db))] == ids[2:]
    assert outbox.delete(publisher_conn, ids[:2]) == 0  # an ack for a coalesced/dropped row


def test_bound_coalesces_counts_before_dropping_events(db: sqlite_utils.Database) -> None:
    with db.atomic():
        outbox.enqueue(db, [event(1), snapshot("counts", 1), snapshot("counts/a", 1)], max_rows=6)
        outbox.enqueue(db, [event(2), snapshot("counts", 2), snapshot("counts/a", 2)], max_rows=6)
        result = outbox.enqueue(db, [event(3), snapshot("counts", 3)], max_rows=6)
    assert (result.coalesced_counts, result.dropped_events, result.dropped_counts) == (3, 0, 0)
    rows = [(r.topic, r.payload) for r in outbox.peek(db)]
    assert rows == [
        ("events", '{"n":1}'),
        ("events", '{"n":2}'),
        ("counts/a", '{"n":2}'),
        ("events", '{"n":3}'),
        ("counts", '{"n":3}'),
    ]
    assert outbox.stats(db) == {"coalesced_counts": 3, "dropped_events": 0, "dropped_counts": 0, "depth": 5}


def test_bound_drops_oldest_events_when_coalescing_is_not_enough(
    db: sqlite_utils.Database, caplog: pytest.LogCaptureFixture
) -> None:
    with db.atomic():
        outbox.enqueue(db, [event(n) for n in range(4)], max_rows=4)
        result = outbox.enqueue(db, [event(4), snapshot("counts", 1)], max_rows=4)
    assert (result.dropped_events, result.dropped_counts) == (2, 0)
    assert [r.payload for r in outbox.peek(db)] == ['{"n":2}', '{"n":3}', '{"n":4}', '{"n":1}']
    assert "dropped 2 oldest event" in caplog.text
    assert outbox.stats(reopen(db))["dropped_events"] == 2


def test_bound_on_distinct_snapshots_only_drops_oldest(db: sqlite_utils.Database) -> None:
    with db.atomic():
        result = outbox.enqueue(db, [snapshot(f"counts/{n}", n) for n in range(5)], max_rows=3)
    assert result.dropped_counts == 2
    assert [r.topic for r in outbox.peek(db)] == ["counts/2", "counts/3", "counts/4"]


def test_bound_must_be_positive(db: sqlite_utils.Database) -> None:
    with pytest.raises(ValueError, match="max_rows"):
        outbox.enqueue(db, [event(1)], max_rows=0)
