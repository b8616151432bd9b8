"""Reviews on a real SQLite store: stored next to the machine's, tallies and MQTT follow, undo
restores, errors are clear, and the web app's writes never collide with the daemon's."""

from __future__ import annotations

import hashlib
import json
import threading
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge.classify.decision import Decision
from edge.classify.model import Prediction
from edge.publish.outbox_writer import OutboxWriter
from edge.store import queries
from edge.store.counts import counts_of, min_frames_of, stored_counts
from edge.store.db import open_readonly
from edge.store.events import counted
from edge.store.reviews import ReviewError, ReviewStore, review_queue
from edge.store.writer import BirdRecord, FrameRecord, Store

NOW = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
T0 = NOW - timedelta(hours=2)  # today, in UTC


def frame(store: Store, seconds: float, species: str, confidence: float = 0.9, birds: int | None = None,
          camera: str = "cam") -> object:
    sha = hashlib.sha256(f"{camera}{seconds}{species}{birds}".encode()).hexdigest()
    kind = "unknown" if species == "unknown" else "species"
    common = dict(path=f"/cam/{sha[:8]}.jpg", sha256=sha, camera=camera, size=1, mtime=0.0,
                  captured_at=T0 + timedelta(seconds=seconds), time_source="exif", model_id="m")
    if birds is None:
        return store.record(FrameRecord(**common, decision=Decision(kind, species, confidence, "")))
    return store.record(FrameRecord(**common, detector_id="d", birds=[
        BirdRecord((0.1, 0.1 * i, 0.2, 0.1 * i + 0.1), 0.8, "bird", [Prediction(species, confidence, 0)],
                   Decision(kind, species, confidence, "")) for i in range(birds)]))


def tallies(store: Store) -> dict[str, tuple[int, int, int]]:
    return {s: (e, f, i) for s, e, f, i in store.db.execute(
        "SELECT species, SUM(events), SUM(frames), SUM(individuals) FROM daily_tallies GROUP BY species "
        "HAVING SUM(events) != 0 OR SUM(frames) != 0 OR SUM(individuals) != 0")}


def consistent(store: Store) -> None:
    """The tallies' events and individuals are exactly what the visits count per species
    (`event_species`), and each visit's stored counts are what the rules give now."""
    expected: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for day, species, n in store.db.execute("SELECT day, species, individuals FROM event_species"):
        expected[(day, species)][0] += 1
        expected[(day, species)][1] += n
    cursor = store.db.execute("SELECT * FROM events")
    names = [d[0] for d in cursor.description]
    for row in cursor.fetchall():
        event = dict(zip(names, row))
        now = {c.species: (c.individuals, c.frames) for c in counts_of(store.conn, event, min_frames_of(store.conn)).values()}
        stored = {r["species"]: (r["individuals"], r["frames"]) for r in stored_counts(store.conn, event["id"])}
        assert now == stored, event
        if counted(event)[0] is None:
            assert stored == {}
    actual = {(d, s): [e, i] for d, s, e, i in store.db.execute(
        "SELECT day, species, SUM(events), SUM(individuals) FROM daily_tallies GROUP BY day, species")
        if e or i}
    assert actual == dict(expected)


@pytest.fixture
def store(tmp_path: Path):
    store = Store(tmp_path / "edge.db", independence_s=60, clock=lambda: NOW)
    yield store
    store.close()


@pytest.fixture
def reviewer(store: Store):
    reviews = ReviewStore(store.path, clock=lambda: NOW)
    yield reviews
    reviews.close()


