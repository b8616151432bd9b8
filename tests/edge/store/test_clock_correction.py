"""`edge clock correct`: a camera reset to 2000-01-01 mid-deployment, fixed after the fact.

Real SQLite through the real Store (detector route, so visits have per-species counts) and the
real CLI entry point: the frames and visits in the range move by the offset from a pair read at
a site visit, the daily tallies move to the right days (events, individuals and frames), the
correction is recorded and listed, a range that would split a visit or holds no frame is
refused with nothing written, and --dry-run writes nothing.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge.classify.decision import Decision
from edge.classify.model import Prediction
from edge.cli import commands
from edge.store.writer import BirdRecord, FrameRecord, Store

TRUE_START = datetime(2026, 6, 10, 8, 0, tzinfo=UTC)
RESET = datetime(2000, 1, 1, 0, 0, tzinfo=UTC)  # where the clock went after the battery change


def _frame(store: Store, at: datetime, names: list[str], camera: str = "gate") -> None:
    sha = hashlib.sha256(f"{camera}{at.isoformat()}{names}".encode()).hexdigest()
    birds = [BirdRecord((0.1, 0.2 * i, 0.3, 0.2 * i + 0.15), 0.8, "bird", [Prediction(n, 0.9, 0)],
                        Decision("species", n, 0.9, "ok")) for i, n in enumerate(names)]
    store.record(FrameRecord(path=f"/{camera}/{sha[:10]}.jpg", sha256=sha, camera=camera, size=1, mtime=0.0,
                             captured_at=at, time_source="exif-local", model_id="m", detector_id="d", birds=birds))


@pytest.fixture
def station(tmp_path: Path) -> Path:
    path = tmp_path / "edge.db"
    store = Store(path, station_tz="UTC", independence_s=60, clock=lambda: TRUE_START + timedelta(days=2))
    try:
        _frame(store, TRUE_START, ["robin"])                      # a visit on the true clock
        _frame(store, TRUE_START + timedelta(seconds=5), ["robin"])
        for minutes in (5, 20):                                   # two visits after the reset
            _frame(store, RESET + timedelta(minutes=minutes), ["jay", "jay"])
            _frame(store, RESET + timedelta(minutes=minutes, seconds=4), ["jay", "wren"])
        store.close_stale_events(TRUE_START + timedelta(days=2))
    finally:
        store.close()
    return path


def _tallies(path: Path) -> dict[tuple[str, str], tuple[int, int, int]]:
    conn = sqlite3.connect(path)
    try:
        return {(d, s): (e, f, i) for d, s, e, f, i in conn.execute(
            "SELECT day, species, events, frames, individuals FROM daily_tallies WHERE events OR frames OR individuals")}
    finally:
        conn.close()


def _rows(path: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_a_reset_clock_is_corrected_and_the_visits_and_tallies_follow(station: Path, capsys) -> None:
    before = _tallies(station)
    assert before[("2000-01-01", "jay")] == (2, 4, 4) and before[("2000-01-01", "wren")] == (2, 2, 2)
    # At the site visit the camera showed 2000-01-01 00:30 when it was 2026-06-10 09:30 (UTC station).
    args = ["clock", "correct", "--db", str(station), "--camera", "gate", "--since", "2000-01-01",
            "--until", "2000-01-01", "--camera-time", "2000-01-01T00:30:00", "--true-time", "2026-06-10T09:30:00",
            "--reviewer", "ana", "--reason", "reset after a battery change"]
    assert commands.main([*args, "--dry-run"]) == 0
    assert "would move 4 frame(s) and 2 visit(s)" in capsys.readouterr().out
    assert _tallies(station) == before and _rows(station, "SELECT COUNT(*) FROM clock_corrections") == [(0,)]

    assert commands.main(args) == 0
    assert "moved 4 frame(s) and 2 visit(s)" in capsys.readouterr().out
    after = _tallies(station)
    assert ("2000-01-01", "jay") not in after
    assert after[("2026-06-10", "jay")] == (2, 4, 4) and after[("2026-06-10", "wren")] == (2, 2, 2)
    assert after[("2026-06-10", "robin")] == before[("2026-06-10", "robin")]
    offset = datetime(2026, 6, 10, 9, 30) - datetime(2000, 1, 1, 0, 30)
    starts = [r[0] for r in _rows(station, "SELECT started_at FROM events WHERE species = 'jay' ORDER BY started_at")]
    assert starts == [(RESET + timedelta(minutes=m) + offset).strftime("%Y-%m-%dT%H:%M:%S.000Z") for m in (5, 20)]
    assert {r[0] for r in _rows(station, "SELECT time_source FROM frames WHERE captured_at >= '2026-06-10T09'")} == {
        "exif-local+corrected"}
    assert _rows(station, "SELECT day FROM event_species GROUP BY day") == [("2026-06-10",)]

    assert commands.main(["clock", "history", "--db", str(station), "--format", "json"]) == 0
    recorded = json.loads(capsys.readouterr().out)
    assert [(r["camera"], r["reviewer"], r["offset_s"], r["frames"], r["events"], r["reason"]) for r in recorded] == [
        ("gate", "ana", offset.total_seconds(), 4, 2, "reset after a battery change")]


def test_a_range_that_would_split_a_visit_or_holds_nothing_is_refused(station: Path, capsys) -> None:
    before = _tallies(station)
    base = ["clock", "correct", "--db", str(station), "--camera", "gate", "--offset-s", "3600", "--reviewer", "ana"]
    # 00:05:00 to 00:05:02 holds the first frame of a visit but not its second.
    assert commands.main([*base, "--since", "2000-01-01T00:05", "--until", "2000-01-01T00:05:02"]) == 2
    assert "would be split" in capsys.readouterr().err
    assert commands.main([*base, "--since", "1999-01-01", "--until", "1999-01-02"]) == 2
    assert "no recorded frame" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:  # argparse: --offset-s and --camera-time exclude each other
        commands.main([*base, "--since", "2000-01-01", "--until", "2000-01-01", "--camera-time", "x"])
    assert usage.value.code == 2
    capsys.readouterr()
    assert _tallies(station) == before and _rows(station, "SELECT COUNT(*) FROM clock_corrections") == [(0,)]


def test_a_moved_visit_next_to_another_is_named_not_merged(station: Path, capsys) -> None:
    # Moving the 00:05 and 00:20 visits onto the true visit's minute: within the interval of it.
    offset = (TRUE_START - (RESET + timedelta(minutes=5))).total_seconds() + 30
    assert commands.main(["clock", "correct", "--db", str(station), "--camera", "gate", "--since", "2000-01-01",
                          "--until", "2000-01-01", "--offset-s", str(offset), "--reviewer", "ana"]) == 0
    out = capsys.readouterr().out
    assert "not merged" in out
    assert _rows(station, "SELECT COUNT(*) FROM events") == [(3,)]


def test_moved_visits_are_queued_for_mqtt_with_their_new_times(station: Path) -> None:
    from zoneinfo import ZoneInfo

    from edge.publish.outbox_writer import OutboxWriter
    from edge.store.corrections import Correction, correct

    conn = sqlite3.connect(station)
    try:
        result = correct(conn, Correction("gate", RESET, RESET + timedelta(days=1), TRUE_START - RESET, "ana"),
                         ZoneInfo("UTC"), independence_s=60, outbox=OutboxWriter("st", "UTC", "m", {}, 1000))
        payloads = [json.loads(p) for (p,) in conn.execute("SELECT payload FROM outbox WHERE topic = 'events'")]
    finally:
        conn.close()
    moved = [p for p in payloads if p["event_id"] in result.events]
    assert len(moved) == 2 and all(p["start"].startswith("2026-06-10") for p in moved)
    assert {c["species"]: c["individuals"] for c in moved[0]["species_counts"]} == {"jay": 2, "wren": 1}
