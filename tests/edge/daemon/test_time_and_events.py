"""Capture times, events and daily counts around midnight in a non-UTC station time zone."""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge.daemon.wiring import build
from edge.store import queries
from edge.store.db import open_readonly
from tests.edge.conftest import jpeg_bytes


@pytest.fixture
def midnight_db(tmp_path: Path, make_config, bird_photo) -> Path:
    """Frames around midnight at a New York station (UTC-5 in November)."""
    camera = tmp_path / "cam"
    camera.mkdir()
    shots = {
        "a1.jpg": (datetime(2026, 11, 27, 23, 59, 30), None),
        "a2.jpg": (datetime(2026, 11, 27, 23, 59, 50), None),
        "a3.jpg": (datetime(2026, 11, 28, 0, 0, 20), None),  # same visit, next local day
        "b1.jpg": (datetime(2026, 11, 28, 0, 5, 0), None),  # 4:40 later: a new visit
        "c1.jpg": (datetime(2026, 11, 28, 6, 30, 0), "+01:00"),  # camera wrote its offset: 00:30 in New York
    }
    for index, (name, (taken, offset)) in enumerate(shots.items()):
        (camera / name).write_bytes(jpeg_bytes(bird_photo("NORTHERN CARDINAL", 1 + index), taken, offset))
    (camera / "d1.jpg").write_bytes(jpeg_bytes(bird_photo("NORTHERN CARDINAL", 5)))  # no EXIF time
    mtime = datetime(2026, 11, 29, 4, 30, tzinfo=UTC).timestamp()  # 23:30 on the 28th in New York
    os.utime(camera / "d1.jpg", (mtime, mtime))
    config = make_config([{"name": "cam", "path": str(camera)}], station={"timezone": "America/New_York"},
                         events={"independence_s": 60})
    assert build(config, once=True, field=False).run() == 0
    return config.storage.database


def test_capture_times_stored_utc_with_their_source(midnight_db: Path) -> None:
    conn = sqlite3.connect(midnight_db)
    rows = {Path(p).name: (c, s) for p, c, s in conn.execute("SELECT path, captured_at, time_source FROM frames")}
    conn.close()
    assert rows["a1.jpg"] == ("2026-11-28T04:59:30.000Z", "exif-local")
    assert rows["a3.jpg"] == ("2026-11-28T05:00:20.000Z", "exif-local")
    assert rows["c1.jpg"] == ("2026-11-28T05:30:00.000Z", "exif")
    assert rows["d1.jpg"] == ("2026-11-29T04:30:00.000Z", "mtime")


def test_events_and_days_follow_the_station_zone(midnight_db: Path) -> None:
    db = open_readonly(midnight_db)
    events = sorted(queries.events(db), key=lambda e: e["started_at"])
    assert [(e["start_local"], e["end_local"], e["frame_count"]) for e in events] == [
        ("2026-11-27T23:59:30-05:00", "2026-11-28T00:00:20-05:00", 3),
        ("2026-11-28T00:05:00-05:00", "2026-11-28T00:05:00-05:00", 1),
        ("2026-11-28T00:30:00-05:00", "2026-11-28T00:30:00-05:00", 1),
        ("2026-11-28T23:30:00-05:00", "2026-11-28T23:30:00-05:00", 1),
    ]
    by_day = queries.counts(db, by="day")
    assert [(r["period"], r["events"]) for r in by_day] == [("2026-11-27", 1), ("2026-11-28", 3)]
    frames = queries.counts(db, by="day", unit="frames")
    assert [(r["period"], r["frames"]) for r in frames] == [("2026-11-27", 2), ("2026-11-28", 4)]
    hourly = queries.counts(db, by="hour")
    assert [(r["period"], r["events"]) for r in hourly] == [
        ("2026-11-27T23:00-05:00", 1), ("2026-11-28T00:00-05:00", 2), ("2026-11-28T23:00-05:00", 1)]
    # Day bounds are local days; --until includes the whole day.
    assert [(r["period"], r["events"]) for r in queries.counts(db, by="day", since="2026-11-28", until="2026-11-28")] == [("2026-11-28", 3)]
    # A time-of-day bound counts from the rows themselves.
    assert sum(r["events"] for r in queries.counts(db, by="total", since="2026-11-28T00:10")) == 2
    # The same data seen in UTC: all but the last visit fall on the 28th.
    utc = queries.counts(db, by="day", zone=queries.ZoneInfo("UTC"))
    assert [(r["period"], r["events"]) for r in utc] == [("2026-11-28", 3), ("2026-11-29", 1)]



