"""The daemon as a process: SIGKILL mid-burst loses nothing and counts nothing twice; SIGTERM
finishes the frame and exits 0; SIGHUP swaps the model without losing a frame."""

from __future__ import annotations

import signal
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

from tests.edge.conftest import DaemonProcess, count_rows, jpeg_bytes, wait_for, write_aiy_bundle, write_toml

OK = "SELECT count(*) FROM frames WHERE status = 'ok'"


def _burst(bird_photo, visits: int, per_visit: int) -> list[tuple[str, bytes]]:
    """`visits` visits 10 minutes apart, each `per_visit` frames 3 s apart, EXIF-timed."""
    start = datetime(2026, 5, 14, 7, 0, 0)
    frames = []
    for visit in range(visits):
        species = "NORTHERN CARDINAL" if visit % 2 == 0 else "BLACK-CAPPED CHICKADEE"
        for shot in range(per_visit):
            taken = start + timedelta(minutes=10 * visit, seconds=3 * shot)
            frames.append((f"V{visit}_{shot:02d}.JPG", jpeg_bytes(bird_photo(species, 1 + shot % 5), taken, "+02:00")))
    return frames


def test_sigkill_mid_burst_then_restart_counts_exactly_once(tmp_path: Path, aiy_model, bird_photo, cli_env) -> None:
    camera, db = tmp_path / "cam", tmp_path / "t.db"
    camera.mkdir()
    config = write_toml(tmp_path / "edge.toml", camera, aiy_model, db)
    burst = _burst(bird_photo, visits=5, per_visit=8)

    daemon = DaemonProcess(["--config", str(config)], cli_env, tmp_path / "run1.log")
    try:
        wait_for(lambda: db.exists() and count_rows(db, "SELECT count(*) FROM meta") > 0, 60, what="daemon up")
        for name, blob in burst:
            (camera / name).write_bytes(blob)
        wait_for(lambda: count_rows(db, OK) >= 3, 60, interval=0.01, what="part of the burst recorded")
    finally:
        daemon.kill()
    recorded_before_restart = count_rows(db, OK)
    assert recorded_before_restart < len(burst), "the kill came too late to test anything"

    again = DaemonProcess(["--config", str(config), "--once"], cli_env, tmp_path / "run2.log")
    assert again.wait(120) == 0, again.output()

    assert count_rows(db, OK) == 40
    # A file the daemon caught while still empty (created, not yet written) is an error row that
    # its whole frame supersedes: only the rows that stand must be the 40 frames, once each.
    assert count_rows(db, "SELECT count(DISTINCT sha256) FROM frames WHERE superseded_by IS NULL") == 40
    assert count_rows(db, "SELECT count(*) FROM frames WHERE status != 'ok' AND superseded_by IS NULL") == 0
    assert count_rows(db, "SELECT count(*) FROM frames e JOIN frames f ON f.id = e.superseded_by "
                          "WHERE f.path != e.path OR f.status != 'ok'") == 0
    counted = count_rows(db, "SELECT count(*) FROM frames WHERE species IS NOT NULL")
    assert counted == 40
    assert count_rows(db, "SELECT SUM(frames) FROM daily_tallies") == counted
    assert count_rows(db, "SELECT count(*) FROM events") == 5
    assert count_rows(db, "SELECT SUM(events) FROM daily_tallies") == 5
    assert count_rows(db, "SELECT SUM(frame_count) FROM events") == counted
    assert count_rows(db, "SELECT count(*) FROM frames WHERE species IS NOT NULL AND event_id IS NULL") == 0
    # Every committed frame has its predictions: nothing half-written.
    assert count_rows(db, "SELECT count(*) FROM frames f WHERE f.status = 'ok' AND NOT EXISTS "
                          "(SELECT 1 FROM predictions p WHERE p.frame_id = f.id)") == 0


def test_sigterm_exits_zero_and_sighup_reloads_without_losing_a_frame(tmp_path: Path, aiy_model, bird_photo, cli_env) -> None:
    camera, db = tmp_path / "cam", tmp_path / "t.db"
    camera.mkdir()
    bundle = write_aiy_bundle(tmp_path / "bundle", aiy_model, "aiy-first")
    config = write_toml(tmp_path / "edge.toml", camera, bundle, db)
    frames = _burst(bird_photo, visits=2, per_visit=6)

    daemon = DaemonProcess(["--config", str(config)], cli_env, tmp_path / "run.log")
    try:
        wait_for(lambda: "backlog of" in daemon.output(), 60, what="daemon started")
        for name, blob in frames[:6]:
            (camera / name).write_bytes(blob)
        wait_for(lambda: count_rows(db, OK) >= 6, 60, what="first frames")

        write_aiy_bundle(bundle, aiy_model, "aiy-second")
        daemon.signal(signal.SIGHUP)
        for name, blob in frames[6:]:  # arrive while the model is being swapped
            (camera / name).write_bytes(blob)
        wait_for(lambda: "model reloaded: aiy-second" in daemon.output(), 60, what="reload logged")
        wait_for(lambda: count_rows(db, OK) >= 12, 60, what="all frames")
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(60) == 0, daemon.output()
    finally:
        daemon.kill()

    conn = sqlite3.connect(db)
    models = dict(conn.execute("SELECT model_id, count(*) FROM frames GROUP BY model_id").fetchall())
    conn.close()
    assert sum(models.values()) == 12
    assert models.get("aiy-first", 0) >= 6 and models.get("aiy-second", 0) >= 1
    assert "SIGTERM: finishing the current frame" in daemon.output()
