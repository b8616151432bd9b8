"""`edge bridge-config`: a real site mosquitto bridged to a real central one (store and forward)."""

from __future__ import annotations

import stat
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from edge.cli.commands import main
from edge.config.mqtt import MqttConfig
from edge.publish.mqtt import Publisher
from edge.store import outbox
from tests.edge.publish.helpers import enqueue_frame, event_ids, make_db
from tests.fixtures.broker import Broker, Subscriber, wait_until

BASE = "tc/dev1"


def bridge_file(tmp_path: Path, central: Broker, *extra: str) -> Path:
    """`edge bridge-config` for `central`, with the password from a file, in a conf.d folder."""
    confd = tmp_path / "conf.d"
    confd.mkdir(exist_ok=True)
    password = tmp_path / "bridge-password"
    password.write_text((central.password or "unused") + "\n")
    args = ["bridge-config", "--remote", f"{central.host}:{central.port}", "--out", str(confd / "bridge.conf"),
            "--prefix", "tc", "--name", "site-a", "--restart-timeout", "1:2", *extra]
    if central.username:
        args += ["--username", central.username, "--password-file", str(password)]
    assert main(args) == 0
    return confd / "bridge.conf"


def site_publisher(site: Broker, db: Path) -> Publisher:
    return Publisher(MqttConfig(**site.mqtt_config(prefix="tc", discovery=False)), db, "dev1")


def test_rendered_bridge_lines_and_private_file(tmp_path: Path) -> None:
    password = tmp_path / "pw"
    password.write_text("pa ss#word\n")
    out = tmp_path / "bridge.conf"
    assert main(["bridge-config", "--remote", "central.example.org:8883", "--out", str(out), "--name", "site-a",
                 "--username", "site-a", "--password-file", str(password), "--tls"]) == 0
    lines = out.read_text().splitlines()
    for line in ["connection site-a", "address central.example.org:8883", "topic trailcam/# out 1",
                 "cleansession false", "local_cleansession false", "queue_qos0_messages true", "persistence true",
                 "autosave_interval 60", "max_queued_messages 500000", "bridge_protocol_version mqttv50",
                 "try_private true", "restart_timeout 10 300", "bridge_capath /etc/ssl/certs",
                 "bridge_insecure false", "remote_username site-a", "remote_password pa ss#word"]:
        assert line in lines
    assert not any(line.startswith("persistence_location") for line in lines)  # Debian's mosquitto.conf has it
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


