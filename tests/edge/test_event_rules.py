"""The event and tally rules on a real SQLite store, frame by frame (decisions given directly)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from edge.decision import Decision
from edge.store import FrameRecord, Store

T0 = datetime(2026, 3, 1, 22, 58, 0, tzinfo=timezone.utc)  # 23:58 in Berlin (UTC+1)


@pytest.fixture
def store(tmp_path: Path):
    store = Store(tmp_path / "t.db", zone="Europe/Berlin", independence_s=60,
                  clock=lambda: T0 + timedelta(hours=1))
    yield store
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


def test_two_species_at_once_are_two_visits(store: Store) -> None:
    changes = [c.change for r in (frame(store, 0, "Blue Jay"), frame(store, 5, "Northern Cardinal"),
                                  frame(store, 10, "Blue Jay")) for c in r.event_changes]
    assert changes == ["new", "new", "update"]
    assert [(e[1], e[2]) for e in events(store)] == [("Blue Jay", 2), ("Northern Cardinal", 1)]


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