def test_a_correction_moves_the_visit_and_undo_moves_it_back(store: Store, reviewer: ReviewStore) -> None:
    for seconds in (0, 5, 10):
        frame(store, seconds, "robin", 0.55, birds=2)
    event_id = store.db.execute("SELECT id FROM events").fetchone()[0]
    before = tallies(store)
    assert before == {"robin": (1, 3, 2)}

    review = reviewer.review_event(event_id, "correct", reviewer="ana", species="song thrush")
    assert (review.machine_species, review.machine_confidence, review.replaces) == ("robin", 0.55, None)
    assert tallies(store) == {"robin": (0, 3, 0), "song thrush": (1, 0, 2)}  # frames stay the model's
    # The machine's columns are untouched; the review sits beside them.
    assert store.db.execute("SELECT species, individuals, review_state, reviewed_species FROM events").fetchone() == (
        "robin", 2, "corrected", "song thrush")
    consistent(store)

    again = reviewer.review_event(event_id, "confirm", reviewer="ben")
    assert again.replaces == review.id
    assert tallies(store) == {"robin": (1, 3, 2)}
    reviewer.undo(again.id, reviewer="ben")
    assert tallies(store) == {"robin": (0, 3, 0), "song thrush": (1, 0, 2)}
    reviewer.undo(review.id, reviewer="ana")
    assert tallies(store) == before
    assert store.db.execute("SELECT review_state, reviewed_species FROM events").fetchone() == (None, None)
    assert [(r.action, r.reviewer, r.undone_by) for r in reviewer.history(event_id)] == [
        ("correct", "ana", "ana"), ("confirm", "ben", "ben")]
    consistent(store)


def test_not_a_bird_leaves_the_counts_and_the_reports(store: Store, reviewer: ReviewStore) -> None:
    frame(store, 0, "robin")
    frame(store, 600, "jay")
    jay = store.db.execute("SELECT id FROM events WHERE species = 'jay'").fetchone()[0]
    reviewer.review_event(jay, "reject", reviewer="ana")
    assert tallies(store) == {"robin": (1, 1, 1), "jay": (0, 1, 0)}
    db = open_readonly(store.path)
    try:
        assert [r["species"] for r in queries.counts(db, by="total")] == ["robin"]
        assert [r["species"] for r in queries.counts(db, by="hour", since=T0.date().isoformat() + "T00:00")] == ["robin"]
        listed = {r["model_species"]: (r["species"], r["review"]) for r in queries.events(db, limit=0)}
        assert listed == {"robin": ("robin", None), "jay": (None, "rejected")}
    finally:
        db.conn.close()
    consistent(store)


def test_a_counted_number_replaces_the_machines_maxn(store: Store, reviewer: ReviewStore) -> None:
    frame(store, 0, "robin", birds=1)
    event_id = store.db.execute("SELECT id FROM events").fetchone()[0]
    reviewer.review_event(event_id, "individuals", reviewer="ana", individuals=4)
    assert tallies(store)["robin"] == (1, 1, 4)
    db = open_readonly(store.path)
    try:
        assert queries.counts(db, by="total", unit="individuals") == [
            {"period": "total", "species": "robin", "individuals": 4}]
    finally:
        db.conn.close()
    # A later species correction keeps the count a person set.
    reviewer.review_event(event_id, "correct", reviewer="ana", species="jay")
    assert tallies(store)["jay"] == (1, 0, 4)
    consistent(store)


def test_frames_joining_a_reviewed_visit_keep_its_review(store: Store, reviewer: ReviewStore) -> None:
    frame(store, 0, "robin", 0.6)
    event_id = store.db.execute("SELECT id FROM events").fetchone()[0]
    reviewer.review_event(event_id, "correct", reviewer="ana", species="song thrush")
    frame(store, 5, "jay", 0.9)
    frame(store, 10, "jay", 0.9, birds=3)  # the model's vote turns to jay, with 3 birds
    row = store.db.execute("SELECT species, individuals, frame_count, reviewed_species FROM events").fetchone()
    assert row == ("jay", 3, 3, "song thrush")
    assert tallies(store)["song thrush"] == (1, 0, 3)  # the machine's MaxN still counts unless a person set one
    assert tallies(store).get("jay", (0, 2, 0))[0] == 0
    consistent(store)


