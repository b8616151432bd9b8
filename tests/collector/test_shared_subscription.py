"""Two collectors on one MQTT 5 shared subscription: the stream is split, each message is
written once, and one stopped mid-stream hands its share over without losing anything."""

from __future__ import annotations

import re
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
)
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.broker


def _committed(log: str) -> int:
    found = re.findall(r"committed (\d+) messages", log)
    assert found, log[-2000:]
    return int(found[-1])


def test_two_collectors_split_the_stream_and_one_stops_mid_stream(broker_factory, central_db: str,
                                                                  tmp_path: Path) -> None:
    broker = broker_factory()
    a = CollectorProcess(broker, central_db, tmp_path, client_id="collector-a", group="central").start()
    b = CollectorProcess(broker, central_db, tmp_path, client_id="collector-b", group="central").start()
    devices = [Device(broker, f"cam-{i}") for i in range(4)]
    histories = {d.device: [event_history(d.device, n) for n in range(60)] for d in devices}
    first = {name: [m for h in hs[:30] for m in h] for name, hs in histories.items()}
    rest = {name: [m for h in hs[30:] for m in h] for name, hs in histories.items()}
    for d in devices:
        d.publish_many(first[d.device])
    wait_for(lambda: count(central_db, "events", "change = 'end'") == 120, 60, what="the first half committed")
    assert b.stop() == 0  # a clean stop: b unsubscribes, drains, acks, leaves
    for d in devices:
        d.publish_many(rest[d.device])
    wait_for(lambda: count(central_db, "events", "change = 'end'") == 240, 60, what="all events committed by a")
    assert a.stop() == 0
    published = sum(len(m) for m in first.values()) + sum(len(m) for m in rest.values())
    committed_a, committed_b = _committed(a.log_text()), _committed(b.log_text())
    assert committed_b > 0 and committed_a > committed_b  # both took a share; a took all after b left
    assert committed_a + committed_b == published  # each message written once
    rows = events_by_uid(central_db)
    assert len(rows) == 240
    for d in devices:
        for n in range(60):
            payload = final_event(d.device, n)
            assert_row_matches(rows[payload["event_id"]], payload)
    for d in devices:
        d.close()
