"""Where every time came from, said by the real CLI (issue 20, items 4 and 5).

Real photos without any EXIF time, through `edge run --once` in subprocesses: copied with `cp`
they all carry the moment of the copy and collapse into one visit, and the run says so in a
WARNING; copied with `cp -p` they keep the camera's file times and make one visit each.
`edge frames` shows each frame's time_source and time_flags, `--since/--until` bound the
capture time, the run ends with a summary line, a change of station zone on an existing
database is refused unless forced, and a report piped into `head` ends quietly.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from edge.classify.decision import Decision
from edge.store.writer import FrameRecord, Store
from tests.edge.conftest import count_rows, jpeg_bytes, query_rows, wait_for

BERLIN = ZoneInfo("Europe/Berlin")
# The camera's own file times: one frame every 5 minutes from 07:00 on 21 November (Berlin).
FIRST = datetime(2026, 11, 21, 7, 0, tzinfo=BERLIN)
PHOTOS = ([("NORTHERN CARDINAL", n) for n in range(1, 6)] + [("BLACK-CAPPED CHICKADEE", n) for n in range(1, 6)]
          + [("MOURNING DOVE", n) for n in range(1, 3)])


def _edge(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge", *args], env=env, capture_output=True, text=True, timeout=300)


def _run_once(camera: Path, db: Path, model: Path, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess:
    return _edge(["run", "--once", "--model", str(model), "--watch", str(camera), "--db", str(db),
                  "--timezone", "Europe/Berlin", "--log-level", "INFO", *extra], env)


@pytest.fixture(scope="module")
def card(tmp_path_factory: pytest.TempPathFactory, birds25_dir: Path) -> Path:
    """A camera's card: real photos with no EXIF at all, file times 5 minutes apart."""
    folder = tmp_path_factory.mktemp("card") / "DCIM"
    folder.mkdir()
    for index, (species, number) in enumerate(PHOTOS):
        path = folder / f"IMG_{index:04d}.JPG"
        path.write_bytes(jpeg_bytes(birds25_dir / species / f"{number}.jpg"))  # re-encoded: no EXIF time
        taken = (FIRST + timedelta(minutes=5 * index)).timestamp()
        os.utime(path, (taken, taken))
    return folder


def _copy(card: Path, target: Path, *flags: str) -> Path:
    target.mkdir(parents=True)
    subprocess.run(["cp", *flags, *sorted(str(p) for p in card.iterdir()), str(target)], check=True)
    return target


@pytest.fixture(scope="module")
def copied(card: Path, tmp_path_factory: pytest.TempPathFactory, aiy_model_dir: Path, cli_env) -> dict:
    """`edge run --once` over the card copied with `cp` and with `cp -p` (plus a broken file and
    a second copy of one photo there), each into its own database."""
    base = tmp_path_factory.mktemp("copies")
    model = aiy_model_dir / "model.tflite"
    plain = _copy(card, base / "cp" / "feeder")
    kept = _copy(card, base / "cp-p" / "feeder", "-p")
    (kept / "broken.jpg").write_bytes(b"\xff\xd8 not a picture")
    shutil.copy2(kept / "IMG_0000.JPG", kept / "IMG_0000_copy.JPG")  # the same content again: a duplicate
    runs = {}
    for name, camera in (("cp", plain), ("cp -p", kept)):
        db = camera.parent / "trailcam.db"
        runs[name] = {"run": _run_once(camera, db, model, cli_env), "db": db}
    return runs


def _frames(db: Path, env: dict[str, str], *extra: str) -> list[dict[str, str]]:
    listed = _edge(["frames", "--db", str(db), "--format", "csv", "--limit", "0", *extra], env)
    assert listed.returncode == 0, listed.stderr
    return list(csv.DictReader(io.StringIO(listed.stdout)))


