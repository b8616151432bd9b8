"""The event and tally rules on a real SQLite store, frame by frame (decisions given directly).

Rules that do not depend on `[events] group_by` run in both modes."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge.classify.decision import Decision
from edge.publish.outbox_writer import OutboxWriter
from edge.store.events import SpeciesVotes, vote
from edge.store.writer import FrameRecord, Store

T0 = datetime(2026, 3, 1, 22, 58, 0, tzinfo=UTC)  # 23:58 in Berlin (UTC+1)


@pytest.fixture(params=["camera", "species"])
def store(request, tmp_path: Path):
    """A store in each grouping mode (tests that hold in both)."""
    store = Store(tmp_path / "t.db", station_tz="Europe/Berlin", independence_s=60, group_by=request.param,
                  clock=lambda: T0 + timedelta(hours=1))
    yield store
    store.close()


@pytest.fixture
def make_store(tmp_path: Path):
    stores: list[Store] = []

    def make(group_by: str, outbox: OutboxWriter | None = None) -> Store:
        stores.append(Store(tmp_path / f"{group_by}-{len(stores)}.db", station_tz="Europe/Berlin", independence_s=60,
                            group_by=group_by, outbox=outbox, clock=lambda: T0 + timedelta(hours=1)))
        return stores[-1]

    yield make
    for store in stores:
        store.close()


def frame(store: Store, seconds: float, species: str | None, camera: str = "cam", confidence: float = 0.9):
    kind = "none" if species is None else ("unknown" if species == "unknown" else "species")
    sha = hashlib.sha256(f"{camera}{seconds}{species}".encode()).hexdigest()
    return store.record(FrameRecord(path=f"/cam/{sha[:8]}.jpg", sha256=sha, camera=camera, size=1, mtime=0.0,
                                    captured_at=T0 + timedelta(seconds=seconds), time_source="exif",
                                    model_id="m", decision=Decision(kind, species, confidence, "")))


def events(store: Store) -> list[tuple]:
    return [tuple(r) for r in store.db.execute(
        "SELECT camera, species, frame_count, started_at, ended_at, state FROM events ORDER BY id")]


def tallies(store: Store) -> dict[tuple[str, str], tuple[int, int]]:
    return {(d, s): (e, f) for d, s, e, f in store.db.execute(
        "SELECT day, species, SUM(events), SUM(frames) FROM daily_tallies GROUP BY day, species")
        if e or f}


@pytest.mark.parametrize(("group_by", "changes", "visits"), [
    ("species", ["new", "new", "update"], [("Blue Jay", 2), ("Northern Cardinal", 1)]),
    ("camera", ["new", "update", "update"], [("Blue Jay", 3)]),
])
def test_two_species_at_once(make_store, group_by: str, changes: list[str], visits: list[tuple]) -> None:
    store = make_store(group_by)
    seen = [c.change for r in (frame(store, 0, "Blue Jay"), frame(store, 5, "Northern Cardinal"),
                               frame(store, 10, "Blue Jay")) for c in r.event_changes]
    assert seen == changes
    assert [(e[1], e[2]) for e in events(store)] == visits


@pytest.mark.parametrize("group_by", ["camera", "species"])
def test_one_misnamed_frame_in_a_burst(make_store, group_by: str) -> None:
    """A 10-frame burst of a jay with one frame named a cardinal: one visit per camera, or a
    spurious one-frame cardinal visit per species."""
    store = make_store(group_by)
    for index in range(10):
        frame(store, 3 * index, "Northern Cardinal" if index == 4 else "Blue Jay", confidence=0.6 + index / 100)
    if group_by == "camera":
        assert [(e[1], e[2], e[3], e[4]) for e in events(store)] == [
            ("Blue Jay", 10, "2026-03-01T22:58:00.000Z", "2026-03-01T22:58:27.000Z")]
        # The event's confidence is its best jay frame, not the (better) cardinal frame.
        assert store.db.execute("SELECT confidence FROM events").fetchone()[0] == pytest.approx(0.69)
        assert tallies(store) == {("2026-03-01", "Blue Jay"): (1, 9), ("2026-03-01", "Northern Cardinal"): (0, 1)}
    else:
        assert [(e[1], e[2]) for e in events(store)] == [("Blue Jay", 9), ("Northern Cardinal", 1)]
        assert tallies(store) == {("2026-03-01", "Blue Jay"): (1, 9), ("2026-03-01", "Northern Cardinal"): (1, 1)}


def test_a_flipping_vote_moves_the_event_count_and_publishes_both_species(make_store) -> None:
    writer = OutboxWriter("dev", "Europe/Berlin", "m", {}, max_rows=1000)
    store = make_store("camera", outbox=writer)
    # 200 s after T0 is 00:01:20 on 2 March in Berlin: "today" for the store's clock, so
    # every frame queues the day's counts.
    frame(store, 200, "Northern Cardinal", confidence=0.9)
    frame(store, 205, "Blue Jay", confidence=0.6)  # 1:1, the cardinal's higher confidence keeps it
    assert events(store)[0][1] == "Northern Cardinal"
    last_id = store.db.execute("SELECT MAX(id) FROM outbox").fetchone()[0]
    result = frame(store, 210, "Blue Jay", confidence=0.5)  # 2:1 for the jay
    assert [(c.change, c.event["species"]) for c in result.event_changes] == [("update", "Blue Jay")]
    assert events(store)[0][1:3] == ("Blue Jay", 3)
    assert store.db.execute("SELECT confidence FROM events").fetchone()[0] == 0.6
    assert tallies(store) == {("2026-03-02", "Blue Jay"): (1, 2), ("2026-03-02", "Northern Cardinal"): (0, 1)}
    queued = {topic: json.loads(payload) for topic, payload in store.db.execute(
        "SELECT topic, payload FROM outbox WHERE id > ? ORDER BY id", (last_id,))}
    assert queued["events"]["species"] == "Blue Jay" and queued["events"]["frame_count"] == 3
    assert (queued["counts/blue_jay"]["events"], queued["counts/blue_jay"]["frames"]) == (1, 2)
    assert (queued["counts/northern_cardinal"]["events"], queued["counts/northern_cardinal"]["frames"]) == (0, 1)
    assert queued["counts"]["total"] == {"events": 1, "frames": 3, "individuals": 1}


def test_pruned_frames_keep_voting_for_the_event(make_store) -> None:
    """Retention may prune old frame rows; an event's vote counts them for its species."""
    store = make_store("camera")
    for seconds in (0, 3, 6):
        frame(store, seconds, "Blue Jay")
    with store.db.atomic():
        store.db.execute("DELETE FROM frames")
    for seconds in (9, 12, 15):
        frame(store, seconds, "Northern Cardinal", confidence=0.8)
    assert events(store)[0][1:3] == ("Blue Jay", 6)  # 3:3, the pruned jay frames' 0.9 each win
    frame(store, 18, "Northern Cardinal", confidence=0.8)
    assert events(store)[0][1:3] == ("Northern Cardinal", 7)
    assert store.db.execute("SELECT confidence FROM events").fetchone()[0] == 0.8
    # The jay, seen in 3 frames (species_min_frames), counts in the visit beside the headline cardinal.
    assert tallies(store) == {("2026-03-01", "Blue Jay"): (1, 3), ("2026-03-01", "Northern Cardinal"): (1, 4)}


