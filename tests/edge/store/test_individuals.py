"""Counting individuals: detections per frame, MaxN per event, tallies and the schema-3 migration.

Store-level rules with decisions given directly (the detector and classifier are tested in
tests/edge/detect and through the daemon); the migration runs on a database written by the commit before schema 3 (3c1b25a).
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge.classify.decision import Decision
from edge.classify.model import Prediction
from edge.store.db import StoreError
from edge.store.schema import SCHEMA_VERSION
from edge.store.writer import BirdRecord, FrameRecord, Store

T0 = datetime(2026, 5, 1, 8, 0, 0, tzinfo=UTC)
RELEASE_DB = Path(__file__).parents[1] / "data" / "schema2-3c1b25a.db"


def bird(species: str | None, confidence: float = 0.9, score: float = 0.8, x: float = 0.1) -> BirdRecord:
    kind = "none" if species is None else ("unknown" if species == "unknown" else "species")
    return BirdRecord((0.2, x, 0.3, x + 0.1), score, "bird", [Prediction(species or "background", confidence, 0)],
                      Decision(kind, species, confidence, ""))


def detected(store: Store, seconds: float, birds: list[BirdRecord], camera: str = "cam") -> object:
    sha = hashlib.sha256(f"{camera}{seconds}{len(birds)}{[b.decision.species for b in birds]}".encode()).hexdigest()
    return store.record(FrameRecord(path=f"/cam/{sha[:8]}.jpg", sha256=sha, camera=camera, size=1, mtime=0.0,
                                    captured_at=T0 + timedelta(seconds=seconds), time_source="exif", model_id="m",
                                    birds=birds, detector_id="det"))


@pytest.fixture(params=["camera", "species"])
def store(request, tmp_path: Path):
    store = Store(tmp_path / "t.db", independence_s=60, group_by=request.param, clock=lambda: T0 + timedelta(hours=1))
    yield store
    store.close()


def test_event_count_is_the_most_birds_in_one_frame(store: Store) -> None:
    """A burst of 1, 3, 2 robins is one visit of 3 individuals (MaxN), 6 detections, 3 frames."""
    for seconds, n in ((0, 1), (5, 3), (10, 2)):
        detected(store, seconds, [bird("robin", x=0.2 * i) for i in range(n)])
    rows = store.db.execute("SELECT species, individuals, frame_count FROM events").fetchall()
    assert rows == [("robin", 3, 3)]
    assert store.db.execute("SELECT COUNT(*), COUNT(DISTINCT frame_id) FROM detections WHERE event_id = 1").fetchone() == (6, 3)
    tally = store.tallies_for_day(T0.date().isoformat())
    assert tally == {"robin": {"events": 1, "frames": 3, "individuals": 3}}
    # A second visit later the same day adds its own MaxN to the day's individuals.
    detected(store, 600, [bird("robin"), bird("robin", x=0.5)])
    assert store.tallies_for_day(T0.date().isoformat())["robin"] == {"events": 2, "frames": 4, "individuals": 5}


def test_empty_frame_is_recorded_and_counts_nothing(store: Store) -> None:
    commit = detected(store, 0, [])
    row = store.db.execute("SELECT status, birds, species, event_id, detector_id FROM frames").fetchone()
    assert row == ("ok", 0, None, None, "det")
    assert commit.frame.birds == 0 and not commit.event_changes
    assert store.db.execute("SELECT COUNT(*) FROM events").fetchone() == (0,)


def test_unknown_birds_are_counted(store: Store) -> None:
    """A bird the classifier cannot name is still a bird: an `unknown` individual."""
    detected(store, 0, [bird("unknown", 0.2), bird("unknown", 0.3, x=0.5)])
    assert store.db.execute("SELECT species, individuals FROM events").fetchall() == [("unknown", 2)]
    rows = store.db.execute("SELECT rank, kind, species, detector_label, event_id FROM detections ORDER BY rank").fetchall()
    assert rows == [(1, "unknown", "unknown", "bird", 1), (2, "unknown", "unknown", "bird", 1)]


def test_denied_birds_are_stored_but_not_counted(store: Store) -> None:
    detected(store, 0, [bird(None), bird("robin", x=0.5)])
    assert store.db.execute("SELECT species, individuals FROM events").fetchall() == [("robin", 1)]
    assert store.db.execute("SELECT rank, kind, event_id FROM detections ORDER BY rank").fetchall() == [
        (1, "none", None), (2, "species", 1)]
    assert store.db.execute("SELECT birds, species FROM frames").fetchone() == (2, "robin")


def test_two_species_in_one_frame_make_two_events_by_species(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db", independence_s=60, group_by="species", clock=lambda: T0 + timedelta(hours=1))
    try:
        commit = detected(store, 0, [bird("robin"), bird("jay", x=0.5), bird("robin", x=0.7)])
        rows = store.db.execute("SELECT species, individuals, frame_count, uid FROM events ORDER BY id").fetchall()
        assert [r[:3] for r in rows] == [("robin", 2, 1), ("jay", 1, 1)]
        assert rows[0][3] != rows[1][3]
        assert [c.change for c in commit.event_changes] == ["new", "new"]
        day = T0.date().isoformat()
        assert store.tallies_for_day(day) == {"jay": {"events": 1, "frames": 1, "individuals": 1},
                                              "robin": {"events": 1, "frames": 1, "individuals": 2}}
        # Each later frame goes to its own species' event.
        detected(store, 5, [bird("jay"), bird("jay", x=0.4)])
        assert store.db.execute("SELECT species, individuals, frame_count FROM events ORDER BY id").fetchall() == [
            ("robin", 2, 1), ("jay", 2, 2)]
    finally:
        store.close()


def test_by_camera_one_frame_of_two_species_is_one_visit_counting_each_species(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.db", independence_s=60, group_by="camera", clock=lambda: T0 + timedelta(hours=1))
    try:
        commit = detected(store, 0, [bird("robin"), bird("jay", 0.5, x=0.5), bird("robin", x=0.7)])
        assert store.db.execute("SELECT species, individuals, frame_count FROM events").fetchall() == [("robin", 3, 1)]
        assert [c.change for c in commit.event_changes] == ["new"]
        assert commit.event_changes[0].event["individuals"] == 3
        day = T0.date().isoformat()
        tally = store.tallies_for_day(day)
        # One visit, counted per species: two robins and a jay (MaxN of each), not three robins.
        assert tally["robin"] == {"events": 1, "frames": 1, "individuals": 2}
        assert tally["jay"] == {"events": 1, "frames": 1, "individuals": 1}
        assert commit.event_changes[0].event["species_counts"] == [
            {"species": "robin", "individuals": 2, "frames": 1}, {"species": "jay", "individuals": 1, "frames": 1}]
    finally:
        store.close()


def test_vote_moves_individuals_with_the_species(tmp_path: Path) -> None:
    """group_by camera: two jay frames outvote the first robin frame; the visit's birds move to jay."""
    store = Store(tmp_path / "v.db", independence_s=60, group_by="camera", clock=lambda: T0 + timedelta(hours=1))
    try:
        detected(store, 0, [bird("robin", 0.6)])
        detected(store, 5, [bird("jay"), bird("jay", x=0.5)])
        commit = detected(store, 10, [bird("jay")])
        assert store.db.execute("SELECT species, individuals FROM events").fetchall() == [("jay", 2)]
        day = T0.date().isoformat()
        tally = store.tallies_for_day(day)
        assert tally["jay"]["individuals"] == 2 and tally["jay"]["events"] == 1
        assert "robin" not in tally or tally["robin"]["individuals"] == 0
        assert commit.event_changes[-1].event["species"] == "jay"
    finally:
        store.close()


