"""collector.mqtt_client.LeanClient on a real mosquitto: it delivers what a plain paho client
delivers (every size, properties, QoS 0, both protocols), `ack_many` acknowledges exactly the ids
it is given, and a collector SIGKILLed between a batch's commit and its acknowledgements loses and
doubles nothing (the broker sends the batch again; the upserts make it a no-op)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from collector.mqtt_client import READ_SIZE, LeanClient, ack_many, lean_supported, make_client
from tests.collector.helpers import REPO, CollectorProcess, Device, count
from tests.collector.test_collector import _assert_exactly_the_published, _stream
from tests.fixtures.broker import Broker
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.broker

# Sizes around the remaining-length boundaries (1, 2, 3 bytes) and past one buffered read.
SIZES = (0, 1, 100, 127, 128, 16_370, 16_384, READ_SIZE - 10, READ_SIZE + 1, 3 * READ_SIZE + 7)


class Recorder:
    """A manual-ack subscriber (LeanClient or plain paho) recording what arrives, in order."""

    def __init__(self, broker: Broker, cls: type[paho.Client], client_id: str, protocol: paho.MQTTProtocolVersion,
                 topic: str = "lean/#") -> None:
        self.messages: list[paho.MQTTMessage] = []
        self.lock = threading.Lock()
        self.connected = threading.Event()
        if protocol == paho.MQTTv5:
            self.client = cls(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol)
        else:
            self.client = cls(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol, clean_session=False)
        self.client.manual_ack_set(True)
        self.client.on_connect = lambda c, *_: (c.subscribe(topic, qos=1), self.connected.set())
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.subscribed = threading.Event()
        kwargs: dict[str, Any] = {}
        if protocol == paho.MQTTv5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 300
            kwargs = {"clean_start": False, "properties": props}
        self.client.connect(broker.host, broker.port, keepalive=30, **kwargs)
        self.client.loop_start()
        assert self.connected.wait(10) and self.subscribed.wait(10)

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        with self.lock:
            self.messages.append(message)

    def got(self, n: int) -> bool:
        with self.lock:
            return len(self.messages) >= n

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _publisher(broker: Broker) -> paho.Client:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"lean-pub-{os.getpid()}", protocol=paho.MQTTv5)
    client.connect(broker.host, broker.port)
    client.loop_start()
    return client


def _seen(message: paho.MQTTMessage) -> tuple[Any, ...]:
    props = message.properties
    user = list(getattr(props, "UserProperty", [])) if props is not None else []
    return message.topic, bytes(message.payload), message.qos, bool(message.retain), user


def test_the_installed_paho_is_one_the_lean_client_supports() -> None:
    # A paho upgrade that changes this fails here first: re-check LeanClient against the new
    # paho's _packet_read/_handle_publish/_packet_queue and add its version to TESTED_PAHO.
    assert lean_supported()
    assert not lean_supported("3.0.0") and not lean_supported("2.0.0") and not lean_supported("1.6.1")
    assert isinstance(make_client(CallbackAPIVersion.VERSION2, client_id="x"), LeanClient)
    assert type(make_client(CallbackAPIVersion.VERSION2, client_id="x", lean=False)) is paho.Client


@pytest.mark.parametrize("protocol", [paho.MQTTv5, paho.MQTTv311], ids=["mqtt5", "mqtt311"])
def test_lean_client_delivers_what_a_plain_paho_client_delivers(broker_factory, protocol) -> None:
    broker = broker_factory()
    lean = Recorder(broker, LeanClient, "lean-sub", protocol)
    plain = Recorder(broker, paho.Client, "plain-sub", protocol)
    publisher = _publisher(broker)
    sent = []
    for n, size in enumerate(SIZES):
        payload = bytes((n + i) % 251 for i in range(size))
        sent.append(publisher.publish(f"lean/size/{size}/é", payload, qos=1))
    props = Properties(PacketTypes.PUBLISH)
    props.UserProperty = ("origin", "test")  # properties present: paho's own decoder
    sent.append(publisher.publish("lean/props", b"with properties", qos=1, properties=props))
    sent.append(publisher.publish("lean/qos0", b"at most once", qos=0))  # QoS 0: paho's own path
    sent.append(publisher.publish("lean/retained", b"kept", qos=1, retain=True))
    for info in sent:
        info.wait_for_publish(10)
    total = len(sent)
    wait_for(lambda: lean.got(total) and plain.got(total), 30, what="every message at both subscribers")
    assert [_seen(m) for m in lean.messages] == [_seen(m) for m in plain.messages]
    assert [bytes(m.payload) for m in lean.messages[:len(SIZES)]] == [
        bytes((n + i) % 251 for i in range(size)) for n, size in enumerate(SIZES)]
    by_topic = {m.topic: m for m in lean.messages}
    if protocol == paho.MQTTv5:
        assert by_topic["lean/props"].properties.UserProperty == [("origin", "test")]
    assert by_topic["lean/qos0"].qos == 0 and by_topic["lean/retained"].qos == 1
    for recorder in (lean, plain):
        ack_many(recorder.client, [m.mid for m in recorder.messages if m.qos == 1])
        recorder.close()
    publisher.disconnect()
    publisher.loop_stop()


@pytest.mark.parametrize("protocol", [paho.MQTTv5, paho.MQTTv311], ids=["mqtt5", "mqtt311"])
def test_ack_many_acknowledges_exactly_the_ids_given(broker_factory, protocol) -> None:
    broker = broker_factory()
    first = Recorder(broker, LeanClient, "lean-ack", protocol)
    publisher = _publisher(broker)
    for n in range(16):  # within mosquitto's default in-flight window (20): all in flight
        publisher.publish(f"lean/m/{n}", f"message {n}".encode(), qos=1).wait_for_publish(10)
    wait_for(lambda: first.got(16), 30, what="16 messages")
    assert isinstance(first.client, LeanClient)
    first.client.ack_many([m.mid for m in first.messages[:10]])
    # The broker handles a connection's packets in order: its SUBACK to a SUBSCRIBE sent after the
    # PUBACKs says it has them (a reconnect racing the close could otherwise take the session
    # over before the broker read them, and it would rightly send those messages again).
    first.subscribed.clear()
    first.client.subscribe("lean-sync", qos=1)
    assert first.subscribed.wait(10)
    first.close()
    # The same session again: the 6 unacknowledged come back (flagged duplicates), the 10 do not.
    second = Recorder(broker, LeanClient, "lean-ack", protocol)
    publisher.publish("lean/marker", b"after the redelivery", qos=1).wait_for_publish(10)
    wait_for(lambda: any(m.topic == "lean/marker" for m in list(second.messages)), 30, what="the marker")
    again = [m.topic for m in second.messages if m.topic != "lean/marker"]
    assert sorted(again) == sorted(f"lean/m/{n}" for n in range(10, 16))
    assert all(m.dup for m in second.messages if m.topic != "lean/marker")
    ack_many(second.client, [m.mid for m in second.messages])
    second.close()
    publisher.disconnect()
    publisher.loop_stop()


# A real collector whose sink, once its first batch is committed, SIGKILLs the process before
# the batch's acknowledgements leave: the worst moment for "ack only after commit".
_DIE_AFTER_COMMIT = r"""
import os, signal, sys
from collector.service import Collector, CollectorConfig
from collector.sink import Sink
class CommitThenDie(Sink):
    def write(self, batch):
        stats = super().write(batch)
        with open(sys.argv[4], "w") as done:
            done.write(str(len(batch)))
        os.kill(os.getpid(), signal.SIGKILL)
        return stats
