"""Frames that fail for a reason that may pass are tried again, a bounded number of times; when
the file later turns out valid, its ok row supersedes the error rows and the error counts say so.

Unreadable files are real: the tests run as root, for whom chmod 000 denies nothing, so the
daemon runs as its own process without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (setpriv), as
an unprivileged service user would: the kernel then refuses the read with EACCES.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge.daemon.pipeline import is_transient
from edge.operate.status_reader import collect_status
from edge.store import queries
from edge.store.db import open_readonly
from edge.store.times import parse_utc
from edge.store.writer import FrameRecord, Store
from tests.edge.conftest import count_rows, jpeg_bytes, query_rows, wait_for, write_toml
from tests.fixtures.require import missing

DROP_CAPS = ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search", "--"]


@pytest.fixture(scope="module")
def unprivileged(tmp_path_factory) -> list[str]:
    """The command prefix that makes file permissions apply to the daemon, or a skip saying why not."""
    if os.geteuid() != 0:
        return []  # permissions apply already
    if shutil.which("setpriv") is None:
        missing("SETPRIV", "running as root and setpriv (util-linux) is not installed: cannot make a file unreadable")
    probe = tmp_path_factory.mktemp("caps") / "locked"
    probe.write_text("x")
    probe.chmod(0)
    denied = subprocess.run([*DROP_CAPS, "cat", str(probe)], capture_output=True, text=True)
    if denied.returncode == 0 or "Permission denied" not in denied.stderr:
        missing("SETPRIV", f"dropping CAP_DAC_OVERRIDE with setpriv does not deny a read here: {denied.stderr.strip()!r}")
    return DROP_CAPS


class Unprivileged:
    """`python -m edge run` without the capabilities that let root read any file."""

    def __init__(self, prefix: list[str], config: Path, env: dict[str, str], log: Path, once: bool = False):
        self.log_path = log
        self.log = open(log, "ab")
        self.proc = subprocess.Popen([*prefix, sys.executable, "-m", "edge", "run", "--config", str(config),
                                      *(["--once"] if once else [])], env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait()

    def wait(self) -> int:
        try:
            return self.proc.wait(timeout=90)
        finally:
            self.log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


def frame_rows(db: Path, name: str) -> list[tuple]:
    return query_rows(db, "SELECT id, status, error, attempts, retry_at, superseded_by FROM frames "
                          "WHERE path LIKE ? ORDER BY id", (f"%/{name}",))


def standing_errors(db: Path) -> tuple[int, int, list[dict]]:
    """(errors `edge status` counts, those to be retried, `edge frames --errors`)."""
    status = collect_status(db)
    reader = open_readonly(db)
    try:
        listed = queries.frames(reader, errors=True)
    finally:
        reader.close()
    return status["frames_error"], status["frames_retrying"], listed


def setup(tmp_path: Path, aiy_model: Path, extra: str) -> tuple[Path, Path, Path]:
    camera = tmp_path / "cam"
    camera.mkdir()
    db = tmp_path / "state" / "trailcam.db"
    config = write_toml(tmp_path / "edge.toml", camera, aiy_model, db, extra)
    return camera, db, config


def test_an_unreadable_frame_is_retried_live_and_counted_once_readable(
        tmp_path, aiy_model, bird_photo, cli_env, unprivileged) -> None:
    camera, db, config = setup(tmp_path, aiy_model, "retry_max_attempts = 5\nretry_backoff_s = 0.5\n")
    locked = camera / "locked.jpg"
    locked.write_bytes(jpeg_bytes(bird_photo("NORTHERN CARDINAL", 1)))
    locked.chmod(0)
    daemon = Unprivileged(unprivileged, config, cli_env, tmp_path / "daemon.log")
    try:
        wait_for(lambda: frame_rows(db, "locked.jpg"), 90, what="the unreadable frame's error row")
        [(error_id, status, error, attempts, retry_at, superseded)] = frame_rows(db, "locked.jpg")
        assert (status, error, superseded) == ("error", "unreadable: Permission denied", None)
        assert attempts >= 1 and retry_at is not None
        assert standing_errors(db)[:2] == (1, 1)
        locked.chmod(0o644)  # the uploader fixes the permissions; size and mtime stay the same
        wait_for(lambda: any(r[1] == "ok" for r in frame_rows(db, "locked.jpg")), 60,
                 what="the retry scheduler's next try reading the frame")
    finally:
        assert daemon.stop() == 0, daemon.output()
    rows = frame_rows(db, "locked.jpg")
    assert len(rows) == 2, rows
    ok_id = rows[1][0]
    assert rows[0][0] == error_id and rows[0][5] == ok_id and rows[0][4] is None  # superseded, nothing due
    assert standing_errors(db) == (0, 0, [])
    assert count_rows(db, "SELECT SUM(frames) FROM daily_tallies") == 1
    assert "trying again" in daemon.output()


def test_an_unreadable_frame_is_retried_at_restart(tmp_path, aiy_model, bird_photo, cli_env, unprivileged) -> None:
    """No live retry (the backoff is an hour): the next start's backlog scan offers the file again,
    because its error row still has attempts left."""
    camera, db, config = setup(tmp_path, aiy_model, "retry_backoff_s = 3600\n")
    locked = camera / "locked.jpg"
    locked.write_bytes(jpeg_bytes(bird_photo("AMERICAN ROBIN", 1)))
    locked.chmod(0)
    first = Unprivileged(unprivileged, config, cli_env, tmp_path / "first.log", once=True)
    assert first.wait() == 0, first.output()
    [(error_id, status, _error, attempts, retry_at, _s)] = frame_rows(db, "locked.jpg")
    assert (status, attempts) == ("error", 1)
    assert parse_utc(retry_at) - datetime.now(UTC) > timedelta(minutes=50)
    locked.chmod(0o644)
    second = Unprivileged(unprivileged, config, cli_env, tmp_path / "second.log", once=True)
    assert second.wait() == 0, second.output()
    rows = frame_rows(db, "locked.jpg")
    assert [r[1] for r in rows] == ["error", "ok"] and rows[0][5] == rows[1][0]
    assert standing_errors(db) == (0, 0, [])


def test_retries_stop_after_max_attempts(tmp_path, aiy_model, bird_photo, cli_env, unprivileged) -> None:
    camera, db, config = setup(tmp_path, aiy_model, "retry_max_attempts = 3\nretry_backoff_s = 0.05\n"
                                                    "[health]\nstatus_interval_s = 0.5\n")
    locked = camera / "locked.jpg"
    locked.write_bytes(jpeg_bytes(bird_photo("AMERICAN ROBIN", 2)))
    locked.chmod(0)
    daemon = Unprivileged(unprivileged, config, cli_env, tmp_path / "daemon.log")
    status_json = db.parent / "status.json"
    try:
        wait_for(lambda: [(r[3], r[4]) for r in frame_rows(db, "locked.jpg")] == [(3, None)], 90,
                 what="three failed attempts, none due")
        given_up = parse_utc(query_rows(db, "SELECT processed_at FROM frames WHERE path LIKE '%/locked.jpg'")[0][0])

        def daemon_clock() -> datetime | None:
            try:
                return parse_utc(json.loads(status_json.read_text())["updated_at"])
            except (OSError, ValueError, KeyError):
                return None

        # The daemon's own clock (its status snapshot) 3 s past the last attempt: a fourth try,
        # were one scheduled, would have been due 0.2 s after the third.
        wait_for(lambda: (daemon_clock() or given_up) > given_up + timedelta(seconds=3), 30,
                 what="the daemon running on after the last attempt")
    finally:
        assert daemon.stop() == 0, daemon.output()
    assert [(r[1], r[3], r[4]) for r in frame_rows(db, "locked.jpg")] == [("error", 3, None)]
    log = daemon.output()
    assert log.count("frame " + str(locked) + ": trying again") == 2, log
    assert "attempt 3 of 3; giving up" in log
    assert standing_errors(db)[:2] == (1, 0)
    # Spent attempts also hold across a restart: the file is unchanged, so it is not read again.
    again = Unprivileged(unprivileged, config, cli_env, tmp_path / "again.log", once=True)
    assert again.wait() == 0
    assert [(r[3], r[4]) for r in frame_rows(db, "locked.jpg")] == [(3, None)]
    assert "unchanged 1" in again.output()


def test_a_corrupt_frame_is_not_retried_until_valid_content_replaces_it(tmp_path, make_config, bird_photo) -> None:
    """Permanent errors are final: no retry is scheduled and a restart does not decode the file
    again. Valid content written at the same path later (new size and mtime) gets its ok row,
    and the error row is superseded."""
    from edge.daemon.wiring import build

    config = make_config(storage={"retry_backoff_s": 0.01})
    camera = Path(config.cameras[0].path)
    good = jpeg_bytes(bird_photo("NORTHERN CARDINAL", 3))
    corrupt = camera / "frame.jpg"
    corrupt.write_bytes(good[: len(good) // 2])
    daemon = build(config, once=True, field=False)
    daemon.run()
    assert daemon.health.processed["error"] == 1 and daemon.retries_pending == 0
    [(_id, status, error, attempts, retry_at, superseded)] = frame_rows(config.storage.database, "frame.jpg")
    assert (status, attempts, retry_at, superseded) == ("error", None, None, None) and "truncated" in error

    restarted = build(config, once=True, field=False)
    restarted.run()
    assert restarted.health.processed["unchanged"] == 1 and restarted.health.processed["error"] == 0
    assert len(frame_rows(config.storage.database, "frame.jpg")) == 1

    corrupt.write_bytes(good)
    os.utime(corrupt, (corrupt.stat().st_atime, corrupt.stat().st_mtime + 10))
    fixed = build(config, once=True, field=False)
    fixed.run()
    assert fixed.health.processed["ok"] == 1
    rows = frame_rows(config.storage.database, "frame.jpg")
    assert [r[1] for r in rows] == ["error", "ok"] and rows[0][5] == rows[1][0]
    db = config.storage.database
    assert standing_errors(db) == (0, 0, [])
    reader = open_readonly(db)
    try:
        assert [r["status"] for r in queries.frames(reader)] == ["ok", "superseded"]
    finally:
        reader.close()


def test_transient_error_bookkeeping(tmp_path: Path) -> None:
    """One row per failing file: each failed try counts an attempt, the backoff doubles, the
    last attempt leaves nothing due; a file that changed meanwhile starts counting anew."""
    now = [datetime(2026, 3, 1, 12, 0, tzinfo=UTC)]
    store = Store(tmp_path / "t.db", retry_max_attempts=4, retry_backoff_s=30, clock=lambda: now[0])
    unreadable = FrameRecord(path="/cam/a.jpg", sha256="unreadable:a", camera="cam", size=10, mtime=1.0,
                             status="error", error="unreadable: Permission denied", transient=True)
    try:
        delays = []
        for _ in range(4):
            result = store.record(unreadable)
            delays.append(None if result.retry_at is None else (result.retry_at - now[0]).total_seconds())
            now[0] += timedelta(minutes=10)
        assert delays == [30, 60, 120, None]
        assert store.db.execute("SELECT COUNT(*), MAX(attempts) FROM frames").fetchone() == (1, 4)
        assert store.ledger.recorded_error("unreadable:a", "/cam/a.jpg", 10, 1.0)  # settled for this file
        assert store.ledger.unchanged_known("/cam/a.jpg", 10, 1.0)
        assert not store.ledger.recorded_error("unreadable:a", "/cam/a.jpg", 11, 2.0)  # but not for a changed one
        changed = store.record(FrameRecord(**{**unreadable.__dict__, "size": 11, "mtime": 2.0}))
        assert (changed.attempts, changed.retry_at is not None) == (1, True)
        assert not store.ledger.unchanged_known("/cam/a.jpg", 11, 2.0)
    finally:
        store.close()
    assert is_transient(PermissionError(13, "Permission denied"))
    assert is_transient(OSError(5, "Input/output error"))
    assert not is_transient(IsADirectoryError(21, "Is a directory"))
    assert not is_transient(OSError(36, "File name too long"))


def test_superseded_errors_leave_the_daemons_error_count_and_metrics() -> None:
    """The running daemon's own count (status.json, STATUS=, MQTT health) and the Prometheus
    counters: an error this run counted and a later valid file replaced no longer stands."""
    from edge.operate.health import HealthState
    from edge.operate.metrics import Metrics

    metrics = Metrics()
    state = HealthState(metrics=metrics)
    state.frame_done("error", None, error="truncated", path="/cam/x.jpg")
    state.frame_done("ok", 5.0, species="robin")
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert state.errors_superseded(["2020-01-01T00:00:00.000Z"]) == 0  # counted by an earlier run, not this one
    assert state.snapshot()["frames_error"] == 1
    assert state.errors_superseded([now]) == 1
    assert state.snapshot()["frames_error"] == 0 and "(0 errors)" in state.status_line()
    assert metrics.registry.get_sample_value("trailcam_frames_superseded_total") == 1
    assert metrics.registry.get_sample_value("trailcam_frames_processed_total", {"status": "error"}) == 1
