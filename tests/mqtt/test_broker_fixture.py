"""The broker fixture itself: plain, password and TLS brokers accept the right clients only."""

from __future__ import annotations

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.fixtures.broker import Broker, Subscriber, wait_until


def _connack(broker: Broker, username: str | None = None, password: str | None = None) -> object:
    result: dict[str, object] = {}
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="probe", protocol=paho.MQTTv311)
    if username:
        client.username_pw_set(username, password)
    client.on_connect = lambda c, u, f, reason, p: result.setdefault("reason", reason)
    client.connect(broker.host, broker.port)
    wait_until(lambda: client.loop(0.05) is not None and "reason" in result, 10, "CONNACK")
    client.disconnect()
    return result["reason"]


@pytest.mark.broker
def test_plain_broker_roundtrip_survives_restart(broker: Broker) -> None:
    sub = Subscriber(broker, ["t/#"])
    try:
        pub = paho.Client(CallbackAPIVersion.VERSION2, client_id="p", protocol=paho.MQTTv311)
        pub.connect(broker.host, broker.port)
        pub.loop_start()
        pub.publish("t/retained", "kept", qos=1, retain=True).wait_for_publish(5)
        pub.loop_stop()
        sub.wait_for(lambda ms: any(m.payload == "kept" for m in ms), what="first message")
        broker.restart()
        wait_until(lambda: sub.connects >= 2, 10, "subscriber reconnected")
        late = Subscriber(broker, ["t/#"], persistent=False)
        late.wait_for(lambda ms: any(m.retain and m.payload == "kept" for m in ms), what="retained after restart")
        late.close()
    finally:
        sub.close()


@pytest.mark.broker
def test_password_broker_rejects_wrong_password(broker_factory) -> None:  # noqa: ANN001
    broker = broker_factory("password")
    assert _connack(broker, broker.username, "wrong").is_failure
    assert not _connack(broker, broker.username, broker.password).is_failure


@pytest.mark.broker
def test_tls_broker_requires_client_certificate(broker_factory) -> None:  # noqa: ANN001
    broker = broker_factory("tls")
    sub = Subscriber(broker, ["x"])
    assert sub.connects == 1
    sub.close()
    bare = paho.Client(CallbackAPIVersion.VERSION2, client_id="nocert", protocol=paho.MQTTv311)
    bare.tls_set(ca_certs=str(broker.tls.ca_cert))
    with pytest.raises(OSError):
        bare.connect(broker.host, broker.port)
        for _ in range(20):
            if bare.loop(0.1) != 0:
                raise OSError("connection closed")
