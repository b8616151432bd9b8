"""`edge status` data from a real database and the daemon's snapshot; metrics scraped over HTTP."""

from __future__ import annotations

import json
import math
import urllib.request
from datetime import UTC, datetime

import pytest
from prometheus_client.parser import text_string_to_metric_families

from edge.cli.tables import status_table
from edge.daemon.preflight import StateDirError, make_state_dir
from edge.operate.health import HealthState, StatusWriter, read_snapshot, status_file_for, write_snapshot
from edge.operate.metrics import Metrics
from edge.operate.status_reader import collect_status
from tests.edge.operate.conftest import add_frame, add_outbox_message, set_outbox_stat
from tests.fixtures.disk import fill


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_status_combines_database_snapshot_and_disk(tmp_path, field_db):
    db_path = tmp_path / "state" / "edge.db"
    add_frame(field_db, "/cam/a.jpg", species="robin", processed_at=now_iso())
    add_frame(field_db, "/cam/b.jpg", status="error", error="truncated JPEG", processed_at=now_iso())
    add_outbox_message(field_db, "events", "{}", kind="event")
    set_outbox_stat(field_db, "dropped_events", 3)
    state = HealthState(model_id="convnet-int8-3f2a9c1d", backlog=4, mqtt_state="connected")
    state.frame_done("ok", 12.5, species="robin")
    assert write_snapshot(state, status_file_for(db_path))

    status = collect_status(db_path, disk_paths=[tmp_path])
    assert status["frames_total"] == 2 and status["frames_error"] == 1
    assert status["last_error"]["path"] == "/cam/b.jpg" and status["last_error"]["error"] == "truncated JPEG"
    assert status["outbox_depth"] == 1 and status["outbox_dropped_events"] == 3
    assert status["rate_frames_per_min"] > 0
    assert status["daemon"]["state"] == "running"  # our own pid, fresh snapshot
    assert status["daemon"]["backlog"] == 4 and status["daemon"]["mqtt_state"] == "connected"
    assert status["daemon"]["model_id"] == "convnet-int8-3f2a9c1d"
    assert all(d["free_bytes"] > 0 for d in status["disk"])
    json.dumps(status)  # --format json must serialise

    table = status_table(status)
    for needle in ("running", "backlog", "4", "truncated JPEG", "connected", "1 waiting, 3 events dropped", "free disk"):
        assert needle in table


def test_status_without_a_daemon_says_not_running(tmp_path, field_db):
    db_path = tmp_path / "state" / "edge.db"
    status_file_for(db_path).write_text(json.dumps({"pid": 2**22 + 12345, "updated_at": now_iso()}))
    status = collect_status(db_path)
    assert status["daemon"]["state"] == "not running"
    status_file_for(db_path).unlink()
    assert collect_status(db_path)["daemon"]["state"] == "not running"
    assert "does not exist" in collect_status(tmp_path / "missing.db")["database_error"]


def test_paused_state_and_status_line(tmp_path):
    state = HealthState()
    state.frame_done("error", None, error="cannot identify image file", path="/cam/x.jpg")
    state.set(paused=True, pause_reason="low disk space: 12 MB free on /var/lib/trailcam", backlog=7)
    line = state.status_line()
    assert line.startswith("PAUSED (low disk space") and "backlog 7" in line and "1 errors" in line
    sent = []
    publisher = StatusWriter(state, tmp_path / "status.json", interval_s=3600, notify=sent.append)
    assert publisher.tick() and not publisher.tick()  # throttled
    assert sent == [line] and read_snapshot(tmp_path / "status.json")["paused"] is True
    assert read_snapshot(tmp_path / "status.json")["last_error"] == "/cam/x.jpg: cannot identify image file"


def scrape(port: int) -> dict:
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    samples = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_metrics_endpoint_scraped_and_parsed(tmp_path):
    metrics = Metrics(disk_paths=[tmp_path], model_id="convnet-int8-3f2a9c1d")
    state = HealthState(metrics=metrics)
    port = metrics.serve(0)
    try:
        state.frame_done("ok", 40.0, species="robin")
        state.frame_done("ok", 400.0, species="wren")
        state.frame_done("error", None, error="zero bytes", path="/cam/z.jpg")
        state.time_flags(("out-of-order",))
        state.time_flags(("ambiguous", "out-of-order"))
        state.time_flags(())
        state.set(backlog=5, outbox_depth=2, model_id="convnet-int8-3f2a9c1d")
        s = scrape(port)
    finally:
        metrics.close()
    assert s[("trailcam_frames_processed_total", (("status", "ok"),))] == 2
    assert s[("trailcam_frames_processed_total", (("status", "error"),))] == 1
    assert s[("trailcam_inference_seconds_count", ())] == 2
    assert math.isclose(s[("trailcam_inference_seconds_sum", ())], 0.44)
    assert s[("trailcam_inference_seconds_bucket", (("le", "0.05"),))] == 1
    assert s[("trailcam_backlog_frames", ())] == 5
    assert s[("trailcam_outbox_messages", ())] == 2
    assert s[("trailcam_paused", ())] == 0
    assert s[("trailcam_model_info", (("model_id", "convnet-int8-3f2a9c1d"),))] == 1
    assert s[("trailcam_disk_free_bytes", (("path", str(tmp_path)),))] > 0
    assert s[("trailcam_last_frame_timestamp_seconds", ())] > 1.7e9
    # Doubtful capture times (edge/store/clock_checks.py), by flag; the doubtful ones exist from the start.
    assert s[("trailcam_frames_time_flagged_total", (("flag", "out-of-order"),))] == 2
    assert s[("trailcam_frames_time_flagged_total", (("flag", "ambiguous"),))] == 1
    assert s[("trailcam_frames_time_flagged_total", (("flag", "future"),))] == 0
    assert state.snapshot()["time_flagged"] == {"out-of-order": 2, "ambiguous": 1}


def test_state_dir_check_names_the_directory_and_the_reason(tmp_path):
    make_state_dir(tmp_path / "new" / "state")  # created on demand
    assert (tmp_path / "new" / "state").is_dir() and not list((tmp_path / "new" / "state").iterdir())
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("x")
    with pytest.raises(StateDirError, match=r"state directory .*file-not-dir/db is not writable"):
        make_state_dir(blocked / "db")


def test_snapshot_is_rewritten_in_place_when_the_disk_is_full(tmp_path, tmpfs):
    mount = tmpfs(tmp_path / "tiny", "64k")
    state = HealthState(backlog=1)
    assert write_snapshot(state, mount / "status.json")
    assert (mount / "status.json").stat().st_size % 4096 == 0
    fill(mount / "ballast")
    state.set(paused=True, pause_reason="low disk space")
    assert write_snapshot(state, mount / "status.json")
    assert read_snapshot(mount / "status.json")["paused"] is True


def test_rate_per_minute_uses_the_configured_window() -> None:
    from edge.operate.health import HealthState

    short, default = HealthState(rate_window_s=60.0), HealthState()
    for state in (short, default):
        for _ in range(3):
            state.frame_done("ok", species="Pica pica")
    # The same three frames, just done: 3 per minute over one minute, 0.6 over five.
    assert short.snapshot()["rate_per_minute"] == 3.0
    assert default.snapshot()["rate_per_minute"] == 0.6
