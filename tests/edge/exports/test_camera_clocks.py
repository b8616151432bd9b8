"""Camera clocks that lie, end to end (issue 20): real photos with written EXIF times through the
real `edge run --once`, then `edge counts`, `edge status`, `edge report` and the Camtrap DP
export (validated offline).

- feeder: two days of cardinals, then a battery change resets its clock to 2000-01-01 (three
  frames, two visits), then a clock set to 2035 (one frame). No [cameras.deployment] start or
  end: the span comes from the data, and the flagged frames must stay out of it.
- gate: configured to start 2026-11-02 08:00; one frame at 07:00 that day (before-deployment)
  and one at 09:00.
- shed: one frame, nothing doubtful.
"""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge.store.writer import Store
from tests.edge.conftest import jpeg_bytes
from tests.edge.exports.helpers import edge, edge_counts, rows

REAL = datetime(2026, 11, 1, 7, 0, tzinfo=UTC)  # 08:00 in Berlin: when the photos were really taken

SHOTS = {  # camera → (file, the camera's EXIF time (local, no offset), the real time in hours after REAL)
    "feeder": [("IMG_0001.JPG", datetime(2026, 11, 1, 8, 0, 0), 0.0),
               ("IMG_0002.JPG", datetime(2026, 11, 1, 8, 0, 20), 0.006),
               ("IMG_0003.JPG", datetime(2026, 11, 3, 9, 0, 0), 49.0),
               ("IMG_0004.JPG", datetime(2000, 1, 1, 0, 0, 10), 74.0),   # battery changed: clock reset
               ("IMG_0005.JPG", datetime(2000, 1, 1, 0, 0, 30), 74.006),
               ("IMG_0006.JPG", datetime(2000, 1, 2, 7, 0, 0), 97.0),
               ("IMG_0007.JPG", datetime(2035, 1, 1, 12, 0, 0), 120.0)],  # set again, to the wrong year
    "gate": [("IMG_0001.JPG", datetime(2026, 11, 2, 7, 0, 0), 24.0),       # before its configured start
             ("IMG_0002.JPG", datetime(2026, 11, 2, 9, 0, 0), 26.0)],
    "shed": [("IMG_0001.JPG", datetime(2026, 11, 2, 12, 0, 0), 29.0)],
}


