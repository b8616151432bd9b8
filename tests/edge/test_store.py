"""The database file itself: WAL, busy timeout, schema version and migrations, refusal of a
database from a newer trailcam, read-only readers."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from edge.store import SCHEMA_VERSION, Store, StoreError, check_database, open_readonly


def test_new_database_is_wal_versioned_and_reopens_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "state" / "trailcam.db"
    store = Store(path, zone="Europe/Berlin", station_id="feeder-1")
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.db.execute("PRAGMA busy_timeout").fetchone()[0] == 30000
    assert store.schema_version == SCHEMA_VERSION
    tables = set(store.db.table_names())
    assert {"meta", "frames", "predictions", "events", "daily_tallies", "outbox", "outbox_stats"} <= tables
    store.close()
    again = Store(path, zone="Europe/Berlin")  # idempotent: nothing to migrate
    meta = dict(again.db.execute("SELECT key, value FROM meta").fetchall())
    again.close()
    assert meta == {"schema_version": str(SCHEMA_VERSION), "station_id": "feeder-1", "timezone": "Europe/Berlin"}
    reader = open_readonly(path)
    with pytest.raises(sqlite3.OperationalError, match="readonly|read-only|query_only|attempt to write"):
        reader.execute("DELETE FROM frames")
    assert "schema 1, 0 frame(s)" in check_database(path)


def test_newer_or_foreign_database_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    Store(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer than this trailcam"):
        Store(path)
    with pytest.raises(StoreError, match="newer than this trailcam"):
        open_readonly(path)
    foreign = tmp_path / "other.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE x (a)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="not a trailcam database"):
        open_readonly(foreign)
    garbage = tmp_path / "garbage.db"
    garbage.write_text("not sqlite at all, but long enough to look like a header " * 4)
    with pytest.raises(StoreError, match="cannot use the database"):
        Store(garbage)
    assert garbage.read_text().startswith("not sqlite")


@pytest.mark.parametrize(("after_processing", "synchronous"), [("keep", 1), ("delete", 2)])
def test_commits_are_fsynced_when_frames_leave_the_folder(after_processing, synchronous, make_config) -> None:
    """NORMAL (1) while frames stay where they are (they redo a lost commit); FULL (2) otherwise."""
    from edge.daemon import Daemon

    daemon = Daemon(make_config(retention={"after_processing": after_processing}), once=True)
    daemon.start()
    try:
        assert daemon.store.db.execute("PRAGMA synchronous").fetchone()[0] == synchronous
    finally:
        daemon.stop()