def test_reviews_queue_mqtt_counts_and_an_event_update(tmp_path: Path) -> None:
    outbox = OutboxWriter("st1", "UTC", "m", {}, 1000)
    store = Store(tmp_path / "edge.db", independence_s=60, outbox=outbox, clock=lambda: NOW)
    reviews = ReviewStore(store.path, outbox=outbox, clock=lambda: NOW)
    try:
        frame(store, 0, "robin", 0.55)
        event_id, uid = store.db.execute("SELECT id, uid FROM events").fetchone()
        last = store.db.execute("SELECT MAX(id) FROM outbox").fetchone()[0]
        reviews.review_event(event_id, "correct", reviewer="ana", species="jay")
        queued = {t: json.loads(p) for t, p in store.db.execute(
            "SELECT topic, payload FROM outbox WHERE id > ? ORDER BY id", (last,))}
        assert queued["counts"]["total"]["events"] == 1 and set(queued["counts"]["species"]) == {"robin", "jay"}
        assert queued["counts"]["species"]["jay"]["events"] == 1 and queued["counts"]["species"]["robin"]["events"] == 0
        assert queued["counts/jay"]["events"] == 1 and queued["counts/robin"]["events"] == 0
        update = queued["events"]
        assert (update["event_id"], update["species"], update["model_species"], update["review"]) == (
            uid, "jay", "robin", "corrected")
        assert ":reviewed:" in update["id"]  # not the id of the frame's own update: not deduplicated away
    finally:
        reviews.close()
        store.close()


def test_bird_reviews_move_their_birds_and_undo_moves_them_back(store: Store, reviewer: ReviewStore) -> None:
    """A bird corrected to another species takes its count with it; a rejected bird leaves the
    count; undo restores both (edge/store/events.py)."""
    frame(store, 0, "robin", birds=2)
    first, second = [r[0] for r in store.db.execute("SELECT id FROM detections ORDER BY rank")]
    before = tallies(store)
    assert before == {"robin": (1, 1, 2)}
    moved = reviewer.review_detection(first, "correct", reviewer="ana", species="jay")
    # The robin and the jay were in one frame: two birds at once, so both count in the visit.
    assert tallies(store) == {"robin": (1, 1, 1), "jay": (1, 0, 1)}
    consistent(store)
    gone = reviewer.review_detection(second, "reject", reviewer="ana")
    assert tallies(store) == {"robin": (0, 1, 0), "jay": (1, 0, 1)}
    assert store.db.execute("SELECT review_state, reviewed_species FROM detections ORDER BY rank").fetchall() == [
        ("corrected", "jay"), ("rejected", None)]
    consistent(store)
    reviewer.undo(gone.id, reviewer="ana")
    reviewer.undo(moved.id, reviewer="ana")
    assert tallies(store) == before
    consistent(store)


def test_an_event_verdict_outranks_its_bird_reviews(store: Store, reviewer: ReviewStore) -> None:
    frame(store, 0, "robin", birds=2)
    event_id = store.db.execute("SELECT id FROM events").fetchone()[0]
    first = store.db.execute("SELECT id FROM detections ORDER BY rank").fetchone()[0]
    reviewer.review_detection(first, "correct", reviewer="ana", species="jay")
    reviewer.review_event(event_id, "correct", reviewer="ben", species="song thrush")
    assert tallies(store) == {"robin": (0, 1, 0), "song thrush": (1, 0, 2)}
    consistent(store)