def test_cp_without_p_gives_every_frame_the_copy_s_time_one_visit_and_a_warning(copied: dict, cli_env) -> None:
    run, db = copied["cp"]["run"], copied["cp"]["db"]
    assert run.returncode == 0, run.stderr
    rows = _frames(db, cli_env)
    assert len(rows) == len(PHOTOS) and {r["time_source"] for r in rows} == {"mtime"}
    assert {r["time_flags"] for r in rows} == {""}
    # The time of the copy (today), not the camera's 21 November.
    assert all(not r["captured_local"].startswith("2026-11-21") for r in rows)
    assert query_rows(db, "SELECT COUNT(DISTINCT event_id) FROM frames WHERE event_id IS NOT NULL") == [(1,)]
    warnings = [line for line in run.stderr.splitlines() if " WARNING " in line and "share one file time" in line]
    assert len(warnings) == 1, run.stderr  # once for the backlog, not once per frame
    assert re.search(rf"camera feeder: {len(PHOTOS)} of {len(PHOTOS)} frame\(s\) timed by their file \(no EXIF "
                     r"time\) share one file time, within 2 s of \S+Z, and count as 1 visit\(s\)", warnings[0])
    assert "`cp -p` or `rsync -t`" in warnings[0] and "cameras that write EXIF times" in warnings[0]


def test_cp_p_keeps_the_camera_s_times_and_its_visits(copied: dict, cli_env) -> None:
    run, db = copied["cp -p"]["run"], copied["cp -p"]["db"]
    assert run.returncode == 0, run.stderr
    assert "share one file time" not in run.stderr
    rows = {Path(r["path"]).name: r for r in _frames(db, cli_env) if r["status"] == "ok"}
    assert {r["time_source"] for r in rows.values()} == {"mtime"}
    assert rows["IMG_0000.JPG"]["captured_local"] == "2026-11-21T07:00:00+01:00"
    assert rows["IMG_0011.JPG"]["captured_local"] == "2026-11-21T07:55:00+01:00"
    visits = query_rows(db, "SELECT COUNT(DISTINCT event_id) FROM frames WHERE event_id IS NOT NULL")[0][0]
    assert visits == query_rows(db, "SELECT COUNT(*) FROM frames WHERE event_id IS NOT NULL")[0][0] > 1
    # The JSON and table carry the columns too.
    as_json = json.loads(_edge(["frames", "--db", str(db), "--format", "json", "--limit", "0"], cli_env).stdout)
    assert all({"time_source", "time_flags"} <= set(row) for row in as_json)
    assert [(row["time_source"], row["time_flags"]) for row in as_json if row["status"] == "ok"] == [("mtime", None)] * 12
    assert [row["time_source"] for row in as_json if row["status"] == "error"] == [None]  # no capture time
    table = _edge(["frames", "--db", str(db), "--limit", "0"], cli_env).stdout.splitlines()
    assert table[0].split()[:3] == ["captured_local", "time_source", "time_flags"]
    assert table[-1].split()[:2] == ["2026-11-21T07:00:00+01:00", "mtime"]  # the oldest processed, last


