"""The database file itself: WAL, busy timeout, schema version and migrations, refusal of a
database from a newer trailcam, read-only readers."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from edge.store.db import StoreError, check_database, open_readonly
from edge.store.schema import SCHEMA_VERSION
from edge.store.writer import Store


def test_new_database_is_wal_versioned_and_reopens_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "state" / "trailcam.db"
    store = Store(path, station_tz="Europe/Berlin", station_id="feeder-1")
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.db.execute("PRAGMA busy_timeout").fetchone()[0] == 30000
    assert store.schema_version == SCHEMA_VERSION
    tables = set(store.db.table_names())
    assert {"meta", "frames", "predictions", "events", "daily_tallies", "outbox", "outbox_stats"} <= tables
    store.close()
    again = Store(path, station_tz="Europe/Berlin")  # idempotent: nothing to migrate
    meta = dict(again.db.execute("SELECT key, value FROM meta").fetchall())
    again.close()
    assert meta == {"schema_version": str(SCHEMA_VERSION), "station_id": "feeder-1", "timezone": "Europe/Berlin",
                    "species_min_frames": "3"}
    reader = open_readonly(path)
    with pytest.raises(sqlite3.OperationalError, match="readonly|read-only|query_only|attempt to write"):
        reader.execute("DELETE FROM frames")
    assert f"schema {SCHEMA_VERSION}, 0 frame(s)" in check_database(path)


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
    from edge.daemon.wiring import build

    daemon = build(make_config(retention={"after_processing": after_processing}), once=True, field=False)
    daemon.start()
    try:
        assert daemon.store.db.execute("PRAGMA synchronous").fetchone()[0] == synchronous
    finally:
        daemon.stop()


def _v1_vote(db, event: dict, species: str, confidence: float, at: str):
    """Version 1's vote, verbatim: every frame of the event read back, pruned rows counted for
    the event's species from frame_count. The oracle the migrated vote state must agree with."""
    from edge.store.events import SpeciesVotes, vote

    votes = [SpeciesVotes(label, int(n), float(total or 0.0), best, first) for label, n, total, best, first in db.execute(
        """SELECT species, COUNT(*), SUM(confidence), MAX(confidence), MIN(captured_at)
           FROM frames WHERE event_id = ? GROUP BY species""", (event["id"],))]
    missing = int(event["frame_count"]) - sum(v.frames for v in votes)
    if missing > 0:
        kept = event["confidence"]
        votes.append(SpeciesVotes(event["species"], missing, missing * float(kept or 0.0), kept, event["started_at"]))
    votes.append(SpeciesVotes(species, 1, confidence, confidence, at))
    return vote(votes)


def test_version_1_database_migrates_and_votes_as_before(tmp_path: Path) -> None:
    """A version-1 database (built with the version-1 schema step, frames voted into events the
    version-1 way, some frame rows pruned) migrates to event_votes that give every event the
    same next vote as version 1 would, whatever species joins next; a v1 unreadable error row
    becomes due for a retry, and an error row followed by a later row at its path is superseded."""
    import random

    import sqlite_utils

    from edge.store.schema import MIGRATIONS

    path = tmp_path / "v1.db"
    db = sqlite_utils.Database(sqlite3.connect(path))
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    with db.atomic():
        MIGRATIONS[0](db)
        db["meta"].insert({"key": "schema_version", "value": "1"})
    names = ["Blue Jay", "Northern Cardinal", "House Finch", "unknown"]
    rng = random.Random(7)
    for number in range(12):
        event = {"id": number + 1, "species": None, "confidence": None, "frame_count": 0,
                 "started_at": f"2026-03-01T10:{number:02d}:00.000Z"}
        db.execute("""INSERT INTO events (id, uid, camera, species, confidence, started_at, ended_at, frame_count, state)
                      VALUES (?, ?, 'cam', 'unknown', NULL, ?, ?, 0, 'closed')""",
                   (event["id"], f"uid{number}", event["started_at"], event["started_at"]))
        for index in range(rng.randint(1, 12)):
            species, confidence = rng.choice(names), round(rng.uniform(0.3, 0.99), 3)
            at = f"2026-03-01T10:{number:02d}:{index:02d}.000Z"
            if event["frame_count"]:
                winner = _v1_vote(db, event, species, confidence, at)
                event["species"], event["confidence"] = winner.species, winner.best_confidence
            else:
                event["species"], event["confidence"] = species, confidence
            event["frame_count"] += 1
            db.execute("""INSERT INTO frames (path, sha256, camera, processed_at, status, captured_at, species,
                              confidence, event_id) VALUES (?, ?, 'cam', ?, 'ok', ?, ?, ?, ?)""",
                       (f"/cam/{number}-{index}.jpg", f"sha{number}-{index}", at, at, species, confidence, event["id"]))
            db.execute("UPDATE events SET species = ?, confidence = ?, frame_count = ? WHERE id = ?",
                       (event["species"], event["confidence"], event["frame_count"], event["id"]))
    # Retention pruned the oldest rows of some events (their votes live on in frame_count).
    db.execute("DELETE FROM frames WHERE event_id % 3 = 0 AND substr(captured_at, 18, 2) < '04'")  # first 4 frames
    db.execute("DELETE FROM frames WHERE event_id = 5")
    db.execute("""INSERT INTO frames (path, sha256, camera, size, mtime, processed_at, status, error)
                  VALUES ('/cam/locked.jpg', 'unreadable:x', 'cam', 10, 1.0, '2026-03-01T11:00:00.000Z', 'error',
                          'unreadable: Permission denied'),
                         ('/cam/bad.jpg', 'c1', 'cam', 5, 1.0, '2026-03-01T11:00:00.000Z', 'error', 'not an image'),
                         ('/cam/bad.jpg', 'c2', 'cam', 9, 2.0, '2026-03-01T11:01:00.000Z', 'ok', NULL)""")
    db.conn.commit()
    candidates = [(species, confidence) for species in names for confidence in (0.31, 0.75, 0.99)]
    expected = {}
    for event in (dict(zip([d[0] for d in c.description], row)) for c in [db.execute("SELECT * FROM events")]
                  for row in c.fetchall()):
        expected[event["id"]] = [(w.species, w.best_confidence) for w in
                                 (_v1_vote(db, event, s, c, "2026-03-01T12:00:00.000Z") for s, c in candidates)]
    db.conn.close()
    assert any(n > f for n, f in (sqlite3.connect(path).execute(
        "SELECT frame_count, (SELECT COUNT(*) FROM frames WHERE event_id = events.id) FROM events").fetchall()))

    store = Store(path)
    try:
        assert store.schema_version == SCHEMA_VERSION == 6
        for event_id, wanted in expected.items():
            event = store._event(event_id)
            got = [(w.species, w.best_confidence) for w in
                   (store._vote(event, s, c, "2026-03-01T12:00:00.000Z") for s, c in candidates)]
            assert got == wanted, event_id
        assert store.db.execute("SELECT SUM(frames) FROM event_votes").fetchone()[0] == \
            store.db.execute("SELECT SUM(frame_count) FROM events").fetchone()[0]
        rows = {p: (a, r, s) for p, a, r, s in store.db.execute(
            "SELECT path, attempts, retry_at, superseded_by FROM frames WHERE status = 'error'")}
        assert rows["/cam/locked.jpg"] == (1, "2026-03-01T11:00:00.000Z", None)  # due: retried at start
        assert rows["/cam/bad.jpg"][2] is not None  # the later ok row at its path replaced it
        assert not store.ledger.unchanged_known("/cam/locked.jpg", 10, 1.0)
    finally:
        store.close()