def test_vote_rule() -> None:
    def votes(species: str, frames: int, total: float, first: str) -> SpeciesVotes:
        return SpeciesVotes(species, frames, total, total / frames, first)

    assert vote([votes("A", 3, 1.5, "1"), votes("B", 2, 1.9, "0")]).species == "A"  # most frames
    assert vote([votes("A", 2, 1.5, "0"), votes("B", 2, 1.6, "1")]).species == "B"  # then confidence
    assert vote([votes("A", 2, 1.6, "1"), votes("B", 2, 1.6, "0")]).species == "B"  # then the first seen
    assert vote([votes("unknown", 5, 4.0, "0"), votes("A", 1, 0.6, "1")]).species == "A"  # unknown never wins
    only_unknown = vote([votes("unknown", 2, 0.6, "0"), votes("unknown", 1, 0.4, "1")])
    assert (only_unknown.species, only_unknown.frames, only_unknown.best_confidence) == ("unknown", 3, 0.4)
    with pytest.raises(ValueError):
        vote([])


def test_unknown_frames_join_the_visit_or_wait_for_a_name(store: Store) -> None:
    frame(store, 0, "Blue Jay", confidence=0.7)
    frame(store, 20, "unknown", confidence=0.3)  # joins the jay's visit
    frame(store, 30, None)  # no bird: neither joins nor extends
    frame(store, 200, "unknown")  # nothing within 60 s: an unknown visit
    result = frame(store, 230, "House Finch", confidence=0.8)  # names it
    assert [c.change for c in result.event_changes] == ["update"]
    assert [(e[1], e[2], e[4]) for e in events(store)] == [
        ("Blue Jay", 2, "2026-03-01T22:58:20.000Z"), ("House Finch", 2, "2026-03-01T23:01:50.000Z")]
    assert store.db.execute("SELECT confidence FROM events WHERE species = 'Blue Jay'").fetchone()[0] == 0.7
    # Events moved from unknown to the finch; frames stay tallied as what each frame was.
    assert tallies(store) == {("2026-03-01", "Blue Jay"): (1, 1), ("2026-03-01", "unknown"): (0, 1),
                              ("2026-03-02", "unknown"): (0, 1), ("2026-03-02", "House Finch"): (1, 1)}