def test_best_crop_follows_the_best_confidence_of_the_event_species(store: Store) -> None:
    first = detected(store, 0, [bird("robin", 0.7)])
    uid = store.db.execute("SELECT uid FROM events").fetchone()[0]
    assert first.snapshots == [(f"{uid}.jpg", 1)]
    worse = detected(store, 5, [bird("robin", 0.6)])
    assert worse.snapshots == []
    better = detected(store, 10, [bird("robin", 0.5, x=0.0), bird("robin", 0.95, x=0.5)])
    assert better.snapshots == [(f"{uid}.jpg", 2)]
    best = store.db.execute(
        "SELECT d.frame_id, d.rank, e.snapshot FROM events AS e JOIN detections AS d ON d.id = e.best_detection_id").fetchone()
    assert best == (better.frame_id, 2, f"{uid}.jpg")


def test_whole_frame_route_counts_one_bird_per_frame(store: Store) -> None:
    """Without a detector nothing changes: a frame is one bird at most, events have 1 individual."""
    for seconds in (0, 5):
        sha = hashlib.sha256(str(seconds).encode()).hexdigest()
        store.record(FrameRecord(path=f"/cam/{seconds}.jpg", sha256=sha, camera="cam", size=1, mtime=0.0,
                                 captured_at=T0 + timedelta(seconds=seconds), model_id="m",
                                 decision=Decision("species", "robin", 0.9, "ok")))
    assert store.db.execute("SELECT species, individuals, frame_count, snapshot FROM events").fetchall() == [
        ("robin", 1, 2, None)]
    assert store.db.execute("SELECT COUNT(*) FROM detections").fetchone() == (0,)
    assert store.db.execute("SELECT birds FROM frames").fetchall() == [(None,), (None,)]


