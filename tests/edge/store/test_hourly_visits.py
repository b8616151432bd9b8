"""The hourly visit tallies (`hourly_visits`, edge/store/hourly.py) always equal the count the
heatmap made from the events, whichever path writes: the real writer (visits, a second species,
an earlier frame moving a visit's start to the hour before), reviews and their undo, a bird
review, `edge clock correct`, retention pruning frame rows, a full recount, events deleted in
either order, the schema-6 migration of a version-5 database, and random SQL sequences."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.classify.decision import Decision
from edge.classify.model import Prediction
from edge.cli import commands
from edge.config.retention import RetentionConfig
from edge.operate.retention import Retention
from edge.store import counts
from edge.store.hourly import HOURS
from edge.store.reviews import ReviewStore
from edge.store.writer import BirdRecord, FrameRecord, Store

T0 = datetime(2026, 6, 10, 10, 59, 0, tzinfo=UTC)
SCHEMA5_DB = Path(__file__).parents[1] / "data" / "schema5-c4ed169.db"


def direct(conn: sqlite3.Connection) -> Counter[tuple[str, str]]:
    """What the heatmap counted before the tallies: per UTC hour of the start and species."""
    return Counter({(hour, species): n for hour, species, n in conn.execute(
        """SELECT substr(e.started_at, 1, 13), s.species, COUNT(*)
             FROM event_species AS s JOIN events AS e ON e.id = s.event_id GROUP BY 1, 2""")})


def tallied(conn: sqlite3.Connection) -> Counter[tuple[str, str]]:
    """The tallies as (UTC hour, species) → visits: each day row's 24 hour columns."""
    found: Counter[tuple[str, str]] = Counter()
    for day, species, *hours in conn.execute(f"SELECT day, species, {', '.join(HOURS)} FROM hourly_visits"):
        assert all(n >= 0 for n in hours), (day, species, hours)
        found.update({(f"{day}T{hour:02d}", species): n for hour, n in enumerate(hours) if n})
    return found


def agree(path: Path) -> Counter[tuple[str, str]]:
    conn = sqlite3.connect(path)
    try:
        found = tallied(conn)
        assert found == direct(conn)
        return found
    finally:
        conn.close()


def frame(store: Store, at: datetime, names: list[str], camera: str = "gate") -> None:
    sha = hashlib.sha256(f"{camera}{at.isoformat()}{names}".encode()).hexdigest()
    birds = [BirdRecord((0.1, 0.2 * i, 0.3, 0.2 * i + 0.15), 0.8, "bird", [Prediction(n, 0.9, 0)],
                        Decision("species", n, 0.9, "ok")) for i, n in enumerate(names)]
    store.record(FrameRecord(path=f"/nowhere/{camera}/{sha[:10]}.jpg", sha256=sha, camera=camera, size=1, mtime=0.0,
                             captured_at=at, time_source="exif-local", model_id="m", detector_id="d", birds=birds))


def test_every_writer_path_keeps_the_tallies_equal_to_the_events(tmp_path: Path, capsys) -> None:
    path = tmp_path / "edge.db"
    store = Store(path, station_tz="UTC", independence_s=60, clock=lambda: T0 + timedelta(days=40))
    try:
        # A visit starting at 11:00:02 (robin), then an earlier frame at 10:59:58 joins it.
        frame(store, T0 + timedelta(seconds=62), ["robin"])
        assert agree(path) == Counter({("2026-06-10T11", "robin"): 1})
        frame(store, T0 + timedelta(seconds=58), ["robin"])
        assert agree(path) == Counter({("2026-06-10T10", "robin"): 1})
        # A mixed visit counts each species; a visit on another camera the same hour.
        for seconds in (600, 604, 608):
            frame(store, T0 + timedelta(seconds=seconds), ["jay", "wren"])
        frame(store, T0 + timedelta(seconds=610), ["jay"], camera="pond")
        assert agree(path)[("2026-06-10T11", "jay")] == 2
        store.close_stale_events(T0 + timedelta(days=1))
        agree(path)
    finally:
        store.close()

    events = dict(sqlite3.connect(path).execute("SELECT camera || ':' || species, id FROM events").fetchall())
    reviews = ReviewStore(path, station_tz="UTC")
    try:
        mixed = events["gate:jay"]
        corrected = reviews.review_event(mixed, "correct", reviewer="ana", species="sparrow", new_species=True)
        assert agree(path)[("2026-06-10T11", "sparrow")] == 1
        rejected = reviews.review_event(events["pond:jay"], "reject", reviewer="ana")
        assert agree(path)[("2026-06-10T11", "jay")] == 0
        reviews.review_event(events["gate:robin"], "confirm", reviewer="ana")
        agree(path)
        reviews.undo(rejected.id, reviewer="ana")
        reviews.undo(corrected.id, reviewer="ana")
        assert agree(path)[("2026-06-10T11", "jay")] == 2
    finally:
        reviews.close()

    # The camera's clock was an hour and a half slow: its visits move to 12:29 and 12:39.
    assert commands.main(["clock", "correct", "--db", str(path), "--camera", "gate", "--since", "2026-06-10",
                          "--until", "2026-06-10", "--offset-s", "5400", "--reviewer", "ana"]) == 0
    capsys.readouterr()
    moved = agree(path)
    assert moved[("2026-06-10T12", "robin")] >= 1 and moved[("2026-06-10T10", "robin")] == 0

    store = Store(path, station_tz="UTC", independence_s=60, clock=lambda: T0 + timedelta(days=40))
    try:
        # Retention prunes the frame rows (events and counts stay), then a full recount.
        retention = Retention(RetentionConfig(prune_frames_after_days=10), store.db,
                              clock=lambda: (T0 + timedelta(days=40)).timestamp())
        assert retention.prune_rows() > 0
        assert agree(path) == moved
        with store.db.atomic():
            counts.recount_all(store.conn)
        assert agree(path) == moved
    finally:
        store.close()
    # Housekeeping deleting events (none does today), in either order with their per-species rows;
    # a plain connection, without the daemon's foreign keys (votes, frames and reviews point at them).
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN")
        conn.execute("DELETE FROM events WHERE id = ?", (events["pond:jay"],))
        conn.execute("DELETE FROM event_species WHERE event_id = ?", (events["pond:jay"],))
        conn.execute("DELETE FROM event_species WHERE event_id = ?", (events["gate:robin"],))
        conn.execute("DELETE FROM events WHERE id = ?", (events["gate:robin"],))
        conn.execute("COMMIT")
    finally:
        conn.close()
    left = agree(path)
    assert sum(left.values()) == sum(moved.values()) - 2


