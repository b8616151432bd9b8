"""The Publisher against a real mosquitto, with an outbox filled directly (no daemon)."""

from __future__ import annotations

import json
import logging
import random
from collections import Counter
from datetime import UTC
from pathlib import Path

import pytest

from edge.config.mqtt import MqttConfig
from edge.publish.mqtt import Publisher, PublisherSources, backoff_delay
from edge.store import outbox
from tests.edge.publish.helpers import enqueue_frame, event_ids, make_db
from tests.fixtures.broker import Broker, Subscriber, wait_until

pytestmark = pytest.mark.broker
BASE = "tc/dev1"


def publisher(broker: Broker, db_path: Path, **overrides: object) -> Publisher:
    settings = broker.mqtt_config(prefix="tc", **overrides)
    return Publisher(MqttConfig(**settings), db_path, "dev1")


def test_backoff_grows_exponentially_with_bounded_jitter() -> None:
    rng = random.Random(1)
    for attempt, step in [(1, 1.0), (2, 2.0), (3, 4.0), (9, 256.0), (10, 300.0), (30, 300.0)]:
        delays = [backoff_delay(attempt, 1.0, 300.0, rng) for _ in range(50)]
        assert all(step / 2 <= d <= step for d in delays)
        assert len(set(delays)) > 1  # jitter spreads a fleet


def test_drains_outbox_in_order_and_deletes_after_ack(broker: Broker, tmp_path: Path) -> None:
    db = make_db(tmp_path / "edge.db")
    for n in range(40):
        enqueue_frame(db, n)
    sub = Subscriber(broker, [f"{BASE}/#"])
    pub = publisher(broker, tmp_path / "edge.db", discovery=False)
    pub.start()
    try:
        sub.wait_for(lambda ms: len(event_ids(ms)) >= 40, what="40 events")
        wait_until(lambda: outbox.depth(db) == 0, 10, "outbox emptied after PUBACKs")
        assert event_ids(sub.messages) == [f"ev-{n:05d}" for n in range(40)]  # in order, no duplicate
        sub.wait_for(lambda ms: any(m.topic == f"{BASE}/status" and m.payload == "online" for m in ms), what="online")
        enqueue_frame(db, 40)  # a later frame is picked up without a wake() call
        sub.wait_for(lambda ms: len(event_ids(ms)) == 41, what="41st event")
        wait_until(lambda: pub.status()["published"] == 41 * 3, 10, "all 123 rows acknowledged")
        assert pub.status()["connected"] and outbox.depth(db) == 0
    finally:
        pub.stop()
        sub.close()
    assert pub.status()["state"] == "stopped"
    counts = json.loads(sub.on(f"{BASE}/counts")[-1].payload)
    assert counts["total"] == {"events": 41, "frames": 41, "individuals": 41}
    # the 40 queued snapshots went out in batches, each sending only its newest snapshot
    assert len(sub.on(f"{BASE}/counts")) < 40


def test_late_subscriber_gets_retained_counts_and_status(broker: Broker, tmp_path: Path) -> None:
    db = make_db(tmp_path / "edge.db")
    for n in range(3):
        enqueue_frame(db, n)
    pub = publisher(broker, tmp_path / "edge.db", discovery=False)
    pub.start()
    try:
        wait_until(lambda: outbox.depth(db) == 0, 10, "outbox drained")
        late = Subscriber(broker, [f"{BASE}/#"], persistent=False)
        got = late.wait_for(
            lambda ms: {m.topic: m for m in ms if m.retain}.keys() >= {f"{BASE}/status", f"{BASE}/counts", f"{BASE}/counts/blue_jay"}
            and {m.topic: m for m in ms if m.retain},
            what="retained status and counts",
        )
        assert got[f"{BASE}/status"].payload == "online"
        assert json.loads(got[f"{BASE}/counts"].payload)["total"]["events"] == 3
        assert json.loads(got[f"{BASE}/counts/blue_jay"].payload)["events"] == 3
        assert not any(m.topic == f"{BASE}/events" for m in late.messages)  # events are not retained
        late.close()
    finally:
        pub.stop()


