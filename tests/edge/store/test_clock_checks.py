"""Camera clocks checked frame by frame (edge/store/clock_checks.py) on a real SQLite store: a
clock reset to 2000-01-01 mid-deployment, a clock set to 2035, frames before the deployment's
start; flagged, counted, logged once per run, and a future visit that closes."""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge.classify.decision import Decision
from edge.store import clock_checks
from edge.store.clock_checks import BEFORE_DEPLOYMENT, FUTURE, OUT_OF_ORDER, ClockRules
from edge.store.writer import FrameRecord, Store

NOW = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)
RESET = datetime(2000, 1, 1, 0, 0, tzinfo=UTC)


class Clock:
    """The store's clock (processing time), moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def record(store: Store, captured: datetime, species: str | None = "robin", camera: str = "cam",
           flags: tuple[str, ...] = ()):
    sha = hashlib.sha256(f"{camera}{captured.isoformat()}{species}".encode()).hexdigest()
    kind = "none" if species is None else "species"
    return store.record(FrameRecord(path=f"/{camera}/{sha[:8]}.jpg", sha256=sha, camera=camera, size=1, mtime=0.0,
                                    captured_at=captured, time_source="exif", model_id="m",
                                    decision=Decision(kind, species, 0.9, ""), time_flags=flags))


def flags_of(path: Path) -> list[tuple[str, str | None]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT captured_at, time_flags FROM frames ORDER BY id").fetchall()
    finally:
        conn.close()


# -- the rules, pure ----------------------------------------------------------------------------


def test_the_rules_on_their_own() -> None:
    rules = ClockRules(deployment_starts={"cam": datetime(2026, 5, 1, tzinfo=UTC)})
    recent = [datetime(2026, 6, d, tzinfo=UTC) for d in range(1, 10)]
    assert clock_checks.check("cam", datetime(2026, 6, 10, tzinfo=UTC), NOW, recent, rules) == ()
    assert clock_checks.check("cam", datetime(2026, 6, 11, 11, tzinfo=UTC), NOW, recent, rules) == ()
    assert clock_checks.check("cam", datetime(2035, 1, 1, tzinfo=UTC), NOW, recent, rules) == (FUTURE,)
    assert clock_checks.check("cam", RESET, NOW, recent, rules) == (BEFORE_DEPLOYMENT, OUT_OF_ORDER)
    assert clock_checks.check("other", RESET, NOW, recent, rules) == (OUT_OF_ORDER,)
    # Backwards within the tolerance, forwards however far (a camera back after two months): plausible.
    assert clock_checks.check("other", datetime(2026, 5, 20, tzinfo=UTC), NOW, recent, rules) == ()
    assert clock_checks.check("other", datetime(2026, 6, 10, tzinfo=UTC), NOW, [RESET] * 5, rules) == ()
    # The median: one odd reference frame moves it by one frame at most, never to 2000.
    assert clock_checks.reference(recent) == recent[4]
    assert clock_checks.reference([*recent[:4], RESET, *recent[4:]]) == recent[3]
    assert clock_checks.check("cam", RESET, NOW, [], ClockRules.of(0, 0)) == ()
    assert clock_checks.merge(("ambiguous",), (OUT_OF_ORDER, "ambiguous")) == ("ambiguous", OUT_OF_ORDER)
    assert clock_checks.doubtful(("ambiguous", FUTURE)) == (FUTURE,)
    assert clock_checks.parse(None) == () and clock_checks.parse("a,b") == ("a", "b")


# -- on the store -------------------------------------------------------------------------------


def test_a_clock_reset_mid_deployment_is_flagged_counted_and_logged_once(tmp_path: Path, caplog) -> None:
    clock = Clock(NOW)
    store = Store(tmp_path / "t.db", independence_s=60, clock=clock)
    start = datetime(2026, 6, 1, 8, tzinfo=UTC)
    for i in range(5):
        record(store, start + timedelta(hours=i))
    with caplog.at_level(logging.INFO, logger="edge.store.writer"):
        commits = [record(store, RESET + timedelta(seconds=20 * i), species=None if i == 1 else "robin") for i in range(4)]
        back = record(store, start + timedelta(days=2))
    assert [c.frame.time_flags for c in commits] == [(OUT_OF_ORDER,)] * 4
    assert back.frame.time_flags == ()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "camera cam" in warnings[0].getMessage() and "out-of-order" in warnings[0].getMessage()
    assert "median 2026-06-01T10:00:00.000Z" in warnings[0].getMessage()
    assert any("plausible again after 4 flagged frame(s)" in r.getMessage() for r in caplog.records)
    # Recorded and counted: the reset frames' visits are in the tallies and carry the flag.
    conn = store.conn
    assert conn.execute("SELECT SUM(frames) FROM daily_tallies WHERE day = '2000-01-01'").fetchone()[0] == 3
    assert conn.execute("SELECT time_flags, frame_count FROM events WHERE started_at < '2001'").fetchall() == [
        (OUT_OF_ORDER, 3)]
    assert conn.execute("SELECT COUNT(*) FROM events WHERE time_flags IS NULL").fetchone()[0] == 6
    store.close()
    # A restart goes on from the stored frames: the reference is read back, flagged ones left out.
    again = Store(tmp_path / "t.db", independence_s=60, clock=clock)
    assert record(again, RESET + timedelta(hours=5)).frame.time_flags == (OUT_OF_ORDER,)
    assert record(again, start + timedelta(days=3)).frame.time_flags == ()
    again.close()


def test_capture_time_flags_are_kept_beside_the_checks(tmp_path: Path) -> None:
    store = Store(tmp_path / "t.db", clock=Clock(NOW))
    commit = record(store, datetime(2035, 1, 1, tzinfo=UTC), flags=("malformed-offset",))
    assert commit.frame.time_flags == ("malformed-offset", FUTURE)
    assert flags_of(tmp_path / "t.db") == [("2035-01-01T00:00:00.000Z", "malformed-offset,future")]
    # The capture-time code's own flags are no doubt: such a frame is a reference like any other.
    record(store, datetime(2026, 6, 1, tzinfo=UTC), flags=("ambiguous",))
    assert record(store, RESET).frame.time_flags == (OUT_OF_ORDER,)
    store.close()


def test_before_the_deployment_start(tmp_path: Path) -> None:
    start = datetime(2026, 6, 1, 6, tzinfo=UTC)
    store = Store(tmp_path / "t.db", clock=Clock(NOW),
                  clock_rules=ClockRules(deployment_starts={"cam": start}))
    assert record(store, start - timedelta(seconds=1)).frame.time_flags == (BEFORE_DEPLOYMENT,)
    assert record(store, start).frame.time_flags == ()
    assert record(store, start - timedelta(days=1), camera="other").frame.time_flags == ()
    # A visit that spans the start holds a doubtful time: the whole visit carries the flag.
    assert store.conn.execute("SELECT time_flags, frame_count FROM events ORDER BY id").fetchall() == [
        (BEFORE_DEPLOYMENT, 2), (None, 1)]
    store.close()


def test_a_visit_from_a_future_clock_closes_after_the_interval_of_real_time(tmp_path: Path, caplog) -> None:
    clock = Clock(NOW)
    store = Store(tmp_path / "t.db", independence_s=60, clock=clock)
    ahead = datetime(2035, 3, 1, 9, tzinfo=UTC)
    normal = record(store, NOW - timedelta(seconds=10), camera="right")
    first = record(store, ahead)
    assert first.frame.time_flags == (FUTURE,)
    clock.now = NOW + timedelta(seconds=30)
    record(store, ahead + timedelta(seconds=30))  # the same visit, 30 s later on both clocks
    assert store.close_stale_events() == []
    clock.now = NOW + timedelta(seconds=80)
    # The right clock's visit is over; the future one was last recorded 50 s ago: it may go on.
    assert [c.event["camera"] for c in store.close_stale_events()] == ["right"]
    with caplog.at_level(logging.WARNING, logger="edge.store.writer"):
        clock.now = NOW + timedelta(seconds=95)
        closed = store.close_stale_events(behind_newest_frame=True)
    assert [c.event["camera"] for c in closed] == ["cam"]
    future = [c.event for c in closed if c.event["camera"] == "cam"][0]
    assert (future["frame_count"], future["time_flags"], future["state"]) == (2, FUTURE, "closed")
    said = [r.getMessage() for r in caplog.records if "clock is ahead" in r.getMessage()]
    assert len(said) == 1 and "2035-03-01T09:00:30.000Z" in said[0]
    assert normal.frame.time_flags == ()
    assert store.open_events() == []
    store.close()


@pytest.mark.parametrize("group_by", ["camera", "species"])
def test_checks_off(tmp_path: Path, group_by: str) -> None:
    store = Store(tmp_path / "t.db", clock=Clock(NOW), group_by=group_by, clock_rules=ClockRules.of(0, 0))
    record(store, datetime(2026, 6, 1, tzinfo=UTC))
    assert record(store, RESET).frame.time_flags == ()
    assert record(store, datetime(2035, 1, 1, tzinfo=UTC)).frame.time_flags == ()
    store.close()
