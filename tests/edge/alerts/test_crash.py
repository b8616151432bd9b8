"""`edge run` SIGKILLed with notifications queued for a target that is down: after a restart
with the target up, each is delivered, none lost, none twice."""

from __future__ import annotations

import signal
from pathlib import Path

from tests.edge.alerts.conftest import two_visits
from tests.edge.conftest import DaemonProcess, count_rows, query_rows, wait_for, write_toml

QUEUED_AND_TRIED = "SELECT count(*) FROM notifications WHERE state = 'queued' AND attempts >= 1"
SENT = "SELECT count(*) FROM notifications WHERE state = 'sent'"


def test_sigkill_with_queued_notifications_then_restart(tmp_path: Path, aiy_model, bird_photo, cli_env,
                                                        receiver) -> None:
    camera, db = tmp_path / "cam", tmp_path / "t.db"
    two_visits(camera, bird_photo)
    config = write_toml(tmp_path / "edge.toml", camera, aiy_model, db, extra=f"""
[notify]
enabled = true
urls = ["{receiver.url}"]
triggers = ["every_visit"]
cooldown_s = 0.0
max_age_s = 259200.0
retry_backoff_s = 0.2
retry_max_backoff_s = 0.5
""")
    first = DaemonProcess(["--config", str(config)], cli_env, tmp_path / "run1.log")
    try:
        wait_for(lambda: count_rows(db, QUEUED_AND_TRIED) >= 2, 120, what="two notifications tried against a closed port")
    finally:
        first.kill()
    assert count_rows(db, SENT) == 0 and receiver.messages() == []

    receiver.start()
    second = DaemonProcess(["--config", str(config)], cli_env, tmp_path / "run2.log")
    try:
        wait_for(lambda: count_rows(db, SENT) >= 2, 120, what="both delivered after the restart")
        second.signal(signal.SIGTERM)
        assert second.wait(60) == 0, second.output()
    finally:
        second.kill()
    messages = receiver.messages()
    assert len(messages) == 2, messages
    events = [row[0] for row in query_rows(db, "SELECT id FROM events ORDER BY id")]
    assert len(events) == 2
    assert len({m["message"] for m in messages}) == 2  # one for each visit, neither twice
    assert query_rows(db, "SELECT event_id, state FROM notifications ORDER BY event_id") == [(e, "sent") for e in events]
    # Nothing recounted at the restart: still two visits, four frames.
    assert count_rows(db, "SELECT count(*) FROM frames WHERE status = 'ok'") == 4
