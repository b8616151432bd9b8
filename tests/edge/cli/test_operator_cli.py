"""What an operator sees at the edges of the reports and of `edge run --once`.

`edge events`/`edge frames` show the newest --limit rows (default 50): a table ends with a
footer that says how many were left out, CSV and JSON keep stdout pure data and say it on
stderr, and `--limit 0` means all rows. `--once` ends by closing every event its backlog proves
over and logs why any other stays open.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from edge.classify.decision import Decision
from edge.classify.model import load_classifier
from edge.daemon.wiring import build
from edge.store.writer import FrameRecord, Store
from tests.edge.conftest import jpeg_bytes

T0 = datetime(2026, 5, 1, 6, 0, 0, tzinfo=UTC)
EVENTS, FAILED = 120, 7  # 120 visits (one counted frame each, 5 minutes apart) and 7 unreadable frames


@pytest.fixture(scope="module")
def busy_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real store with more events and frames than the default --limit of 50."""
    path = tmp_path_factory.mktemp("busy") / "busy.db"
    store = Store(path, station_tz="UTC", independence_s=60)
    try:
        for n in range(EVENTS):
            sha = hashlib.sha256(f"visit {n}".encode()).hexdigest()
            store.record(FrameRecord(path=f"/cam/{n:03d}.jpg", sha256=sha, camera="cam", size=1, mtime=0.0,
                                     captured_at=T0 + timedelta(minutes=5 * n), time_source="exif", model_id="m",
                                     decision=Decision("species", "Cardinalis cardinalis", 0.9, "ok")))
        for n in range(FAILED):
            sha = hashlib.sha256(f"broken {n}".encode()).hexdigest()
            store.record(FrameRecord(path=f"/cam/broken{n}.jpg", sha256=sha, camera="cam", size=1, mtime=0.0,
                                     status="error", error="corrupt or truncated image"))
    finally:
        store.close()
    return path


def _edge(args: list[str], capsys: pytest.CaptureFixture[str]) -> SimpleNamespace:
    from edge.cli.commands import main

    code = main(args)
    out, err = capsys.readouterr()
    return SimpleNamespace(returncode=code, stdout=out, stderr=err)


def test_a_table_says_how_many_events_and_frames_the_limit_left_out(busy_db: Path, capsys) -> None:
    events = _edge(["events", "--db", str(busy_db)], capsys)
    assert events.returncode == 0, events.stderr
    lines = events.stdout.splitlines()
    assert len(lines) == 2 + 50 + 1  # header, rule, the newest 50, the footer
    assert lines[-1] == f"… {EVENTS - 50} more events not shown (use --limit 0 for all)"
    assert lines[2].startswith((T0 + timedelta(minutes=5 * (EVENTS - 1))).strftime("%Y-%m-%dT%H:%M"))  # newest first

    frames = _edge(["frames", "--db", str(busy_db), "--limit", "10"], capsys)
    assert frames.stdout.splitlines()[-1] == f"… {EVENTS + FAILED - 10} more frames not shown (use --limit 0 for all)"
    errors = _edge(["frames", "--db", str(busy_db), "--errors", "--limit", str(FAILED - 1)], capsys)
    assert errors.stdout.splitlines()[-1] == "… 1 more failed frame not shown (use --limit 0 for all)"
    exact = _edge(["frames", "--db", str(busy_db), "--errors", "--limit", str(FAILED)], capsys)
    assert "not shown" not in exact.stdout + exact.stderr  # nothing left out, nothing said


def test_csv_and_json_keep_stdout_data_and_say_it_on_stderr(busy_db: Path, capsys) -> None:
    csv = _edge(["events", "--db", str(busy_db), "--format", "csv", "--limit", "5"], capsys)
    assert len(csv.stdout.splitlines()) == 1 + 5 and "not shown" not in csv.stdout
    assert f"{EVENTS - 5} more events not shown (use --limit 0 for all)" in csv.stderr
    as_json = _edge(["frames", "--db", str(busy_db), "--format", "json"], capsys)
    assert len(json.loads(as_json.stdout)) == 50  # stdout parses: the note is not in it
    assert f"{EVENTS + FAILED - 50} more frames not shown" in as_json.stderr


