"""The publisher in its own process: LWT on SIGKILL, `stopped` on SIGTERM, nothing lost on kill."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from edge.store import outbox
from tests.edge.publish.helpers import enqueue_frame, event_ids, make_db
from tests.fixtures.broker import Broker, Subscriber, wait_until

pytestmark = pytest.mark.broker
BASE = "tc/dev1"


def spawn(broker: Broker, db_path: Path, cli_env: dict[str, str], **overrides: object) -> subprocess.Popen:
    settings = broker.mqtt_config(prefix="tc", discovery=False, **overrides)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.edge.publish.publisher_proc", json.dumps(settings), str(db_path), "dev1"],
        env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "READY"
    return proc


def statuses(sub: Subscriber) -> list[str]:
    return [m.payload for m in sub.on(f"{BASE}/status")]


def test_lwt_offline_on_sigkill_and_stopped_on_sigterm(broker: Broker, tmp_path: Path, cli_env: dict[str, str]) -> None:
    make_db(tmp_path / "edge.db")
    sub = Subscriber(broker, [f"{BASE}/status"])
    try:
        proc = spawn(broker, tmp_path / "edge.db", cli_env)
        sub.wait_for(lambda ms: statuses(sub)[-1:] == ["online"], what="online")
        proc.kill()
        proc.wait(10)
        sub.wait_for(lambda ms: statuses(sub)[-1:] == ["offline"], what="LWT offline after SIGKILL")
        proc = spawn(broker, tmp_path / "edge.db", cli_env)
        sub.wait_for(lambda ms: statuses(sub)[-1:] == ["online"], what="online again")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        sub.wait_for(lambda ms: statuses(sub)[-1:] == ["stopped"], what="stopped after SIGTERM")
        assert statuses(sub) == ["online", "offline", "online", "stopped"]
    finally:
        sub.close()
    late = Subscriber(broker, [f"{BASE}/status"], persistent=False)
    late.wait_for(lambda ms: [(m.payload, m.retain) for m in ms] == [("stopped", True)], what="retained stopped")
    late.close()


def test_sigkill_with_full_outbox_then_restart_delivers_everything(
    broker: Broker, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    db = make_db(tmp_path / "edge.db")
    for n in range(2000):
        enqueue_frame(db, n)
    sub = Subscriber(broker, [f"{BASE}/events"], client_id="kill-sub")
    try:
        proc = spawn(broker, tmp_path / "edge.db", cli_env)
        sub.wait_for(lambda ms: len(ms) >= 10, what="first events")
        proc.kill()  # mid-drain: some rows published, some acknowledged, some not yet sent
        proc.wait(10)
        assert outbox.depth(db) > 0, "the kill came too late to test anything"
        proc = spawn(broker, tmp_path / "edge.db", cli_env)
        expected = [f"ev-{n:05d}" for n in range(2000)]
        sub.wait_for(lambda ms: set(event_ids(ms)) >= set(expected), timeout=30, what="all 2000 events")
        wait_until(lambda: outbox.depth(db) == 0, 10, "outbox drained")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        sub.close()
    assert list(dict.fromkeys(event_ids(sub.messages))) == expected