def test_broker_restart_loses_nothing_and_duplicates_only_across_reconnect(broker: Broker, tmp_path: Path) -> None:
    db = make_db(tmp_path / "edge.db")
    sub = Subscriber(broker, [f"{BASE}/events"], client_id="restart-sub")
    pub = publisher(broker, tmp_path / "edge.db", discovery=False)
    pub.start()
    try:
        for n in range(20):
            enqueue_frame(db, n)
        sub.wait_for(lambda ms: len(event_ids(ms)) >= 5, what="first events")
        broker.stop()
        for n in range(20, 60):  # counting goes on while the broker is away
            enqueue_frame(db, n)
        wait_until(lambda: not pub.status()["connected"], 10, "publisher noticed the broker is gone")
        assert outbox.depth(db) > 0
        broker.start()
        expected = [f"ev-{n:05d}" for n in range(60)]
        sub.wait_for(lambda ms: set(event_ids(ms)) >= set(expected), timeout=20, what="all 60 events")
        wait_until(lambda: outbox.depth(db) == 0, 10, "outbox drained after restart")
    finally:
        pub.stop()
        sub.close()
    ids = event_ids(sub.messages)
    first_seen = list(dict.fromkeys(ids))
    assert first_seen == expected  # in order per device
    duplicates = sum(c - 1 for c in Counter(ids).values())
    assert pub.status()["connects"] >= 2
    assert duplicates <= pub.config.max_inflight * (pub.status()["connects"] - 1)


def test_broker_absent_at_start_delivers_once_it_appears(broker_factory, tmp_path: Path) -> None:  # noqa: ANN001
    broker = broker_factory("plain", start=False)
    db = make_db(tmp_path / "edge.db")
    states: list[str] = []
    pub = Publisher(MqttConfig(**broker.mqtt_config(prefix="tc", discovery=False)),
                    tmp_path / "edge.db", "dev1", on_state=states.append)
    pub.start()
    try:
        for n in range(10):
            enqueue_frame(db, n)
        wait_until(lambda: pub.status()["last_error"], 10, "an unreachable-broker error")
        assert "unreachable" in pub.status()["last_error"]
        assert pub.status()["state"] in ("backoff", "connecting")
        assert outbox.depth(db) == 30
        broker.start()
        wait_until(lambda: outbox.depth(db) == 0, 15, "outbox drained once the broker appeared")
        sub = Subscriber(broker, [f"{BASE}/counts"], persistent=False)
        retained = sub.wait_for(lambda ms: [m for m in ms if m.retain], what="retained counts")
        assert json.loads(retained[-1].payload)["total"]["events"] == 10
        sub.close()
    finally:
        pub.stop()
    assert states[0] == "connecting" and "backoff" in states and states[-2:] == ["connected", "stopped"]


def test_wrong_password_is_a_clear_error_and_is_retried(
    broker_factory, tmp_path: Path, caplog: pytest.LogCaptureFixture  # noqa: ANN001
) -> None:
    broker = broker_factory("password")
    secret = tmp_path / "mqtt_password"
    secret.write_text("not-the-password\n")
    db = make_db(tmp_path / "edge.db")
    enqueue_frame(db, 0)
    caplog.set_level(logging.DEBUG, logger="edge")
    pub = publisher(broker, tmp_path / "edge.db", password_file=str(secret), discovery=False)
    pub.start()
    try:
        wait_until(lambda: pub.status()["state"] == "auth_failed", 10, "auth_failed state")
        error = pub.status()["last_error"]
        assert "rejected the login" in error and "trailcam" in error and "password_file" in error
        assert outbox.depth(db) == 3  # nothing lost, nothing sent
        wait_until(lambda: broker.log_text().count("not authorised") >= 2, 10, "a retried login")
        secret.write_text(broker.password + "\n")  # operator fixes the credential; no restart needed
        wait_until(lambda: outbox.depth(db) == 0, 15, "delivery after the password was fixed")
        assert pub.status()["connected"]
    finally:
        pub.stop()
    for text in (caplog.text, json.dumps(pub.status())):
        assert broker.password not in text and "not-the-password" not in text
    assert sum("rejected the login" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR) == 1


def test_password_from_systemd_credential(broker_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    broker = broker_factory("password")
    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / "mqtt_password").write_text(broker.password)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    db = make_db(tmp_path / "edge.db")
    enqueue_frame(db, 0)
    pub = publisher(broker, tmp_path / "edge.db", discovery=False)
    assert pub.status()["password_source"] == "credential"
    pub.start()
    try:
        wait_until(lambda: outbox.depth(db) == 0, 10, "delivery with the password from the credential")
    finally:
        pub.stop()