host, port, db = sys.argv[1:4]
config = CollectorConfig(broker_host=host, broker_port=int(port), db=db, client_id="collector-a", batch_size=50)
Collector(config, sink=CommitThenDie(db)).run()
"""


def test_sigkill_between_commit_and_ack_redelivers_and_doubles_nothing(broker_factory, central_db: str,
                                                                       tmp_path: Path) -> None:
    broker = broker_factory()
    # The collector's session and subscriptions first, so the broker queues for it: a device's
    # status committed proves the subscription is in place.
    first = CollectorProcess(broker, central_db, tmp_path).start()
    probe = Device(broker, "cam-probe", will=False)
    probe.publish("status", "online")
    wait_for(lambda: count(central_db, "devices", "device = 'cam-probe'") == 1, 30, what="the probe's status")
    first.kill()
    probe.close()
    device = Device(broker, "cam-ack")
    stream = _stream("cam-ack", 120)
    device.publish_many(stream)
    committed = tmp_path / "committed"
    proc = subprocess.run([sys.executable, "-c", _DIE_AFTER_COMMIT, broker.host, str(broker.port), central_db,
                           str(committed)], env=dict(os.environ, PYTHONPATH=str(REPO)), cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    first_batch = int(committed.read_text())
    assert 0 < first_batch <= 50 and count(central_db, "events") > 0  # committed, never acknowledged
    (tmp_path / "second").mkdir()
    collector = CollectorProcess(broker, central_db, tmp_path / "second").start()  # the same session, its own log
    wait_for(lambda: count(central_db, "events", "change = 'end'") == 120, 60, what="all 120 events ended")
    assert collector.stop() == 0
    _assert_exactly_the_published(central_db, "cam-ack", 120)
    assert count(central_db, "event_species") == 120  # one species each, no doubles
    # Every event message came again: the first batch too, although its rows were already
    # committed (the probe's status may come again as well: its collector was killed as freely).
    received = re.search(r"committed \d+ messages in \d+ batches: (\d+) events", collector.log_text())
    assert received is not None and int(received.group(1)) == len(stream)
    device.close()