# -- migration from the previous schema --------------------------------------------------

def _contents(path: Path) -> dict[str, list[tuple]]:
    conn = sqlite3.connect(path)
    try:
        return {
            "frames": conn.execute("SELECT id, path, sha256, camera, status, error, species, confidence, event_id,"
                                   " captured_at FROM frames ORDER BY id").fetchall(),
            "predictions": conn.execute("SELECT * FROM predictions ORDER BY frame_id, rank").fetchall(),
            "events": conn.execute("SELECT id, uid, camera, species, confidence, started_at, ended_at, frame_count,"
                                   " state FROM events ORDER BY id").fetchall(),
            "tallies": conn.execute("SELECT day, camera, species, events, frames FROM daily_tallies ORDER BY 1, 2, 3").fetchall(),
            "votes": conn.execute("SELECT event_id, species, frames, confidence_sum, best_confidence, first_at"
                                  " FROM event_votes ORDER BY 1, 2").fetchall(),
        }
    finally:
        conn.close()


def test_release_database_migrates_with_its_rows_intact(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "edge.db"
    shutil.copy(RELEASE_DB, path)
    before = _contents(path)
    assert len(before["frames"]) == 13 and len(before["events"]) == 4  # what the data README says
    caplog.set_level("INFO", logger="edge.store.writer")
    store = Store(path)
    try:
        assert store.schema_version == SCHEMA_VERSION == 6
        assert _contents(path) == before
        assert store.db.execute("SELECT DISTINCT individuals FROM events").fetchall() == [(1,)]
        assert [tuple(r) for r in store.db.execute("SELECT species, events, individuals FROM daily_tallies ORDER BY species")] == [
            (s, e, e) for _, _, s, e, _ in sorted(before["tallies"], key=lambda t: t[2])]
        assert store.db.execute("SELECT COUNT(*) FROM frames WHERE birds IS NOT NULL").fetchone() == (0,)
    finally:
        store.close()
    assert "backup copy in" in caplog.text and "removed the backup" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir() if ".bak" in p.name) == []


def test_failed_migration_keeps_the_backup_and_the_old_database(tmp_path: Path) -> None:
    """A migration that fails rolls back, and the copy taken before it is kept and named."""
    path = tmp_path / "edge.db"
    shutil.copy(RELEASE_DB, path)
    conn = sqlite3.connect(path)
    conn.execute("ALTER TABLE frames ADD COLUMN birds INTEGER")  # what version 3 is about to add
    conn.commit()
    conn.close()
    before = _contents(path)
    with pytest.raises(StoreError, match=r"migration failed .*duplicate column.* kept in .*edge\.db\.schema2\.bak"):
        Store(path)
    backup = tmp_path / "edge.db.schema2.bak"
    assert backup.is_file() and not (tmp_path / "edge.db.schema2.bak.partial").exists()
    assert _contents(backup) == before == _contents(path)
    assert sqlite3.connect(path).execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("2",)


def test_reports_read_the_release_database_before_it_is_migrated(tmp_path: Path) -> None:
    """Between an upgrade and the daemon's restart the reports read the old schema as it is:
    one bird per event, no detections; the file is not changed."""
    from edge.store import queries
    from edge.store.db import open_readonly

    path = tmp_path / "edge.db"
    shutil.copy(RELEASE_DB, path)
    before = path.read_bytes()
    db = open_readonly(path)
    try:
        events = queries.counts(db, by="total")
        individuals = queries.counts(db, by="total", unit="individuals")
        assert [r["events"] for r in events] == [r["individuals"] for r in individuals] and len(events) == 4
        hourly = queries.counts(db, by="hour", unit="individuals")
        assert sum(r["individuals"] for r in hourly) == 4
        listed = queries.events(db, limit=0)
        assert len(listed) == 4 and {(r["individuals"], r["snapshot"]) for r in listed} == {(1, None)}
        assert {r["birds"] for r in queries.frames(db, limit=0)} == {None}
    finally:
        db.conn.close()
    assert path.read_bytes() == before