def test_bad_reviews_are_refused_with_what_is_wrong(store: Store, reviewer: ReviewStore) -> None:
    frame(store, 0, "robin")
    event_id = store.db.execute("SELECT id FROM events").fetchone()[0]
    with pytest.raises(ReviewError, match="no such event"):
        reviewer.review_event(999, "confirm", reviewer="ana")
    with pytest.raises(ReviewError, match="action 'delete'"):
        reviewer.review_event(event_id, "delete", reviewer="ana")
    with pytest.raises(ReviewError, match="species: a correction needs"):
        reviewer.review_event(event_id, "correct", reviewer="ana")
    with pytest.raises(ReviewError, match="individuals: a whole number"):
        reviewer.review_event(event_id, "individuals", reviewer="ana", individuals=0)
    with pytest.raises(ReviewError, match="reviewer"):
        reviewer.review_event(event_id, "confirm", reviewer=" ")
    review = reviewer.review_event(event_id, "confirm", reviewer="ana")
    reviewer.undo(review.id, reviewer="ana")
    with pytest.raises(ReviewError, match="already undone"):
        reviewer.undo(review.id, reviewer="ana")
    assert store.db.execute("SELECT COUNT(*) FROM reviews").fetchone() == (1,)


def test_the_review_queue_is_least_confident_first(store: Store, reviewer: ReviewStore) -> None:
    for index, confidence in enumerate((0.9, 0.3, 0.6)):
        frame(store, index * 600, "robin", confidence)
    queue = review_queue(store.conn)
    assert [round(e["confidence"], 2) for e in queue] == [0.3, 0.6, 0.9]
    reviewer.review_event(queue[0]["id"], "confirm", reviewer="ana")
    assert [round(e["confidence"], 2) for e in review_queue(store.conn)] == [0.6, 0.9]
    plan = " ".join(str(r) for r in store.conn.execute(
        "EXPLAIN QUERY PLAN SELECT * FROM events WHERE review_state IS NULL ORDER BY confidence IS NOT NULL, confidence, id"))
    assert "events_review_queue" in plan


def test_reviews_while_the_daemon_writes_never_fail_or_lose_a_count(tmp_path: Path) -> None:
    """Two writers on one database: the daemon's store records 150 frames while the web app's
    ReviewStore corrects and undoes. Before BEGIN IMMEDIATE a deferred transaction could fail
    with "database is locked" the moment the other writer committed between its read and write."""
    store = Store(tmp_path / "edge.db", independence_s=60, busy_timeout_s=30, clock=lambda: NOW)
    reviews = ReviewStore(tmp_path / "edge.db", busy_timeout_s=30, clock=lambda: NOW)
    try:
        frame(store, -1000, "robin")
        errors: list[BaseException] = []

        def review_loop() -> None:
            # A bounded burst, as fast as it goes (a person reviews a few events a second): SQLite's
            # busy waiting is not fair, so an endless tight loop could keep the lock from the daemon
            # past its busy timeout on a loaded machine; that is not what is under test here.
            try:
                for _ in range(40):
                    ids = [r[0] for r in reviews.conn.execute("SELECT id FROM events ORDER BY id DESC LIMIT 2")]
                    for event_id in ids:
                        made = reviews.review_event(event_id, "correct", reviewer="ana", species="jay")
                        reviews.undo(made.id, reviewer="ana")
            except BaseException as error:  # noqa: BLE001 - reported below
                errors.append(error)

        worker = threading.Thread(target=review_loop)
        worker.start()
        try:
            for index in range(150):
                frame(store, index * 20.0, "robin")  # a new visit every third frame
        finally:
            worker.join(60)
        assert not worker.is_alive()
        assert not errors, errors
        assert store.db.execute("SELECT COUNT(*) FROM frames").fetchone() == (151,)
        assert store.db.execute("SELECT COUNT(*) FROM reviews WHERE undone_at IS NULL").fetchone() == (0,)
        assert store.db.execute("SELECT COUNT(*) FROM reviews").fetchone()[0] > 0
        consistent(store)
    finally:
        reviews.close()
        store.close()