def _edge(args, capsys):
    """The real CLI entry point in-process (reports are read-only; a subprocess adds only startup)."""
    from types import SimpleNamespace

    from edge.cli.commands import main

    code = main(args)
    out, err = capsys.readouterr()
    return SimpleNamespace(returncode=code, stdout=out, stderr=err)


def test_report_commands_and_formats(midnight_db: Path, capsys) -> None:
    table = _edge(["counts", "--db", str(midnight_db), "--by", "hour"], capsys)
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[0].split() == ["period", "species", "events"]
    assert "2026-11-27T23:00-05:00  Cardinalis cardinalis       1" in table.stdout
    csv = _edge(["counts", "--db", str(midnight_db), "--by", "total", "--frames", "--format", "csv",
                 "--camera", "cam", "--species", "Cardinalis cardinalis"], capsys)
    assert csv.stdout.splitlines() == ["period,species,frames", "total,Cardinalis cardinalis,6"]
    none = _edge(["counts", "--db", str(midnight_db), "--camera", "elsewhere", "--format", "json"], capsys)
    assert none.returncode == 0 and none.stdout.strip() == "[]"
    events = _edge(["events", "--db", str(midnight_db), "--format", "csv", "--since", "2026-11-28"], capsys)
    lines = events.stdout.splitlines()
    assert lines[0] == "start_local,end_local,camera,species,individuals,species_counts,confidence,frame_count,state,review,uid" and len(lines) == 4
    frames = _edge(["frames", "--db", str(midnight_db), "--format", "json"], capsys)
    assert len(__import__("json").loads(frames.stdout)) == 6
    errors = _edge(["frames", "--db", str(midnight_db), "--errors"], capsys)
    assert "(no rows)" in errors.stdout
    bad = _edge(["counts", "--db", str(midnight_db), "--since", "yesterday"], capsys)
    assert bad.returncode == 2 and "--since/--until: 'yesterday' is not a date" in bad.stderr
    missing = _edge(["counts", "--db", str(midnight_db.parent / "absent.db")], capsys)
    assert missing.returncode == 2 and "database not found" in missing.stderr


@pytest.mark.parametrize("group_by", ["camera", "species"])
def test_a_misnamed_frame_in_a_burst_through_the_daemon(tmp_path: Path, make_config, bird_photo, group_by: str) -> None:
    """The real pipeline: a cardinal's burst of six frames, the third a chickadee photo (as if
    the model had misnamed it). Per camera it is one cardinal visit; per species, two visits."""
    camera = tmp_path / "cam"
    camera.mkdir()
    start = datetime(2026, 11, 28, 12, 0, 0)
    photos = [("NORTHERN CARDINAL", 1), ("NORTHERN CARDINAL", 2), ("BLACK-CAPPED CHICKADEE", 1),
              ("NORTHERN CARDINAL", 3), ("NORTHERN CARDINAL", 4), ("NORTHERN CARDINAL", 5)]
    for index, (species, number) in enumerate(photos):
        taken = start.replace(second=5 * index)
        (camera / f"f{index}.jpg").write_bytes(jpeg_bytes(bird_photo(species, number), taken, "+00:00"))
    config = make_config([{"name": "cam", "path": str(camera)}], station={"timezone": "UTC"},
                         events={"independence_s": 60, "group_by": group_by})
    assert build(config, once=True, field=False).run() == 0
    db = open_readonly(config.storage.database)
    frames = [s for (s,) in db.execute("SELECT species FROM frames ORDER BY captured_at")]
    assert frames == ["Cardinalis cardinalis"] * 2 + ["Poecile atricapillus"] + ["Cardinalis cardinalis"] * 3
    events = [tuple(r) for r in db.execute("SELECT species, frame_count FROM events ORDER BY started_at")]
    tallies = {s: (e, f) for s, e, f in db.execute("SELECT species, events, frames FROM daily_tallies")}
    db.close()
    if group_by == "camera":
        assert events == [("Cardinalis cardinalis", 6)]
        assert tallies == {"Cardinalis cardinalis": (1, 5), "Poecile atricapillus": (0, 1)}
    else:
        assert events == [("Cardinalis cardinalis", 5), ("Poecile atricapillus", 1)]
        assert tallies == {"Cardinalis cardinalis": (1, 5), "Poecile atricapillus": (1, 1)}