def test_gap_ends_a_visit_and_late_frames_extend_it_backwards(store: Store) -> None:
    frame(store, 100, "Blue Jay")  # 22:59:40Z = 23:59:40 in Berlin, 1 March
    result = frame(store, 300, "Blue Jay")  # 200 s later: the first visit ends, a new one starts
    assert [c.change for c in result.event_changes] == ["end", "new"]
    assert tallies(store) == {("2026-03-01", "Blue Jay"): (1, 1), ("2026-03-02", "Blue Jay"): (1, 1)}
    frame(store, 130, "Blue Jay")  # backlog: 30 s after the first visit: joins it (closed, updated)
    frame(store, 250, "Blue Jay")  # 50 s before the second visit: extends its start back
    frame(store, 190, "Blue Jay", camera="cam2")  # another camera: its own visit
    assert [(e[0], e[2], e[3], e[5]) for e in events(store)] == [
        ("cam", 2, "2026-03-01T22:59:40.000Z", "closed"), ("cam", 2, "2026-03-01T23:02:10.000Z", "open"),
        ("cam2", 1, "2026-03-01T23:01:10.000Z", "open")]
    # A late frame that moves a visit's start before local midnight moves its tally to that day.
    frame(store, 140, "Blue Jay", camera="cam2")  # 23:00:20Z: same day, 50 s before
    frame(store, 95, "Blue Jay", camera="cam2")  # 22:59:35Z = 23:59:35 on 1 March
    assert tallies(store) == {("2026-03-01", "Blue Jay"): (2, 2), ("2026-03-02", "Blue Jay"): (1, 5)}


def test_idle_visits_are_closed(store: Store) -> None:
    frame(store, 0, "Blue Jay")
    assert store.close_stale_events(T0 + timedelta(seconds=30)) == []
    closed = store.close_stale_events(T0 + timedelta(seconds=61))
    assert [c.change for c in closed] == ["end"] and events(store)[0][5] == "closed"


def test_a_visit_longer_than_max_duration_becomes_a_new_event(tmp_path: Path) -> None:
    """A bird at the feeder for 45 minutes, a frame every 30 s, cap 30 min: two visits, the
    first closed (`end`) by the frame that would have stretched it beyond the cap."""
    store = Store(tmp_path / "cap.db", station_tz="Europe/Berlin", independence_s=60, max_duration_s=1800,
                  clock=lambda: T0 + timedelta(hours=1))
    try:
        changes = {seconds: [c.change for c in frame(store, seconds, "Blue Jay").event_changes]
                   for seconds in range(0, 45 * 60 + 1, 30)}
        assert changes[1800] == ["update"]  # exactly 30 min long: still the first visit
        assert changes[1830] == ["end", "new"]
        assert [(e[2], e[3], e[4], e[5]) for e in events(store)] == [
            (61, "2026-03-01T22:58:00.000Z", "2026-03-01T23:28:00.000Z", "closed"),
            (30, "2026-03-01T23:28:30.000Z", "2026-03-01T23:43:00.000Z", "open")]
        # T0 is 23:58 in Berlin: the first visit counts on 1 March, the second on 2 March.
        assert tallies(store) == {("2026-03-01", "Blue Jay"): (1, 4), ("2026-03-02", "Blue Jay"): (1, 87)}
    finally:
        store.close()
    uncapped = Store(tmp_path / "nocap.db", independence_s=60, max_duration_s=0)
    try:
        for seconds in range(0, 45 * 60 + 1, 30):
            frame(uncapped, seconds, "Blue Jay")
        assert [e[2] for e in events(uncapped)] == [91]
    finally:
        uncapped.close()


def _vm_steps(store: Store, record) -> int:
    """SQLite virtual-machine instructions that one call costs (the work, not the time)."""
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    store.conn.set_progress_handler(count, 1)
    try:
        record()
    finally:
        store.conn.set_progress_handler(None, 1)
    return steps[0]


@pytest.mark.parametrize("group_by", ["camera", "species"])
def test_a_frames_cost_does_not_grow_with_its_visit(tmp_path: Path, group_by: str) -> None:
    """The vote reads the event's vote state, not all of its frames: the store's work for the
    2,000th frame of one visit is that of the 12th (same species; it used to grow linearly)."""
    store = Store(tmp_path / "t.db", station_tz="Europe/Berlin", independence_s=60, group_by=group_by,
                  durable_commits=False, clock=lambda: T0 + timedelta(hours=1))
    species = ["Blue Jay", "Blue Jay", "Northern Cardinal", "unknown"]
    cost = {}
    try:
        for index in range(2000):
            record = lambda index=index: frame(store, index * 0.5, species[index % 4], confidence=0.5 + (index % 7) / 20)  # noqa: E731
            if index + 1 in (12, 2000):
                cost[index + 1] = _vm_steps(store, record)
            else:
                record()
        assert events(store)[0][2] == (2000 if group_by == "camera" else 1000)
    finally:
        store.close()
    assert cost[2000] <= cost[12] + 20, cost
