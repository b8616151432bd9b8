"""The retained `<prefix>/<device>/health` topic: payload fields, the publisher's schedule, and
the whole daemon (`edge run`, real AIY model, real mosquitto) pausing on a real filled tmpfs."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from edge.config.mqtt import MqttConfig
from edge.operate.health import HealthState, mqtt_health_payload
from edge.publish.discovery import discovery_messages
from edge.publish.mqtt import Publisher, PublisherSources
from tests.edge.conftest import DaemonProcess
from tests.edge.publish.conftest import Station
from tests.edge.publish.helpers import make_db
from tests.fixtures.broker import Broker, Received, Subscriber, wait_until
from tests.fixtures.disk import fill

BASE = "tc/st1"
HEALTH_KEYS = {"schema", "device", "state", "reason", "detail", "since", "updated_at", "free_bytes", "backlog",
               "outbox_depth", "outbox_dropped", "frames_processed", "frames_error", "last_frame_at", "model_id"}


# ---- payload (no broker) -----------------------------------------------------------------------

def test_health_payload_fields_follow_the_status_snapshot() -> None:
    state = HealthState(model_id="aiy-1234", backlog=3, free_bytes=5_000_000, outbox_depth=7, outbox_dropped=2,
                        started_at="2026-01-01T00:00:00Z")
    state.frame_done("ok", 12.0, species="Blue Jay")
    state.frame_done("error", error="truncated", path="/cam/x.jpg")
    running = mqtt_health_payload(state.snapshot(), "st1")
    assert set(running) == HEALTH_KEYS
    assert running["state"] == "running" and running["reason"] is None and running["detail"] is None
    assert running["since"] == "2026-01-01T00:00:00Z"  # running since the start
    assert (running["frames_processed"], running["frames_error"]) == (2, 1)
    assert (running["backlog"], running["free_bytes"], running["outbox_depth"], running["outbox_dropped"]) == \
        (3, 5_000_000, 7, 2)
    assert running["model_id"] == "aiy-1234" and running["last_frame_at"].endswith("Z")
    assert running["device"] == "st1" and running["schema"] == 1

    state.set(paused=True, pause_reason="low disk space: 6 MB free on /var/lib/trailcam", pause_code="low_space")
    paused = mqtt_health_payload(state.snapshot(), "st1")
    assert (paused["state"], paused["reason"]) == ("paused", "low_space")
    assert paused["detail"].startswith("low disk space") and paused["since"] > running["since"]
    state.set(paused=True, pause_code="disk_full")  # still paused: `since` does not move
    assert mqtt_health_payload(state.snapshot(), "st1")["since"] == paused["since"]
    state.set(paused=False, pause_reason="", pause_code="")
    resumed = mqtt_health_payload(state.snapshot(), "st1")
    assert resumed["state"] == "running" and resumed["reason"] is None and resumed["since"] >= paused["since"]
    json.dumps(resumed)  # JSON-ready


def test_problem_entity_in_home_assistant_discovery() -> None:
    without = discovery_messages("homeassistant", "tc/dev1", "dev1")
    assert not any("binary_sensor" in topic for topic, _ in without)
    configs = dict(discovery_messages("homeassistant", "tc/dev1", "dev1", health=True))
    problem = json.loads(configs["homeassistant/binary_sensor/trailcam_dev1/problem/config"])
    assert problem["unique_id"] == "trailcam_dev1_problem"  # stable: device id only
    assert problem["state_topic"] == problem["json_attributes_topic"] == "tc/dev1/health"
    assert problem["device_class"] == "problem" and problem["entity_category"] == "diagnostic"
    assert problem["device"]["identifiers"] == ["trailcam_dev1"]
    assert problem["availability"][0]["topic"] == "tc/dev1/status"


# ---- publisher against a real broker --------------------------------------------------------------

def healths(sub: Subscriber, base: str = BASE) -> list[dict]:
    return [json.loads(m.payload) for m in sub.on(f"{base}/health")]


def first_index(messages: list[Received], topic: str, payload: str | None = None) -> int:
    return next(i for i, m in enumerate(messages) if m.topic == topic and (payload is None or m.payload == payload))


@pytest.mark.broker
def test_publisher_sends_health_after_online_on_change_and_every_interval(broker: Broker, tmp_path: Path) -> None:
    make_db(tmp_path / "edge.db")
    current = {"state": "running", "reason": None, "n": 0}
    config = MqttConfig(**broker.mqtt_config(prefix="tc", health_interval_s=0.3))
    publisher = Publisher(config, tmp_path / "edge.db", "dev1", PublisherSources(health=lambda: dict(current)))
    sub = Subscriber(broker, ["tc/dev1/#", "homeassistant/#"], persistent=False)
    publisher.start()
    try:
        sub.wait_for(lambda ms: healths(sub, "tc/dev1"), what="health after connect")
        messages = list(sub.messages)
        assert first_index(messages, "tc/dev1/status", "online") < first_index(messages, "tc/dev1/health")
        assert messages[first_index(messages, "tc/dev1/health")].qos == 1
        sub.wait_for(lambda ms: any(m.topic == "homeassistant/binary_sensor/trailcam_dev1/problem/config"
                                    for m in ms), what="problem entity discovered")
        # periodic: several publishes at the 0.3 s interval without any change
        sub.wait_for(lambda ms: len(healths(sub, "tc/dev1")) >= 3, what="periodic health")
        current.update(state="paused", reason="disk_full")
        publisher.health_changed()
        sub.wait_for(lambda ms: healths(sub, "tc/dev1")[-1]["state"] == "paused", timeout=5, what="paused health")
    finally:
        publisher.stop()
    sub.wait_for(lambda ms: [m.payload for m in sub.on("tc/dev1/status")][-1:] == ["stopped"], what="stopped")
    sub.close()
    late = Subscriber(broker, ["tc/dev1/#"], persistent=False)  # retained: the last state, and `stopped`
    got = late.wait_for(lambda ms: {m.topic for m in ms if m.retain} >= {"tc/dev1/health", "tc/dev1/status"}
                        and {m.topic: m.payload for m in ms if m.retain}, what="retained health and status")
    assert json.loads(got["tc/dev1/health"])["state"] == "paused" and got["tc/dev1/status"] == "stopped"
    late.close()


# ---- the daemon on a real small disk -------------------------------------------------------------

def start_daemon(station: Station, broker: Broker, cli_env: dict[str, str], retention: dict[str, object],
                 name: str) -> DaemonProcess:
    toml = station.configure(broker, health_interval_s=0.5)
    extra = ["[retention]", *(f"{k} = {v!r}" for k, v in retention.items()), "[health]", "status_interval_s = 0.2"]
    toml.write_text(toml.read_text() + "\n".join(extra) + "\n")
    return DaemonProcess(["--config", str(toml)], cli_env, station.root / f"{name}.log")


def latest_health(sub: Subscriber) -> dict:
    found = healths(sub)
    return found[-1] if found else {}


@pytest.mark.broker
def test_low_space_pause_and_resume_are_published_as_health(broker: Broker, station: Station, tmpfs,
                                                            cli_env: dict[str, str]) -> None:
    state_dir = tmpfs(station.root / "state", "16m")
    station.db = state_dir / "trailcam.db"
    sub = Subscriber(broker, [f"{BASE}/#", "homeassistant/#"], persistent=False)
    daemon = start_daemon(station, broker, cli_env, {"min_free_mb": 8, "resume_free_mb": 10,
                                                     "disk_check_interval_s": 0.2}, "low-space")
    try:
        first = sub.wait_for(lambda ms: latest_health(sub).get("state") == "running" and latest_health(sub),
                             timeout=90, what="health running")
        assert first["reason"] is None and first["model_id"] and first["free_bytes"] > 8 * 2**20
        messages = list(sub.messages)
        assert first_index(messages, f"{BASE}/status", "online") < first_index(messages, f"{BASE}/health")
        sub.wait_for(lambda ms: any(m.topic == "homeassistant/binary_sensor/trailcam_st1/problem/config" for m in ms),
                     what="problem entity discovered")

        with open(state_dir / "ballast", "wb") as ballast:
            ballast.write(b"\0" * 10 * 1024 * 1024)  # leaves about 6 MB: below min_free_mb
        paused = sub.wait_for(lambda ms: latest_health(sub).get("state") == "paused" and latest_health(sub),
                              timeout=30, what="health paused")
        assert paused["reason"] == "low_space" and "low disk space" in paused["detail"]
        assert paused["free_bytes"] < 8 * 2**20 and paused["since"] >= first["since"]
        station.write_frames(0, 3)  # frames arrive while paused: they wait in the camera folder
        wait_until(lambda: latest_health(sub).get("backlog") == 3, 10, "backlog of 3 in the health")
        assert station.frames_ok() == 0 and latest_health(sub)["state"] == "paused"

        (state_dir / "ballast").unlink()  # space returns
        sub.wait_for(lambda ms: latest_health(sub).get("state") == "running", timeout=30, what="health running again")
        done = sub.wait_for(lambda ms: latest_health(sub).get("frames_processed") == 3
                            and latest_health(sub).get("backlog") == 0 and latest_health(sub), timeout=60,
                            what="the 3 frames counted in the health")
        assert done["state"] == "running" and done["reason"] is None and done["last_frame_at"]
        assert station.frames_ok() == 3
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(60) == 0, daemon.output()
    finally:
        daemon.kill()
    sub.wait_for(lambda ms: [m.payload for m in sub.on(f"{BASE}/status")][-1:] == ["stopped"], what="stopped")
    sub.close()
    assert "Traceback" not in daemon.output()
    late = Subscriber(broker, [f"{BASE}/health", f"{BASE}/status"], persistent=False)
    got = late.wait_for(lambda ms: len({m.topic for m in ms if m.retain}) == 2
                        and {m.topic: m.payload for m in ms if m.retain}, what="retained health and status")
    assert got[f"{BASE}/status"] == "stopped"  # the status says stopped; health keeps the last state
    assert json.loads(got[f"{BASE}/health"])["frames_processed"] == 3
    late.close()


@pytest.mark.broker
def test_disk_full_pause_is_published_although_the_outbox_cannot_be_written(broker: Broker, station: Station,
                                                                              tmpfs, cli_env: dict[str, str]) -> None:
    state_dir = tmpfs(station.root / "state", "16m")
    station.db = state_dir / "trailcam.db"
    sub = Subscriber(broker, [f"{BASE}/#"], persistent=False)
    # min_free_mb = 0: no early pause, the frame's own write runs into ENOSPC
    daemon = start_daemon(station, broker, cli_env, {"min_free_mb": 0, "resume_free_mb": 2,
                                                     "disk_check_interval_s": 0.2}, "disk-full")
    try:
        sub.wait_for(lambda ms: latest_health(sub).get("state") == "running", timeout=90, what="health running")
        station.write_frames(0, 1)
        wait_until(lambda: latest_health(sub).get("frames_processed") == 1 and station.outbox_depth() == 0, 60,
                   "first frame counted and delivered")
        fill(state_dir / "ballast")
        station.write_frames(1, 3)
        paused = sub.wait_for(lambda ms: latest_health(sub).get("state") == "paused" and latest_health(sub),
                              timeout=60, what="health paused on a full disk")
        assert paused["reason"] == "disk_full" and "full" in paused["detail"]
        assert paused["frames_processed"] == 1
        (state_dir / "ballast").unlink()
        sub.wait_for(lambda ms: latest_health(sub).get("state") == "running"
                     and latest_health(sub).get("frames_processed") == 4, timeout=60,
                     what="running again with every frame counted")
        wait_until(lambda: station.outbox_depth() == 0, 15, "outbox drained after the pause")
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(60) == 0, daemon.output()
    finally:
        daemon.kill()
    assert station.frames_ok() == 4
    assert station.query("PRAGMA integrity_check") == [("ok",)]
    events = [json.loads(m.payload) for m in sub.on(f"{BASE}/events") if json.loads(m.payload)["change"] == "new"]
    assert {e["event_id"] for e in events} == station.event_uids()  # nothing lost across the pause
    sub.close()