@pytest.fixture(scope="module")
def station(birds25_dir: Path, aiy_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("clocks")
    number = 0
    cameras = ""
    for camera, shots in SHOTS.items():
        folder = root / camera
        folder.mkdir()
        for name, taken, hours in shots:
            number += 1
            path = folder / name
            path.write_bytes(jpeg_bytes(birds25_dir / "NORTHERN CARDINAL" / f"{1 + number % 5}.jpg", taken))
            moment = (REAL + timedelta(hours=hours)).timestamp()  # written when really taken: arrival order
            os.utime(path, (moment, moment))
        start = 'start = 2026-11-02T08:00:00\n' if camera == "gate" else ""
        cameras += (f'[[cameras]]\nname = "{camera}"\npath = "{folder}"\n[cameras.deployment]\n'
                    f'latitude = 52.5\nlongitude = 13.4\n{start}')
    db = root / "state" / "edge.db"
    config = root / "edge.toml"
    config.write_text(f"""
[station]
device_id = "garden"
timezone = "Europe/Berlin"
[model]
path = "{aiy_model_dir}"
[storage]
database = "{db}"
[events]
independence_s = 60
[project]
title = "Clocks"
sampling_design = "opportunistic"
license = "CC0-1.0"
[[project.contributors]]
title = "Ada Observer"
role = "contact"
{cameras}""")
    return config, db


@pytest.fixture(scope="module")
def ran(station: tuple[Path, Path], cli_env: dict[str, str]) -> tuple[Path, Path, str]:
    config, db = station
    run = edge(["run", "--once", "--config", str(config)], cli_env)
    assert run.returncode == 0, run.stderr
    return config, db, run.stderr


def _flags(db: Path) -> dict[tuple[str, str], str | None]:
    conn = sqlite3.connect(db)
    try:
        return {(camera, Path(path).name): flags for camera, path, flags in
                conn.execute("SELECT camera, path, time_flags FROM frames")}
    finally:
        conn.close()


def test_flagged_logged_once_and_still_counted(ran: tuple[Path, Path, str], cli_env: dict[str, str]) -> None:
    config, db, log = ran
    flags = _flags(db)
    assert flags == {
        ("feeder", "IMG_0001.JPG"): None, ("feeder", "IMG_0002.JPG"): None, ("feeder", "IMG_0003.JPG"): None,
        ("feeder", "IMG_0004.JPG"): "out-of-order", ("feeder", "IMG_0005.JPG"): "out-of-order",
        ("feeder", "IMG_0006.JPG"): "out-of-order", ("feeder", "IMG_0007.JPG"): "future",
        ("gate", "IMG_0001.JPG"): "before-deployment", ("gate", "IMG_0002.JPG"): None,
        ("shed", "IMG_0001.JPG"): None}
    # One WARNING per run of doubtful frames and camera (the reset's three frames: one), not per frame.
    warnings = [line for line in log.splitlines() if "WARNING" in line and "flagged" in line]
    assert len(warnings) == 3, warnings
    assert sum("camera feeder" in line and "out-of-order" in line for line in warnings) == 1
    assert sum("camera feeder" in line and "future" in line for line in warnings) == 1
    assert sum("camera gate" in line and "before-deployment" in line for line in warnings) == 1
    # A count is not lost: every visit is in `edge counts` (feeder 4 + 1 future, gate 2, shed 1).
    assert sum(edge_counts(db, cli_env, unit="").values()) == 8
    status = edge(["status", "--config", str(config), "--format", "json"], cli_env)
    facts = json.loads(status.stdout)
    assert facts["frames_time_flagged"] == {"before-deployment": 1, "future": 1, "out-of-order": 3}
    assert facts["frames_time_doubtful"] == 5
    table = edge(["status", "--config", str(config)], cli_env).stdout
    assert "5 doubtful (kept out of effort), by flag: before-deployment 1, future 1, out-of-order 3" in table


def test_a_visit_from_the_future_clock_closes(ran: tuple[Path, Path, str]) -> None:
    _config, db, log = ran
    assert "closed once no frame of it has been recorded for 60 s" in log
    conn = sqlite3.connect(db)
    try:
        (processed,) = conn.execute("SELECT processed_at FROM frames WHERE captured_at > '2030'").fetchone()
        assert conn.execute("SELECT state, time_flags FROM events WHERE started_at > '2030'").fetchall() == [
            ("open", "future")]
    finally:
        conn.close()
    # The next idle pass of a daemon 61 s of real time later (the store's clock) closes it.
    later = datetime.fromisoformat(processed.replace("Z", "+00:00")) + timedelta(seconds=61)
    store = Store(db, station_tz="Europe/Berlin", independence_s=60, clock=lambda: later)
    try:
        closed = store.close_stale_events()
    finally:
        store.close()
    assert [(c.event["camera"], c.event["started_at"]) for c in closed] == [("feeder", "2035-01-01T11:00:00.000Z")]


def test_effort_and_spans_leave_the_doubtful_frames_out(ran: tuple[Path, Path, str], tmp_path: Path,
                                                        cli_env: dict[str, str]) -> None:
    config, _db, _log = ran
    out = tmp_path / "report"
    result = edge(["report", "--config", str(config), "--out", str(out)], cli_env)
    assert result.returncode == 0, result.stderr
    effort = {row["deployment_id"]: row for row in rows(out / "effort.csv")}
    # The feeder's true span: its first to its last trusted frame (2 days and 1 hour), not 2000 to 2035.
    feeder = effort["garden-feeder"]
    assert (feeder["start"], feeder["start_source"]) == ("2026-11-01T08:00:00+01:00", "first frame")
    assert feeder["end"].startswith("2026-11-03T09:00:00") and feeder["end_source"] == "last frame"
    assert float(feeder["camera_days"]) == pytest.approx(2 + 1 / 24, abs=1e-4)
    assert float(feeder["gap_days"]) == 0
    gate = effort["garden-gate"]
    assert (gate["start"], gate["start_source"]) == ("2026-11-02T08:00:00+01:00", "config")
    assert float(gate["camera_days"]) == pytest.approx(1 / 24, abs=1e-4)
    # The report's events: the trusted visits only (feeder 2, gate 1, shed 1).
    assert "4 events" in result.stdout
    html = (out / "report.html").read_text()
    assert "Doubtful camera clocks: garden-feeder: 4 frame(s), 3 visit(s); garden-gate: 1 frame(s), 1 visit(s)" in html


def test_camtrap_dp_says_timestamp_issues_and_validates(ran: tuple[Path, Path, str], tmp_path: Path,
                                                        standards_dir: Path, cli_env: dict[str, str]) -> None:
    config, _db, _log = ran
    package = tmp_path / "package"
    result = edge(["export", "camtrap-dp", "--config", str(config), "--out", str(package), "--validate",
                   str(standards_dir)], cli_env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid Camtrap DP 1.0.2 package" in result.stdout
    assert "garden-feeder: 4 frame(s) and 3 visit(s) of camera feeder have a doubtful capture time" in result.stdout
    deployments = {row["deploymentID"]: row for row in rows(package / "deployments.csv")}
    assert {d: row["timestampIssues"] for d, row in deployments.items()} == {
        "garden-feeder": "true", "garden-gate": "true", "garden-shed": ""}
    assert deployments["garden-feeder"]["deploymentStart"] == "2026-11-01T08:00:00+01:00"
    assert deployments["garden-feeder"]["deploymentEnd"].startswith("2026-11-03T09:00:00")


def test_a_correction_after_the_fact_brings_the_reset_frames_back(ran: tuple[Path, Path, str], tmp_path: Path,
                                                                  cli_env: dict[str, str]) -> None:
    """The feeder's reset frames, corrected with the pair read at the site visit (the camera showed
    2000-01-01 00:00:10 when it was 2026-11-04 10:00 in Berlin): their flags go, their visits
    move to November and count in effort and the report; the 2035 frame stays flagged."""
    import shutil

    config, db, _log = ran
    copy = tmp_path / "state"
    shutil.copytree(db.parent, copy)
    result = edge(["clock", "correct", "--config", str(config), "--db", str(copy / "edge.db"), "--camera", "feeder",
                   "--since", "2000-01-01", "--until", "2000-01-02", "--camera-time", "2000-01-01T00:00:10",
                   "--true-time", "2026-11-04T10:00:00", "--reviewer", "ada", "--reason", "battery change"], cli_env)
    assert result.returncode == 0, result.stderr
    assert "moved 3 frame(s) and 2 visit(s)" in result.stdout
    flags = _flags(copy / "edge.db")
    assert [flags[("feeder", f"IMG_000{n}.JPG")] for n in (4, 5, 6)] == [None, None, None]
    assert flags[("feeder", "IMG_0007.JPG")] == "future"
    out = tmp_path / "report"
    report = edge(["report", "--config", str(config), "--db", str(copy / "edge.db"), "--out", str(out)], cli_env)
    assert report.returncode == 0, report.stderr
    feeder = {row["deployment_id"]: row for row in rows(out / "effort.csv")}["garden-feeder"]
    # From the first frame (2026-11-01 07:00Z) to the corrected IMG_0006 (2026-11-05 15:59:50Z).
    assert float(feeder["camera_days"]) == pytest.approx(4 + (8 * 3600 + 59 * 60 + 50) / 86400, abs=1e-4)
    assert "6 events" in report.stdout  # feeder 2 + the 2 corrected visits, gate 1, shed 1
    assert edge_counts(copy / "edge.db", cli_env, unit="") == edge_counts(db, cli_env, unit="")  # nothing lost


def test_camtrap_dp_media_say_where_a_corrected_time_came_from(ran: tuple[Path, Path, str], tmp_path: Path,
                                                              cli_env: dict[str, str]) -> None:
    """Flagged frames lie outside every deployment's span (they are not exported as media); once
    corrected they are, and media.csv's mediaComments says the clock was corrected."""
    import shutil

    config, db, _log = ran
    copy = tmp_path / "state"
    shutil.copytree(db.parent, copy)
    fixed = edge(["clock", "correct", "--config", str(config), "--db", str(copy / "edge.db"), "--camera", "feeder",
                  "--since", "2000-01-01", "--until", "2000-01-02", "--offset-s", str(27 * 365.25 * 86400),
                  "--reviewer", "ada"], cli_env)
    assert fixed.returncode == 0, fixed.stderr
    package = tmp_path / "package"
    result = edge(["export", "camtrap-dp", "--config", str(config), "--db", str(copy / "edge.db"), "--out",
                   str(package)], cli_env)
    assert result.returncode == 0, result.stdout + result.stderr
    comments = {row["fileName"]: row["mediaComments"] for row in rows(package / "media.csv")
                if row["deploymentID"] == "garden-feeder"}
    assert comments["IMG_0004.JPG"] == "timestamp: EXIF time read in the station's zone; camera clock corrected"
    assert comments["IMG_0001.JPG"] == ""  # a plain EXIF time says nothing
    assert "IMG_0007.JPG" not in comments  # still in 2035: outside the deployment's span
