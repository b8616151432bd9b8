"""Pictures that stay findable: `edge web --db edge.db` alone (no configuration) serves the
frames from the camera folders the daemon recorded in the database, says at start where from and
which cameras it cannot serve; and [retention] snapshot_days counts from when a visit's picture
was made, so the next run of the daemon keeps the pictures of a backlog imported today.

All on the database the real daemon made (tests/edge/web/conftest.py `days_station`), with the real
`edge web` and `edge run --once` in subprocesses."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlite_utils

from edge.config.retention import RetentionConfig
from edge.operate.retention import Retention
from edge.operate.snapshots import snapshot_folder
from tests.edge.web.conftest import Client, Station
from tests.fixtures.broker import free_port


def _query(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def _env(cli_env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in cli_env.items() if not k.startswith("TRAILCAM__")}  # nothing configured but --db


def _serve_db_alone(db: Path, cli_env: dict[str, str], cwd: Path, check) -> list[str]:  # noqa: ANN001
    """`edge web --db DB` in an empty folder, no --config; `check(port)` runs while it serves.
    Returns everything it logged."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "edge", "web", "--db", str(db), "--port", str(port)],
                            env=_env(cli_env), cwd=cwd, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    try:
        for line in proc.stderr:
            lines.append(line)
            if "Uvicorn running" in line or "Application startup complete" in line:
                break
        check(port)
    finally:
        proc.terminate()
        lines += proc.communicate(timeout=30)[1].splitlines()
    assert proc.returncode in (0, -signal.SIGTERM), lines
    return lines


def test_edge_web_with_db_alone_serves_the_pictures(days: Station, cli_env, tmp_path: Path) -> None:
    frame_id, detection_id = _query(days.database, "SELECT frame_id, id FROM detections ORDER BY id LIMIT 1")[0]
    assert _query(days.database, "SELECT kind, name, path FROM picture_folders") == [
        ("camera", "feeder", str(days.camera))]

    def served(port: int) -> None:
        for path in (f"/img/frame/{frame_id}", f"/img/frame/{frame_id}?boxes=1", f"/img/crop/{detection_id}"):
            reply = Client(port).get(path)
            assert reply.status == 200 and reply.headers["content-type"] == "image/jpeg", path
            assert reply.body[:2] == b"\xff\xd8", path

    lines = _serve_db_alone(days.database, cli_env, tmp_path, served)
    assert any(f"pictures are served from: feeder {days.camera}" in line for line in lines), lines
    assert not any("cannot be served" in line for line in lines), lines


def test_without_a_known_folder_it_says_which_pictures_it_cannot_serve(days: Station, cli_env, tmp_path: Path) -> None:
    """A database from before the folders were recorded: the start says which camera's pictures
    cannot be served (and how to fix it); a request for one answers 404 and is logged, naming
    the frame's file, instead of a silent 404."""
    conn = sqlite3.connect(days.database)
    with conn:
        conn.execute("DELETE FROM picture_folders")
    conn.close()
    frame_id, path = _query(days.database, "SELECT id, path FROM frames ORDER BY id LIMIT 1")[0]

    def refused(port: int) -> None:
        assert Client(port).get(f"/img/frame/{frame_id}").status == 404

    lines = _serve_db_alone(days.database, cli_env, tmp_path, refused)
    text = "".join(lines)
    assert "pictures of camera feeder cannot be served: its folder is not in the database or the configuration" in text
    assert f"frame {frame_id}'s file {path} is gone or outside the known picture folders" in text, text


def test_the_next_run_keeps_the_snapshot_of_a_backlog_visit_made_today(days: Station, cli_env) -> None:
    """The May visit (a backlog imported today) ended months ago, but its picture was made today:
    the daemon's next run (its housekeeping prunes snapshots older than snapshot_days = 30)
    keeps it. Retention still removes every snapshot 30 days after it was made."""
    may_event, snapshot, made = _query(
        days.database, "SELECT id, snapshot, snapshot_at FROM events ORDER BY started_at LIMIT 1")[0]
    assert _query(days.database, "SELECT ended_at < ? FROM events WHERE id = ?",
                  ((datetime.now(UTC) - timedelta(days=30)).strftime("%Y-%m-%d"), may_event)) == [(1,)]
    assert made[:10] == datetime.now(UTC).date().isoformat()
    pictures = snapshot_folder(days.database)
    assert (pictures / snapshot).is_file()
    config = days.root / "edge.toml"
    config.write_text(days.config_text)
    run = subprocess.run([sys.executable, "-m", "edge", "run", "--once", "--config", str(config)],
                         env=cli_env, check=False, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert _query(days.database, "SELECT snapshot FROM events WHERE id = ?", (may_event,)) == [(snapshot,)]
    assert (pictures / snapshot).is_file()
    assert "event snapshots" not in run.stderr  # nothing pruned

    files = sorted(p.name for p in pictures.glob("*.jpg"))
    assert len(files) == 3
    conn = sqlite3.connect(days.database)
    try:
        later = Retention(RetentionConfig(snapshot_days=30), sqlite_utils.Database(conn),
                          clock=lambda: (datetime.now(UTC) + timedelta(days=31)).timestamp(), snapshot_dir=pictures)
        assert later.prune_snapshots() == 3
    finally:
        conn.close()
    assert list(pictures.glob("*.jpg")) == []
    assert _query(days.database, "SELECT COUNT(*) FROM events WHERE snapshot IS NULL") == [(3,)]
