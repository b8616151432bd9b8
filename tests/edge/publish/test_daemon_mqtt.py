"""The whole daemon (real AIY model, real frames, real SQLite) publishing to a real mosquitto."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

import edge
from edge.classify.model import sha256_file
from edge.config import load_config
from tests.edge.conftest import DaemonProcess, ThreadDaemon
from tests.edge.publish.conftest import Station
from tests.fixtures.broker import Broker, Subscriber, wait_until

pytestmark = pytest.mark.broker
BASE = "tc/st1"


def new_event_ids(sub: Subscriber) -> set[str]:
    return {json.loads(m.payload)["event_id"] for m in sub.on(f"{BASE}/events") if json.loads(m.payload)["change"] == "new"}


def today_tallies(station: Station, day: str) -> dict[str, tuple[int, int]]:
    return {s: (e, f) for s, e, f in station.query(
        "SELECT species, SUM(events), SUM(frames) FROM daily_tallies WHERE day = ? GROUP BY species", (day,))}


def test_frames_in_events_and_retained_counts_out(broker: Broker, station: Station) -> None:
    config = load_config(station.configure(broker, deployment={"id": "north-1", "latitude": 52.5, "longitude": 13.4}),
                         environ={})
    sub = Subscriber(broker, [f"{BASE}/#"])
    runner = ThreadDaemon(config).start()
    try:
        station.write_frames(0, 6)
        wait_until(lambda: station.frames_ok() == 6, 60, "6 frames recorded")
        uids = station.event_uids()
        assert len(uids) == 6
        sub.wait_for(lambda ms: new_event_ids(sub) == uids, what="a `new` message per event")
        wait_until(lambda: station.outbox_depth() == 0, 15, "outbox drained")
    finally:
        runner.stop()
    ids = [json.loads(m.payload)["id"] for m in sub.on(f"{BASE}/events")]
    assert len(ids) == len(set(ids))  # no reconnect, no duplicate
    rows = {r[0]: r for r in station.query(
        "SELECT uid, camera, species, started_at, ended_at, frame_count, model_id FROM events")}
    version = sha256_file(station.model)[:12]  # AIY has no manifest: its content names the build
    for message in sub.on(f"{BASE}/events"):
        payload = json.loads(message.payload)
        uid, camera, species, started, ended, frames, model_id = rows[payload["event_id"]]
        assert (payload["camera"], payload["species"], payload["start"], payload["model_id"]) == (camera, species, started, model_id)
        assert payload["timezone"] == "Europe/Berlin" and payload["utc_offset"] in ("+01:00", "+02:00")
        assert payload["device"] == "st1" and not message.retain
        assert payload["model_version"] == version
    statuses = [m.payload for m in sub.on(f"{BASE}/status")]
    assert statuses[0] == "online" and statuses[-1] == "stopped"
    # The retained identity card, sent right after `online` on the connect.
    info = json.loads(sub.on(f"{BASE}/info")[0].payload)
    assert (info["device"], info["timezone"], info["cameras"]) == ("st1", "Europe/Berlin", ["cam1"])
    assert (info["model_id"], info["model_version"], info["detector_id"]) == (rows[next(iter(rows))][6], version, None)
    assert info["software_version"] == edge.__version__
    assert info["deployments"] == [{"camera": "cam1", "deployment_id": "north-1", "latitude": 52.5, "longitude": 13.4,
                                    "location_name": None, "start": None, "end": None}]

    late = Subscriber(broker, [f"{BASE}/#"], persistent=False)
    retained = late.wait_for(
        lambda ms: {m.topic for m in ms if m.retain} >= {f"{BASE}/status", f"{BASE}/counts"} and ms, what="retained"
    )
    late.wait_for(lambda ms: any(m.retain and m.topic == f"{BASE}/info" for m in ms), what="retained info")
    counts = json.loads([m for m in retained if m.topic == f"{BASE}/counts"][-1].payload)
    expected = today_tallies(station, counts["day"])
    assert {s: (v["events"], v["frames"]) for s, v in counts["species"].items()} == expected
    assert counts["total"]["frames"] == 6
    def per_species(ms: list) -> dict:  # noqa: ANN001
        return {json.loads(m.payload)["species"]: json.loads(m.payload) for m in ms
                if m.retain and m.topic.startswith(f"{BASE}/counts/")}

    got = late.wait_for(lambda ms: per_species(ms).keys() >= expected.keys() and per_species(ms), what="counts/<species>")
    assert {s: (got[s]["events"], got[s]["frames"]) for s in expected} == expected
    late.close()
    sub.close()


def test_broker_stopped_while_counting_then_restarted(broker: Broker, station: Station) -> None:
    config = load_config(station.configure(broker), environ={})
    sub = Subscriber(broker, [f"{BASE}/events"], client_id="daemon-restart-sub")
    runner = ThreadDaemon(config).start()
    try:
        station.write_frames(0, 3)
        wait_until(lambda: len(new_event_ids(sub)) == 3, 60, "first 3 events")
        broker.stop()
        station.write_frames(3, 6)  # counting goes on while the broker is away
        wait_until(lambda: station.frames_ok() == 9, 60, "frames counted without a broker")
        assert station.outbox_depth() > 0
        assert runner.daemon.publisher.status()["connected"] is False
        broker.start()
        sub.wait_for(lambda ms: new_event_ids(sub) == station.event_uids(), timeout=30, what="all 9 events")
        wait_until(lambda: station.outbox_depth() == 0, 15, "outbox drained after the restart")
    finally:
        runner.stop()
        sub.close()
    ids = [json.loads(m.payload)["id"] for m in sub.on(f"{BASE}/events")]
    assert runner.daemon.publisher.status()["connects"] >= 2
    assert len(ids) - len(set(ids)) <= config.mqtt.max_inflight  # duplicates only across the one reconnect


def test_broker_absent_at_start_counts_then_delivers(broker_factory, station: Station) -> None:  # noqa: ANN001
    broker = broker_factory("plain", start=False)
    config = load_config(station.configure(broker), environ={})
    runner = ThreadDaemon(config).start()
    try:
        station.write_frames(0, 4)
        wait_until(lambda: station.frames_ok() == 4, 60, "frames counted with no broker")
        assert "unreachable" in (runner.daemon.publisher.status()["last_error"] or "")
        broker.start()
        wait_until(lambda: station.outbox_depth() == 0, 20, "outbox drained once the broker appeared")
        late = Subscriber(broker, [f"{BASE}/counts", f"{BASE}/status"], persistent=False)
        got = late.wait_for(lambda ms: {m.topic: m.payload for m in ms if m.retain}.keys() >= {f"{BASE}/counts", f"{BASE}/status"}
                            and {m.topic: m.payload for m in ms if m.retain}, what="retained counts and status")
        assert got[f"{BASE}/status"] == "online"
        assert json.loads(got[f"{BASE}/counts"])["total"]["frames"] == 4
        late.close()
    finally:
        runner.stop()


def test_wrong_password_counting_goes_on(broker_factory, station: Station, tmp_path: Path) -> None:  # noqa: ANN001
    broker = broker_factory("password")
    secret = tmp_path / "pw"
    secret.write_text("wrong-password")
    config = load_config(station.configure(broker, password_file=str(secret)), environ={})
    runner = ThreadDaemon(config).start()
    try:
        station.write_frames(0, 3)
        wait_until(lambda: station.frames_ok() == 3, 60, "frames counted despite the rejected login")
        status = wait_until(lambda: runner.daemon.publisher.status()["state"] == "auth_failed"
                            and runner.daemon.publisher.status(), 15, "auth_failed")
        assert "rejected the login" in status["last_error"] and "wrong-password" not in json.dumps(status)
        assert station.outbox_depth() > 0
    finally:
        runner.stop()


def test_daemon_sigkill_with_full_outbox_then_restart_delivers_everything(
    broker_factory, station: Station, cli_env: dict[str, str]  # noqa: ANN001
) -> None:
    broker = broker_factory("plain", start=False)  # absent at first start
    toml = station.configure(broker)
    station.write_frames(0, 8)
    first = DaemonProcess(["--config", str(toml)], cli_env, station.root / "first.log")
    try:
        wait_until(lambda: station.frames_ok() == 8, 90, "8 frames counted with no broker")
        wait_until(lambda: station.outbox_depth() > 0, 10, "outbox filled")
    finally:
        first.kill()  # SIGKILL with a full outbox
    broker.start()
    sub = Subscriber(broker, [f"{BASE}/#"], client_id="kill-daemon-sub")
    second = DaemonProcess(["--config", str(toml)], cli_env, station.root / "second.log")
    try:
        sub.wait_for(lambda ms: new_event_ids(sub) == station.event_uids() and len(station.event_uids()) == 8,
                     timeout=60, what="every event of the killed run")
        wait_until(lambda: station.outbox_depth() == 0, 15, "outbox drained")
        sub.wait_for(lambda ms: [m.payload for m in sub.on(f"{BASE}/status")][-1:] == ["online"], what="online")
        second.kill()
        sub.wait_for(lambda ms: [m.payload for m in sub.on(f"{BASE}/status")][-1:] == ["offline"], what="LWT offline")
        third = DaemonProcess(["--config", str(toml)], cli_env, station.root / "third.log")
        sub.wait_for(lambda ms: [m.payload for m in sub.on(f"{BASE}/status")][-1:] == ["online"], timeout=60,
                     what="online again")
        third.signal(signal.SIGTERM)
        assert third.wait(60) == 0, third.output()
        sub.wait_for(lambda ms: [m.payload for m in sub.on(f"{BASE}/status")][-1:] == ["stopped"], what="stopped")
    finally:
        second.kill()
        sub.close()
    assert "rejected" not in second.output() and "Traceback" not in second.output()