SCHEMA5_DB = Path(__file__).parents[1] / "data" / "schema5-c4ed169.db"


def test_schema5_database_of_the_previous_main_is_recounted_per_species(tmp_path: Path) -> None:
    """A database written by the previous release counted a mixed visit as its headline species
    (a dove and a woodpecker: 2 doves); the schema-6 migration recounts every visit per species
    from the stored detections, keeps the reviews, and leaves the frames tallies alone."""
    path = tmp_path / "edge.db"
    shutil.copy(SCHEMA5_DB, path)
    conn = sqlite3.connect(path)
    frames_before = conn.execute("SELECT species, SUM(frames) FROM daily_tallies GROUP BY species").fetchall()
    assert conn.execute("SELECT species, individuals FROM daily_tallies WHERE events > 0 ORDER BY species").fetchall() == [
        ("Catharus guttatus", 1), ("Sialia sialis", 3), ("Zenaida macroura", 2)]
    conn.close()
    store = Store(path, station_tz="Europe/Berlin")
    try:
        assert store.schema_version == SCHEMA_VERSION
        counted = {s: (e, i) for s, e, i in store.db.execute(
            "SELECT species, SUM(events), SUM(individuals) FROM daily_tallies GROUP BY species HAVING SUM(events) > 0")}
        assert counted == {"Zenaida macroura": (1, 1), "Dryobates pubescens": (1, 1), "Sialia sialis": (1, 1),
                           "Passer domesticus": (1, 2), "Catharus guttatus": (1, 1)}
        assert store.db.execute("SELECT species, SUM(frames) FROM daily_tallies GROUP BY species").fetchall() == frames_before
        rows = store.db.execute(
            "SELECT e.species, s.species, s.individuals FROM event_species AS s JOIN events AS e ON e.id = s.event_id"
            " ORDER BY e.id, s.individuals DESC, s.species").fetchall()
        assert rows == [("Zenaida macroura", "Dryobates pubescens", 1), ("Zenaida macroura", "Zenaida macroura", 1),
                        ("Sialia sialis", "Passer domesticus", 2), ("Sialia sialis", "Sialia sialis", 1),
                        ("Turdus migratorius", "Catharus guttatus", 1)]
        assert store.db.execute("SELECT COUNT(*) FROM reviews").fetchone() == (2,)
    finally:
        store.close()


def test_the_days_total_counts_a_mixed_visit_once(tmp_path: Path) -> None:
    """MQTT's retained counts: a visit with two species is one visit for each species, and one
    visit in the day's total (not two)."""
    import json

    from edge.publish.outbox_writer import OutboxWriter

    outbox = OutboxWriter("st", "UTC", "m", {}, 1000)
    store = Store(tmp_path / "t.db", independence_s=60, group_by="camera", outbox=outbox,
                  clock=lambda: T0 + timedelta(minutes=5))
    try:
        detected(store, 0, [bird("robin"), bird("jay", 0.8, x=0.5)])
        payload = json.loads(store.db.execute(
            "SELECT payload FROM outbox WHERE topic = 'counts' ORDER BY id DESC LIMIT 1").fetchone()[0])
        assert {k: v["events"] for k, v in payload["species"].items()} == {"robin": 1, "jay": 1}
        assert payload["total"]["events"] == 1 and payload["total"]["individuals"] == 2
    finally:
        store.close()


def test_an_unnamed_bird_the_names_explain_is_not_counted_again(tmp_path: Path) -> None:
    """A dove with an unnamed bird, then the dove with a woodpecker: two birds at most, so the
    visit counts 1 dove + 1 woodpecker, not a third `unknown` bird. A frame with more birds
    than the names explain keeps its unknown."""
    store = Store(tmp_path / "u.db", independence_s=60, group_by="camera", clock=lambda: T0 + timedelta(hours=1))
    try:
        detected(store, 0, [bird("dove"), bird("unknown", 0.3, x=0.5)])
        detected(store, 5, [bird("dove"), bird("woodpecker", 0.8, x=0.5)])
        day = T0.date().isoformat()
        assert {s: c["individuals"] for s, c in store.tallies_for_day(day).items() if c["events"]} == {
            "dove": 1, "woodpecker": 1}
        detected(store, 10, [bird("dove"), bird("woodpecker", 0.8, x=0.4), bird("unknown", 0.3, x=0.7)])
        assert {s: c["individuals"] for s, c in store.tallies_for_day(day).items() if c["events"]} == {
            "dove": 1, "woodpecker": 1, "unknown": 1}
    finally:
        store.close()