@pytest.mark.parametrize("args, message", [
    (["--remote", "central"], "--remote: 'central' is not HOST:PORT"),
    (["--remote", "c:1883", "--password-file", "PW"], "--password-file: needs --username"),
    (["--remote", "c:1883", "--username", "u", "--password-file", "MISSING"], "--password-file:"),
    (["--remote", "c:1883", "--cafile", "MISSING"], "--cafile:"),
    (["--remote", "c:1883", "--certfile", "PW"], "certfile and keyfile go together"),
])
def test_bad_options_exit_2_and_write_nothing(tmp_path: Path, capsys, args: list[str], message: str) -> None:  # noqa: ANN001
    (tmp_path / "PW").write_text("x\n")
    args = [a if a not in ("PW", "MISSING") else str(tmp_path / a) for a in args]
    assert main(["bridge-config", *args, "--out", str(tmp_path / "out.conf")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out.conf").exists()


@pytest.mark.broker
def test_site_stores_and_forwards_across_central_outages_and_a_site_restart(
        broker_factory: Callable[..., Broker], tmp_path: Path) -> None:
    central = broker_factory("password")
    site = broker_factory("plain", extra=[f"include_dir {bridge_file(tmp_path, central).parent}"])
    db = make_db(tmp_path / "edge.db")
    sub = Subscriber(central, [f"{BASE}/#"], client_id="central-sub")
    pub = site_publisher(site, tmp_path / "edge.db")
    pub.start()
    try:
        for n in range(5):
            enqueue_frame(db, n)
        sub.wait_for(lambda ms: len(set(event_ids(ms))) == 5, what="5 events forwarded to the central broker")
        assert sub.wait_for(lambda ms: [m for m in ms if m.topic == f"{BASE}/status"], what="status")[0].payload == "online"

        # The link is down (the central broker is away): the site takes everything, the device's
        # outbox empties, and the bridge queues it.
        central.stop()
        for n in range(5, 45):
            enqueue_frame(db, n)
        wait_until(lambda: outbox.depth(db) == 0, 20, "the site broker acknowledged every row")
        central.start()
        sub.wait_for(lambda ms: set(event_ids(ms)) >= {f"ev-{n:05d}" for n in range(45)}, timeout=30,
                     what="the 40 events queued at the site arrive after the central broker returns")

        # Away again, and the site broker restarts (SIGTERM: it saves its store) meanwhile.
        central.stop()
        for n in range(45, 65):
            enqueue_frame(db, n)
        wait_until(lambda: outbox.depth(db) == 0, 20, "the site broker acknowledged the next 20 rows")
        site.restart()
        assert (site.data_path / "mosquitto.db").is_file()
        central.start()
        sub.wait_for(lambda ms: set(event_ids(ms)) >= {f"ev-{n:05d}" for n in range(65)}, timeout=30,
                     what="the events queued before the site broker's restart arrive too")
    finally:
        pub.stop()
        sub.close()
    ids = event_ids(sub.messages)
    assert list(dict.fromkeys(ids)) == [f"ev-{n:05d}" for n in range(65)]  # in order, each at least once
    # The bridge logged in as site-a over MQTT 5 with a persistent session (c0 = clean start off).
    assert "as site-a (p5, c0, k60, u'trailcam')" in central.log_text()


@pytest.mark.broker
def test_bridge_over_tls_verifies_the_central_broker(broker_factory: Callable[..., Broker], tmp_path: Path,
                                                     tls_material) -> None:  # noqa: ANN001
    central = broker_factory("tls")
    conf = bridge_file(tmp_path, central, "--cafile", str(tls_material.ca_cert),
                       "--certfile", str(tls_material.client_cert), "--keyfile", str(tls_material.client_key))
    assert f"bridge_cafile {tls_material.ca_cert}" in conf.read_text()
    site = broker_factory("plain", extra=[f"include_dir {conf.parent}"])
    db = make_db(tmp_path / "edge.db")
    sub = Subscriber(central, [f"{BASE}/events"], client_id="tls-sub")
    pub = site_publisher(site, tmp_path / "edge.db")
    pub.start()
    try:
        enqueue_frame(db, 0)
        sub.wait_for(lambda ms: event_ids(ms) == ["ev-00000"], what="the event over the TLS bridge")
    finally:
        pub.stop()
        sub.close()


@pytest.mark.broker
def test_site_broker_killed_after_an_autosave_keeps_the_queue(broker_factory: Callable[..., Broker],
                                                              tmp_path: Path) -> None:
    """A power cut at the site (SIGKILL: no save at exit) loses only what came after the last
    autosave: here the queue was saved (mosquitto.db rewritten after the rows were acknowledged),
    so all of it is forwarded once both brokers are back."""
    central = broker_factory("password")
    site = broker_factory("plain", extra=[f"include_dir {bridge_file(tmp_path, central, '--autosave-interval', '1').parent}"])
    db = make_db(tmp_path / "edge.db")
    sub = Subscriber(central, [f"{BASE}/events"], client_id="kill-sub")
    pub = site_publisher(site, tmp_path / "edge.db")
    pub.start()
    try:
        enqueue_frame(db, 0)
        sub.wait_for(lambda ms: event_ids(ms) == ["ev-00000"], what="the bridge is up")
        central.stop()
        for n in range(1, 21):
            enqueue_frame(db, n)
        wait_until(lambda: outbox.depth(db) == 0, 20, "the site broker acknowledged every row")
        store = site.data_path / "mosquitto.db"
        queued_at = time.time()
        wait_until(lambda: store.is_file() and store.stat().st_mtime > queued_at + 0.05, 10,
                   "an autosave after the rows were queued")
        site.kill()
        site.start()
        central.start()
        sub.wait_for(lambda ms: set(event_ids(ms)) >= {f"ev-{n:05d}" for n in range(21)}, timeout=30,
                     what="the queue saved before the kill arrives")
    finally:
        pub.stop()
        sub.close()