def test_a_bird_review_moves_the_bird_to_its_hour_and_species(tmp_path: Path) -> None:
    # Apart from the scenario above: retention cannot prune a reviewed bird's detection row
    # (reviews.detection_id references it), whatever the tallies do.
    path = tmp_path / "edge.db"
    store = Store(path, station_tz="UTC", independence_s=60, clock=lambda: T0 + timedelta(days=1))
    try:
        frame(store, T0 + timedelta(seconds=62), ["jay", "wren"])
    finally:
        store.close()
    assert agree(path) == Counter({("2026-06-10T11", "jay"): 1, ("2026-06-10T11", "wren"): 1})
    bird = sqlite3.connect(path).execute("SELECT id FROM detections WHERE species = 'wren'").fetchone()[0]
    reviews = ReviewStore(path, station_tz="UTC")
    try:
        review = reviews.review_detection(bird, "correct", reviewer="ana", species="robin")
        assert agree(path) == Counter({("2026-06-10T11", "jay"): 1, ("2026-06-10T11", "robin"): 1})
        reviews.undo(review.id, reviewer="ana")
        assert agree(path) == Counter({("2026-06-10T11", "jay"): 1, ("2026-06-10T11", "wren"): 1})
    finally:
        reviews.close()


def test_the_migration_tallies_an_existing_database(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    shutil.copyfile(SCHEMA5_DB, path)
    Store(path, station_tz="UTC").close()  # migrates 5 → 6: recount, then the hourly backfill
    found = agree(path)
    assert sum(found.values()) > 0


_ops = st.lists(st.one_of(
    st.tuples(st.just("event"), st.integers(1, 6), st.integers(0, 47)),      # insert or move an event's start
    st.tuples(st.just("count"), st.integers(1, 7), st.sampled_from("abc")),   # a visit counts a species
    st.tuples(st.just("uncount"), st.integers(1, 7), st.sampled_from("abc")),
    st.tuples(st.just("rename"), st.integers(1, 7), st.sampled_from("abc")),  # UPDATE of event_species
    st.tuples(st.just("drop"), st.integers(1, 7), st.just("")),               # delete an event row
), max_size=40)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=_ops)
def test_any_sequence_of_sql_writes_keeps_the_tallies_exact(tmp_path: Path, ops: list) -> None:
    path = tmp_path / "prop.db"
    if not path.exists():
        Store(path, station_tz="UTC").close()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN")
        for op, event_id, value in ops:
            if op == "event":
                at = (datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=30 * int(value))).strftime(
                    "%Y-%m-%dT%H:%M:%S.000Z")
                conn.execute("""INSERT INTO events (id, uid, camera, species, started_at, ended_at, frame_count, state)
                                VALUES (?, ?, 'c', 'a', ?, ?, 1, 'open')
                                ON CONFLICT (id) DO UPDATE SET started_at = excluded.started_at""",
                             (event_id, f"u{event_id}", at, at))
            elif op == "count":
                conn.execute("""INSERT OR IGNORE INTO event_species (event_id, species, individuals, frames, day)
                                VALUES (?, ?, 1, 1, '')""", (event_id, value))
            elif op == "uncount":
                conn.execute("DELETE FROM event_species WHERE event_id = ? AND species = ?", (event_id, value))
            elif op == "rename":
                conn.execute("UPDATE OR IGNORE event_species SET species = ? WHERE event_id = ?", (value, event_id))
            else:
                conn.execute("DELETE FROM events WHERE id = ?", (event_id,))
            assert tallied(conn) == direct(conn)
        conn.execute("ROLLBACK")
    finally:
        conn.close()
