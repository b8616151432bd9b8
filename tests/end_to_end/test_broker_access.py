"""Issue 22, item 3: one device cannot write as another. A real mosquitto started with what
`edge bridge-config --device ... --acl-out --passwd-out` writes (per-device users, `pattern
write trailcam/%u/#`), the collector logged in as its user: dev2's credentials cannot publish
an event, a status or a will into dev1's topics, and nothing it tries reaches the database."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.cli.commands import main
from tests.collector.helpers import CollectorProcess, Device, count, event_history, events_by_uid, query
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.broker


def _state(db: str, device: str) -> str | None:
    rows = query(db, "SELECT state FROM devices WHERE device = ?", (device,)) if count(db, "devices") else []
    return rows[0][0] if rows else None


def _connect_code(broker, user: str | None, password: str | None) -> int:  # noqa: ANN001
    """The CONNACK's reason for this login, as paho 2 reports it (0 accepted, 135 not authorised)."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"probe-{user}", protocol=paho.MQTTv311)
    if user is not None:
        client.username_pw_set(user, password)
    codes: list[int] = []
    client.on_connect = lambda c, u, f, reason, p: codes.append(reason.value)
    client.connect(broker.host, broker.port, keepalive=5)
    client.loop_start()
    try:
        wait_for(lambda: codes, 10, what="a CONNACK")
    finally:
        client.disconnect()
        client.loop_stop()
    return codes[0]


def test_a_device_cannot_publish_as_another(broker_factory, sqlite_central: str, tmp_path: Path) -> None:
    acl, passwd, creds = tmp_path / "acl", tmp_path / "passwd", tmp_path / "creds"
    assert main(["bridge-config", "--device", "dev1", "--device", "dev2", "--acl-out", str(acl),
                 "--passwd-out", str(passwd), "--credentials-dir", str(creds)]) == 0
    assert "pattern write trailcam/%u/#" in acl.read_text()
    assert all(stat.S_IMODE(path.stat().st_mode) == 0o600 for path in (acl, passwd, *creds.iterdir()))
    secret = {user: (creds / f"{user}.password").read_text().strip() for user in ("dev1", "dev2", "collector")}
    broker = broker_factory(extra=["allow_anonymous false", f"password_file {passwd}", f"acl_file {acl}"])
    collector = CollectorProcess(broker, sqlite_central, tmp_path, extra=(
        "--username", "collector", "--password-file", str(creds / "collector.password"))).start()

    assert _connect_code(broker, None, None) == 135  # anonymous
    assert _connect_code(broker, "dev1", secret["dev2"]) == 135  # another device's password
    dev1 = Device(broker, "dev1", login=("dev1", secret["dev1"]))
    dev1.publish("status", "online", retain=True)
    dev1.publish_many(event_history("dev1", 1))
    wait_for(lambda: count(sqlite_central, "events", "change = 'end'") == 1, 30, what="dev1's event")
    before = events_by_uid(sqlite_central)

    # dev2, logged in as itself, writes into dev1's topics: a forged end of dev1's event (more
    # frames, so it would win), a new event, dev1 "offline"; and a will naming dev1's status.
    forger = Device(broker, "dev2", login=("dev2", secret["dev2"]), will_device="dev1")
    for topic, payload in event_history("dev1", 1, frames=9)[-1:] + event_history("dev1", 2):
        forger.publish(topic, payload, device="dev1")
    forger.publish("status", "offline", retain=True, device="dev1")
    forger.drop()  # no DISCONNECT: the broker sends its will (and the ACL refuses it)
    wait_for(lambda: re.search(r"Client dev-dev2-\d+ closed its connection", broker.log_text()), 30,
             what="the broker saw the forger go")
    # What dev2 may write (its own topics) still arrives, after everything it tried.
    honest = Device(broker, "dev2", login=("dev2", secret["dev2"]))
    honest.publish_many(event_history("dev2", 5))
    wait_for(lambda: count(sqlite_central, "events", "device = 'dev2'") == 1, 30, what="dev2's own event")
    dev1.publish("status", "online", retain=True)  # a sentinel through the same collector, after the will
    wait_for(lambda: count(sqlite_central, "devices") == 2, 30, what="both devices")
    assert collector.stop() == 0

    rows = events_by_uid(sqlite_central)
    assert rows["dev1-ev-00001"] == before["dev1-ev-00001"] and rows["dev1-ev-00001"]["frame_count"] == 3
    assert "dev1-ev-00002" not in rows and set(rows) == {"dev1-ev-00001", "dev2-ev-00005"}
    assert _state(sqlite_central, "dev1") == "online"
    assert count(sqlite_central, "rejected_messages") == 0  # refused by the broker: never reached the collector
    retained = json.dumps(query(sqlite_central, "SELECT device, state FROM devices ORDER BY device"))
    assert retained == json.dumps([["dev1", "online"], ["dev2", "unknown"]])
    for client in (dev1, honest):
        client.close()


def test_the_collector_rejects_a_payload_naming_another_device(broker_factory, sqlite_central: str,
                                                               tmp_path: Path) -> None:
    """Without broker access control (or from a site bridge trusted for several devices) the
    collector's own check still holds: a payload whose `device` is not its topic's is rejected."""
    broker = broker_factory()
    collector = CollectorProcess(broker, sqlite_central, tmp_path).start()
    dev2 = Device(broker, "dev2")
    dev2.publish_many([(t, p) for t, p in event_history("dev1", 1)], retain_counts=False)  # dev1's payloads on dev2's topic
    dev2.publish_many(event_history("dev2", 2))
    wait_for(lambda: count(sqlite_central, "events") == 1, 30, what="dev2's own event")
    assert collector.stop() == 0
    reasons = {r[0] for r in query(sqlite_central, "SELECT reason FROM rejected_messages")}
    assert reasons == {"field 'device' 'dev1' differs from the topic's device 'dev2'"}
    assert set(events_by_uid(sqlite_central)) == {"dev2-ev-00002"}
    dev2.close()


@pytest.fixture
def sqlite_central(tmp_path: Path) -> str:
    return str(tmp_path / "central.sqlite")