def test_limit_0_shows_every_row_and_a_negative_limit_is_a_usage_error(busy_db: Path, capsys) -> None:
    events = _edge(["events", "--db", str(busy_db), "--limit", "0", "--format", "json"], capsys)
    assert events.returncode == 0 and len(json.loads(events.stdout)) == EVENTS and events.stderr == ""
    frames = _edge(["frames", "--db", str(busy_db), "--limit", "0"], capsys)
    assert len(frames.stdout.splitlines()) == 2 + EVENTS + FAILED and "not shown" not in frames.stdout
    with pytest.raises(SystemExit) as negative:
        _edge(["events", "--db", str(busy_db), "--limit", "-1"], capsys)
    assert negative.value.code == 2
    assert "--limit: -1 is negative (0 means all rows)" in capsys.readouterr().err


def test_run_once_closes_what_the_backlog_proves_over_and_says_why_the_rest_stay_open(
    tmp_path: Path, make_config, bird_photo, aiy_model: Path, caplog
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    classifier = load_classifier(aiy_model)
    from edge.ingest.imaging import decode

    dove = bird_photo("MOURNING DOVE", 1)
    denied = classifier.classify(decode(dove.read_bytes(), classifier.input_size).rgb, 1)[0][0].label
    shots = {
        # Long ago: over relative to now (what the idle loop of a running daemon closes too).
        "old": [("NORTHERN CARDINAL", 1, datetime(2026, 5, 1, 7, 0, 0, tzinfo=UTC))],
        # A camera clock 2 h ahead: a visit, then 5 minutes later (its clock) a frame that counts
        # nothing (a denied species). Only the camera's own newest frame proves the visit over.
        "ahead_proven": [("NORTHERN CARDINAL", 2, now + timedelta(hours=2)),
                         ("NORTHERN CARDINAL", 3, now + timedelta(hours=2, seconds=10)),
                         ("MOURNING DOVE", 1, now + timedelta(hours=2, minutes=5))],
        # Ahead too, with nothing after the visit: it may go on, so it stays open.
        "ahead_open": [("NORTHERN CARDINAL", 4, now + timedelta(hours=3))],
        # A moment ago: within the interval of now; stays open.
        "recent": [("NORTHERN CARDINAL", 5, now - timedelta(seconds=10))],
    }
    cameras = []
    for name, frames in shots.items():
        folder = tmp_path / name
        folder.mkdir()
        for index, (species, number, taken) in enumerate(frames):
            (folder / f"{index}.jpg").write_bytes(jpeg_bytes(bird_photo(species, number), taken.replace(tzinfo=None), "+00:00"))
        cameras.append({"name": name, "path": str(folder)})
    config = make_config(cameras, station={"timezone": "UTC"}, events={"independence_s": 60},
                         classify={"deny": [denied]})
    with caplog.at_level(logging.INFO, logger="edge.daemon.lifecycle"):
        assert build(config, once=True, field=False).run() == 0

    conn = sqlite3.connect(config.storage.database)
    states = dict(conn.execute("SELECT camera, group_concat(state) FROM events GROUP BY camera").fetchall())
    conn.close()
    assert states == {"old": "closed", "ahead_proven": "closed", "ahead_open": "open", "recent": "open"}
    left = [r.getMessage() for r in caplog.records if "left open" in r.getMessage()]
    assert left == [
        "2 event(s) left open: 1 with a last frame within 60 s of now and of their camera's newest frame "
        "(the visit may go on); 1 with a last frame after now (camera clock ahead of this device's: closed once "
        "no frame of it has been recorded for 60 s); a later run closes them"
    ]
    ended = [r.getMessage() for r in caplog.records if r.getMessage().startswith("event end")]
    assert sorted(m.split("camera ")[1].split(",")[0] for m in ended) == ["ahead_proven", "old"]
