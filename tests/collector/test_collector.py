"""The collector as a real process between a real mosquitto and a real database (both engines):
killed mid-stream, the database restarted mid-stream, a poison message, device state and will."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from tests.collector.helpers import (
    CollectorProcess,
    Device,
    assert_row_matches,
    count,
    event_history,
    events_by_uid,
    final_event,
    info_payload,
    query,
)
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.broker


def _stream(device: str, events: int) -> list[tuple[str, str]]:
    """Events interleaved (a second event starts before the first ends), as a busy feeder does."""
    histories = [event_history(device, n, frames=2 + n % 3) for n in range(events)]
    out: list[tuple[str, str]] = []
    for pair in zip(histories[::2], histories[1::2] + [[]]):
        a, b = pair
        for i in range(max(len(a), len(b))):
            out += a[i:i + 1] + b[i:i + 1]
    return out


def _assert_exactly_the_published(db: str, device: str, events: int) -> None:
    rows = events_by_uid(db)
    assert count(db, "events") == events == len(rows)
    for n in range(events):
        payload = final_event(device, n, frames=2 + n % 3)
        assert_row_matches(rows[payload["event_id"]], payload)


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_sigkill_mid_stream_then_restart_loses_nothing(broker_factory, central_db: str, tmp_path: Path,
                                                       protocol: str) -> None:
    broker = broker_factory()
    extra = ("--protocol", protocol)
    collector = CollectorProcess(broker, central_db, tmp_path, extra=extra).start()
    device = Device(broker, "cam-k")
    stream = _stream("cam-k", 300)
    device.publish_many(stream[:400])
    wait_for(lambda: count(central_db, "events") > 20, 30, what="some events committed")
    collector.kill()
    device.publish_many(stream[400:])  # queued by the broker for the collector's session
    collector = CollectorProcess(broker, central_db, tmp_path, extra=extra).start()
    wait_for(lambda: count(central_db, "events", "change = 'end'") == 300, 60, what="all 300 events ended")
    assert collector.stop() == 0
    _assert_exactly_the_published(central_db, "cam-k", 300)
    device.close()


def test_postgres_restart_mid_stream_loses_nothing(broker_factory, postgres_server, postgres_db: str,
                                                   tmp_path: Path) -> None:
    broker = broker_factory()
    collector = CollectorProcess(broker, postgres_db, tmp_path).start()
    device = Device(broker, "cam-pg")
    stream = _stream("cam-pg", 200)
    device.publish_many(stream[:200])
    wait_for(lambda: count(postgres_db, "events") > 10, 30, what="some events committed")
    postgres_server.stop()
    publisher = threading.Thread(target=device.publish_many, args=(stream[200:],))
    publisher.start()
    wait_for(lambda: "database unavailable" in collector.log_text(), 30, what="the collector noticed")
    postgres_server.start()
    publisher.join(60)
    wait_for(lambda: count(postgres_db, "events", "change = 'end'") == 200, 60, what="all 200 events ended")
    assert collector.stop() == 0
    _assert_exactly_the_published(postgres_db, "cam-pg", 200)
    device.close()


def test_poison_message_is_acknowledged_and_kept(broker_factory, central_db: str, tmp_path: Path) -> None:
    broker = broker_factory()
    collector = CollectorProcess(broker, central_db, tmp_path).start()
    device = Device(broker, "cam-x")
    device.publish("events", b"\xff\xfe not json")
    device.publish_many(event_history("cam-x", 1))
    wait_for(lambda: count(central_db, "events", "change = 'end'") == 1, 30, what="the good event after the poison")
    assert collector.stop() == 0
    # Restarted: the poison was acknowledged, so it is not delivered again.
    collector = CollectorProcess(broker, central_db, tmp_path).start()
    device.publish_many(event_history("cam-x", 2))
    wait_for(lambda: count(central_db, "events", "change = 'end'") == 2, 30, what="the next event")
    assert collector.stop() == 0
    rejected = query(central_db, "SELECT topic, reason FROM rejected_messages")
    assert len(rejected) == 1 and rejected[0][0] == "trailcam/cam-x/events"
    assert rejected[0][1].startswith("payload is not JSON")
    device.close()


def test_device_state_online_info_and_will(broker_factory, central_db: str, tmp_path: Path) -> None:
    broker = broker_factory()
    collector = CollectorProcess(broker, central_db, tmp_path).start()
    device = Device(broker, "cam-w")
    device.publish("status", "online", retain=True)
    device.publish("info", info_payload("cam-w"), retain=True)

    def state() -> str | None:
        rows = query(central_db, "SELECT state FROM devices WHERE device = 'cam-w'") if count(central_db, "devices") else []
        return rows[0][0] if rows else None

    wait_for(lambda: state() == "online", 30, what="cam-w online")
    device.drop()  # no DISCONNECT: the broker publishes the will after the keepalive runs out
    wait_for(lambda: state() == "offline", 30, what="cam-w offline by its will")
    stopped = Device(broker, "cam-s", will=False)
    stopped.publish("status", "stopped", retain=True)
    wait_for(lambda: count(central_db, "devices", "state = 'stopped'") == 1, 30, what="cam-s stopped")
    assert collector.stop() == 0
    rows = query(central_db, "SELECT device, software_version, timezone, cameras FROM devices ORDER BY device")
    assert [(d, s, t) for d, s, t, _ in rows] == [("cam-s", None, None), ("cam-w", "0.1.0", "Europe/Berlin")]
    cameras = rows[1][3]
    assert (cameras if isinstance(cameras, list) else json.loads(cameras)) == ["feeder", "pond"]
    stopped.close()