def test_tls_with_ca_and_client_certificate(broker_factory, tmp_path: Path) -> None:  # noqa: ANN001
    broker = broker_factory("tls")
    db = make_db(tmp_path / "edge.db")
    enqueue_frame(db, 0)
    sub = Subscriber(broker, [f"{BASE}/events"])
    pub = publisher(broker, tmp_path / "edge.db", discovery=False)
    assert pub.status()["broker"].startswith("mqtts://")
    pub.start()
    try:
        sub.wait_for(lambda ms: event_ids(ms) == ["ev-00000"], what="event over TLS")
    finally:
        pub.stop()
        sub.close()


def test_tls_with_unknown_ca_is_refused_and_counted_as_error(broker_factory, tmp_path: Path, tls_material) -> None:  # noqa: ANN001
    broker = broker_factory("tls")
    db = make_db(tmp_path / "edge.db")
    enqueue_frame(db, 0)
    # the client's own certificate as "CA": the server certificate cannot be verified
    pub = publisher(broker, tmp_path / "edge.db", ca_file=str(tls_material.client_cert), discovery=False)
    pub.start()
    try:
        wait_until(lambda: pub.status()["last_error"], 10, "TLS verification error")
        assert "CERTIFICATE_VERIFY_FAILED" in pub.status()["last_error"].upper().replace(" ", "_")
        assert outbox.depth(db) == 3
    finally:
        pub.stop()


def test_clean_stop_publishes_stopped_and_drains(broker: Broker, tmp_path: Path) -> None:
    db = make_db(tmp_path / "edge.db")
    sub = Subscriber(broker, [f"{BASE}/status"])
    pub = publisher(broker, tmp_path / "edge.db", discovery=False)
    pub.start()
    sub.wait_for(lambda ms: [m.payload for m in ms][-1:] == ["online"], what="online")
    for n in range(30):
        enqueue_frame(db, n)
    pub.stop()
    assert outbox.depth(db) == 0  # drained within drain_timeout_s before saying goodbye
    sub.wait_for(lambda ms: [m.payload for m in ms][-1:] == ["stopped"], what="stopped")
    assert "offline" not in [m.payload for m in sub.messages]
    sub.close()


def test_day_snapshots_at_start_and_at_local_midnight(broker: Broker, tmp_path: Path) -> None:
    """Retained counts must not show yesterday's numbers all morning: a full snapshot of the
    station-local day is queued at start and when the day changes, zeros for known species."""
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    from tests.edge.publish.helpers import CTX

    db = make_db(tmp_path / "edge.db")
    db.execute("CREATE TABLE daily_tallies (day TEXT, camera TEXT, species TEXT, events INTEGER, frames INTEGER, "
               "individuals INTEGER, PRIMARY KEY (day, camera, species))")
    db.execute("INSERT INTO daily_tallies VALUES ('2026-11-28', 'cam1', 'Blue Jay', 2, 5, 2), "
               "('2026-11-29', 'cam1', 'Parus major', 1, 3, 2), ('2026-11-29', 'cam2', 'Parus major', 1, 1, 1)")
    db.conn.commit()
    clock = [datetime(2026, 11, 29, 23, 59, 58, tzinfo=ZoneInfo("Europe/Berlin")).astimezone(UTC)]
    pub = Publisher(MqttConfig(**broker.mqtt_config(prefix="tc", discovery=False)), tmp_path / "edge.db", "dev1",
                    PublisherSources(context=lambda: CTX), clock=lambda: clock[0])
    sub = Subscriber(broker, [f"{BASE}/counts/#", f"{BASE}/counts"])

    def latest(ms: list) -> dict:  # noqa: ANN001
        return {m.topic.removeprefix(f"{BASE}/"): json.loads(m.payload) for m in ms}

    pub.start()
    try:
        now = sub.wait_for(lambda ms: len(latest(ms)) == 3 and latest(ms), what="start snapshot")
        assert now["counts"]["day"] == "2026-11-29" and now["counts"]["total"] == {"events": 2, "frames": 4, "individuals": 3}
        assert (now["counts/parus_major"]["events"], now["counts/blue_jay"]["events"]) == (2, 0)
        assert now["counts/blue_jay"]["day"] == "2026-11-29"
        clock[0] += timedelta(seconds=3)  # 00:00:01 in Berlin
        sub.wait_for(lambda ms: all(v["day"] == "2026-11-30" for v in latest(ms).values()), what="all topics rolled")
        after = latest(sub.messages)
        assert after["counts"]["total"] == {"events": 0, "frames": 0, "individuals": 0} and after["counts"]["species"] == {}
        assert after["counts/parus_major"]["events"] == 0 and after["counts/blue_jay"]["frames"] == 0
    finally:
        pub.stop()
        sub.close()