def test_the_running_daemon_warns_once_for_a_batch_copied_without_p(card: Path, tmp_path: Path, make_config,
                                                                       thread_daemon, caplog) -> None:
    """Live: the files arrive one by one while the daemon runs; the check waits until the batch
    is over (the queue quiet for idle_interval_s), so it sees the whole batch and says it once."""
    camera = tmp_path / "feeder"
    config = make_config([{"name": "feeder", "path": str(camera)}], station={"timezone": "Europe/Berlin"})
    caplog.set_level(logging.WARNING, logger="edge.daemon.lifecycle")
    runner = thread_daemon(config)
    runner.daemon.idle_interval_s = 1.0
    subprocess.run(["cp", *sorted(str(p) for p in card.iterdir()), str(camera)], check=True)
    wait_for(lambda: count_rows(config.storage.database, "SELECT COUNT(*) FROM frames") == len(PHOTOS),
             timeout=120, what="the copied frames")
    wait_for(lambda: [r for r in caplog.records if "share one file time" in r.getMessage()], timeout=30,
             what="the shared file time warning")
    runner.stop()
    said = [r.getMessage() for r in caplog.records if "share one file time" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith(f"camera feeder: {len(PHOTOS)} of {len(PHOTOS)} frame(s)"), said


def test_run_once_ends_with_a_summary_line(copied: dict) -> None:
    for name, errors, duplicates in (("cp", 0, 0), ("cp -p", 1, 1)):
        run, db = copied[name]["run"], copied[name]["db"]
        visits = query_rows(db, "SELECT COUNT(DISTINCT event_id) FROM frames WHERE event_id IS NOT NULL")[0][0]
        birds = query_rows(db, "SELECT COALESCE(SUM(individuals), 0) FROM event_species")[0][0]
        species = query_rows(db, "SELECT COUNT(DISTINCT species) FROM event_species WHERE species != 'unknown'")[0][0]
        ok = len(PHOTOS)
        assert run.stdout.splitlines()[-1] == (
            f"summary: {ok + errors + duplicates} frame(s): {ok} ok, {errors} error(s), {duplicates} duplicate(s); "
            f"{visits} visit(s), {species} species, {birds} bird(s); times: {ok} from file times (mtime), 0 flagged"
        ), name
        assert birds >= visits > 0 and species > 0


def test_since_and_until_bound_the_capture_day(copied: dict, cli_env) -> None:
    db = copied["cp -p"]["db"]
    today = datetime.now(BERLIN).date().isoformat()
    captured = _frames(db, cli_env, "--since", "2026-11-21", "--until", "2026-11-21")
    assert sorted(Path(r["path"]).name for r in captured) == sorted(
        [f"IMG_{i:04d}.JPG" for i in range(len(PHOTOS))])  # the duplicate has no row; the error row a later day
    assert _frames(db, cli_env, "--since", "2026-11-21T07:30", "--until", "2026-11-21T07:40") == [
        r for r in captured if r["captured_local"][11:16] in ("07:30", "07:35")]
    # A failed frame has no capture time: it is bounded by when it was processed.
    errors = _frames(db, cli_env, "--errors", "--since", today)
    assert [Path(r["path"]).name for r in errors] == ["broken.jpg"]
    assert [Path(r["path"]).name for r in _frames(db, cli_env, "--since", today)] == ["broken.jpg"]
    # The old meaning, asked for: processing time.
    assert _frames(db, cli_env, "--by-processed", "--since", "2026-11-21", "--until", "2026-11-21") == []
    assert len(_frames(db, cli_env, "--by-processed", "--since", today)) == len(PHOTOS) + 1
    usage = _edge(["frames", "--help"], cli_env).stdout
    assert "--by-processed" in usage and "capture time" in usage


def _photo_camera(folder: Path, birds25_dir: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "a.jpg").write_bytes(jpeg_bytes(birds25_dir / "NORTHERN CARDINAL" / "1.jpg", datetime(2026, 6, 1, 8, 0)))
    return folder


def _contents(db: Path) -> dict:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return {table: conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
                for table in ("meta", "frames", "events", "daily_tallies", "event_species")}
    finally:
        conn.close()


def test_a_station_zone_change_is_refused_unless_forced(tmp_path: Path, birds25_dir: Path, aiy_model_dir: Path,
                                                        cli_env) -> None:
    model = str(aiy_model_dir / "model.tflite")
    camera, db = _photo_camera(tmp_path / "feeder", birds25_dir), tmp_path / "state" / "trailcam.db"
    common = ["--model", model, "--watch", str(camera), "--db", str(db)]
    fresh = _edge(["check", *common], cli_env)
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    assert 'station.timezone: warning: UTC, the default: hours and days are UTC\'s' in fresh.stdout
    first = _edge(["run", "--once", *common, "--timezone", "Europe/Berlin"], cli_env)
    assert first.returncode == 0, first.stderr
    said = _edge(["check", *common, "--timezone", "Europe/Berlin"], cli_env)
    assert said.returncode == 0 and "station.timezone: ok (Europe/Berlin)" in said.stdout
    before = _contents(db)
    files = sorted(p.name for p in db.parent.iterdir())

    (camera / "b.jpg").write_bytes(jpeg_bytes(birds25_dir / "NORTHERN CARDINAL" / "2.jpg", datetime(2026, 6, 1, 9, 0)))
    refused = _edge(["run", "--once", *common, "--timezone", "America/New_York"], cli_env)
    assert refused.returncode == 2
    assert (f"edge: station.timezone: 'America/New_York' is not the zone the database {db} was written in "
            "('Europe/Berlin'): its days and hours would move. Keep its zone ([station] timezone = \"Europe/Berlin\", "
            "or --timezone Europe/Berlin), or change the station's zone deliberately with `edge run --force-timezone`"
            ) in refused.stderr, refused.stderr
    assert "--force-timezone" in refused.stderr and "Traceback" not in refused.stderr
    assert _contents(db) == before and sorted(p.name for p in db.parent.iterdir()) == files  # nothing changed
    checked = _edge(["check", *common, "--timezone", "America/New_York"], cli_env)
    assert checked.returncode == 2
    assert "station.timezone: 'America/New_York' is not the zone the database" in checked.stdout
    assert "check: 1 problem(s)" in checked.stdout

    forced = _edge(["run", "--once", *common, "--timezone", "America/New_York", "--force-timezone"], cli_env)
    assert forced.returncode == 0, forced.stderr
    assert re.search(r" WARNING edge\.store\.writer: station\.timezone: database \S+ changes from Europe/Berlin "
                     r"to America/New_York", forced.stderr), forced.stderr
    assert query_rows(db, "SELECT value FROM meta WHERE key = 'timezone'") == [("America/New_York",)]
    assert query_rows(db, "SELECT COUNT(*) FROM frames") == [(2,)]
    again = _edge(["check", *common, "--timezone", "America/New_York"], cli_env)
    assert again.returncode == 0 and "station.timezone: ok (America/New_York)" in again.stdout


@pytest.fixture(scope="module")
def long_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real store with far more frame rows than a pipe holds (so a closed reader is noticed)."""
    path = tmp_path_factory.mktemp("long") / "long.db"
    store = Store(path, station_tz="UTC", independence_s=60, durable_commits=False)
    start = datetime(2026, 5, 1, 6, 0, tzinfo=UTC)
    try:
        for n in range(1500):
            store.record(FrameRecord(path=f"/cam/a-rather-long-folder-name/IMG_{n:05d}.JPG",
                                     sha256=hashlib.sha256(f"frame {n}".encode()).hexdigest(), camera="cam", size=1,
                                     mtime=0.0, captured_at=start + timedelta(minutes=2 * n), time_source="exif",
                                     model_id="m", decision=Decision("species", "Cardinalis cardinalis", 0.9, "ok")))
    finally:
        store.close()
    return path


@pytest.mark.parametrize("command", [["frames", "--limit", "0"], ["events", "--limit", "0", "--format", "csv"]])
def test_a_report_piped_into_head_ends_quietly(long_db: Path, cli_env, command: list[str]) -> None:
    line = " ".join([sys.executable, "-m", "edge", *command, "--db", str(long_db)])
    piped = subprocess.run(["bash", "-c", f'{line} | head -n 3; echo "edge exit ${{PIPESTATUS[0]}}" >&2'],
                           env=cli_env, capture_output=True, text=True, timeout=120)
    assert len(piped.stdout.splitlines()) == 3
    assert "Traceback" not in piped.stderr and "BrokenPipeError" not in piped.stderr, piped.stderr
    assert piped.stderr.strip().splitlines()[-1] in ("edge exit 0", "edge exit 141"), piped.stderr


def test_a_daemon_built_without_the_cli_refuses_another_zone_too(tmp_path: Path, birds25_dir: Path, make_config,
                                                                 caplog) -> None:
    from edge.daemon.lifecycle import DaemonError
    from edge.daemon.wiring import build

    camera = _photo_camera(tmp_path / "feeder", birds25_dir)
    berlin = make_config([{"name": "feeder", "path": str(camera)}], station={"timezone": "Europe/Berlin"})
    assert build(berlin, once=True, field=False).run() == 0
    before = _contents(berlin.storage.database)
    london = make_config([{"name": "feeder", "path": str(camera)}], station={"timezone": "Europe/London"})
    with pytest.raises(DaemonError, match=r"^station\.timezone: 'Europe/London' is not the zone the database .* "
                                          r"\('Europe/Berlin'\)"):
        build(london, once=True, field=False).run()
    assert _contents(berlin.storage.database) == before
    caplog.set_level(logging.WARNING, logger="edge.store.writer")
    daemon = build(london, once=True, field=False, force_timezone=True)
    assert daemon.run() == 0 and daemon.summary == (
        "summary: 1 frame(s): 0 ok, 0 error(s), 0 duplicate(s), 1 already recorded; 0 visit(s), 0 species, "
        "0 bird(s); times: 0 from file times (mtime), 0 flagged")
    assert "changes from Europe/Berlin to Europe/London" in caplog.text
    assert query_rows(berlin.storage.database, "SELECT value FROM meta WHERE key = 'timezone'") == [("Europe/London",)]