def test_the_frame_row_counter_follows_inserts_and_pruning(tmp_path: Path) -> None:
    """`edge status` and the web health page read the number of frame rows from a counter kept
    by triggers: it must equal COUNT(*) after frames, errors and retention's deletes."""
    from edge.operate.status_reader import collect_status

    store = Store(tmp_path / "edge.db", independence_s=60, clock=lambda: NOW)
    try:
        for index in range(12):
            frame(store, index * 5.0, "robin")
        store.db.execute("DELETE FROM frames WHERE id <= 4")
        store.conn.commit()
        count = store.db.execute("SELECT COUNT(*) FROM frames").fetchone()[0]
        assert count == 8
        assert store.db.execute("SELECT count FROM row_counts WHERE name = 'frames'").fetchone() == (count,)
    finally:
        store.close()
    assert collect_status(tmp_path / "edge.db")["frames_total"] == 8


def test_a_review_of_a_closed_event_publishes_it_as_ended(tmp_path: Path) -> None:
    """The newest message of an event must say whether it closed: a consumer that keeps only the
    newest (the fleet's collector) would otherwise see a reviewed, finished visit as open."""
    outbox = OutboxWriter("st1", "UTC", "m", {}, 1000)
    store = Store(tmp_path / "edge.db", independence_s=60, outbox=outbox, clock=lambda: NOW)
    reviews = ReviewStore(store.path, outbox=outbox, clock=lambda: NOW)
    try:
        frame(store, 0, "robin", 0.55)
        event_id = store.db.execute("SELECT id FROM events").fetchone()[0]

        def reviewed(action: str) -> dict:
            last = store.db.execute("SELECT MAX(id) FROM outbox").fetchone()[0]
            reviews.review_event(event_id, action, reviewer="ana")
            return json.loads(store.db.execute("SELECT payload FROM outbox WHERE id > ? AND topic = 'events'",
                                               (last,)).fetchone()[0])

        assert reviewed("confirm")["change"] == "update"  # still open
        assert store.close_stale_events(NOW + timedelta(hours=2))
        message = reviewed("reject")
        assert (message["change"], message["review"]) == ("end", "rejected")
        assert message["id"].startswith(message["event_id"] + ":end:1:reviewed:")
    finally:
        reviews.close()
        store.close()


def test_a_correction_must_name_a_taxon_the_station_knows(store: Store) -> None:
    """A typo stored as a species would be counted as one: refused with the closest names, unless
    the reviewer marks it as a new species; a known name in another case or form is stored as
    the model's label (edge/store/known_taxa.py)."""
    from edge.store.known_taxa import KnownTaxa

    labels = [{"name": "Mourning Dove", "common": "Mourning Dove", "scientific": "Zenaida macroura"},
              {"name": "Downy Woodpecker", "common": "Downy Woodpecker", "scientific": "Dryobates pubescens"}]
    reviews = ReviewStore(store.path, clock=lambda: NOW, known=lambda conn: KnownTaxa.of_station(conn, labels))
    try:
        frame(store, 0, "Downy Woodpecker")
        event_id = store.db.execute("SELECT id FROM events").fetchone()[0]
        before = tallies(store)
        for typed in ("mourn", "Xyzzy bird"):
            with pytest.raises(ReviewError, match="not a species this station knows"):
                reviews.review_event(event_id, "correct", reviewer="ana", species=typed)
        with pytest.raises(ReviewError, match="did you mean 'Mourning Dove'"):
            reviews.review_event(event_id, "correct", reviewer="ana", species="Mourning Dov")
        assert tallies(store) == before and store.db.execute("SELECT COUNT(*) FROM reviews").fetchone() == (0,)
        assert reviews.review_event(event_id, "correct", reviewer="ana", species="zenaida MACROURA").species == "Mourning Dove"
        assert tallies(store)["Mourning Dove"] == (1, 0, 1)
        added = reviews.review_event(event_id, "correct", reviewer="ana", species="Xyzzy bird", new_species=True)
        assert added.species == "Xyzzy bird" and tallies(store)["Xyzzy bird"] == (1, 0, 1)
        # Once counted here, the new species is known: no new-species step the next time.
        assert reviews.review_event(event_id, "correct", reviewer="ben", species="xyzzy  bird").species == "Xyzzy bird"
        consistent(store)
    finally:
        reviews.close()
