"""The retained `info` message: built from the configuration, published on every connect."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

import edge
from edge.config import EdgeConfig
from edge.config.mqtt import MqttConfig
from edge.publish.messages import deployments, info_message
from edge.publish.mqtt import Publisher, PublisherSources
from tests.edge.publish.helpers import CTX, make_db
from tests.fixtures.broker import Broker, Subscriber, wait_until

BASE = "tc/dev1"
NOW = dt.datetime(2026, 12, 2, 5, 0, tzinfo=dt.UTC)


def cameras() -> list[SimpleNamespace]:
    """Two cameras as [[cameras]] tables: one with a deployment sub-table, one without."""
    deployment = SimpleNamespace(id="dep-7", latitude=52.52, longitude=13.405, location_name="Feeder hill",
                                 start=dt.date(2026, 5, 1), end=dt.datetime(2026, 9, 30, 18, 0), camera_height_m=1.2)
    return [SimpleNamespace(name="cam1", deployment=deployment), SimpleNamespace(name="cam2")]


def test_info_payload_names_versions_zone_cameras_and_deployments() -> None:
    message = info_message(CTX, cameras(), software_version="9.9.9", detector_id="ssd-1a2b3c4d", now=NOW)
    assert (message.topic, message.qos, message.retain) == ("info", 1, True)
    assert json.loads(message.payload) == {
        "schema": 1, "device": "dev1", "software_version": "9.9.9", "model_id": "m-1", "model_version": "v1",
        "detector_id": "ssd-1a2b3c4d", "timezone": "Europe/Berlin", "cameras": ["cam1", "cam2"],
        "deployments": [{"camera": "cam1", "deployment_id": "dep-7", "latitude": 52.52, "longitude": 13.405,
                         "location_name": "Feeder hill", "start": "2026-05-01", "end": "2026-09-30T18:00:00"}],
        "published_at": "2026-12-02T05:00:00.000Z",
    }


def test_deployments_from_a_real_configuration() -> None:
    """[cameras.deployment] as the configuration loads it: TOML dates and date-times, and the
    ecology exports' default id (`<device_id>-<camera>`) when none is configured."""
    config = EdgeConfig.model_validate({
        "station": {"device_id": "dev1", "timezone": "Europe/Berlin"},
        "cameras": [
            {"name": "cam1", "path": "/tmp/cam1",
             "deployment": {"id": "north-1", "latitude": 52.5, "longitude": 13.4, "location_name": "North",
                            "start": dt.date(2026, 5, 1), "end": dt.datetime(2026, 9, 30, 18, 0)}},
            {"name": "cam2", "path": "/tmp/cam2", "deployment": {"latitude": 52.6, "longitude": 13.5}},
            {"name": "cam3", "path": "/tmp/cam3"},
        ]})
    assert deployments(config.cameras, "dev1") == [
        {"camera": "cam1", "deployment_id": "north-1", "latitude": 52.5, "longitude": 13.4, "location_name": "North",
         "start": "2026-05-01", "end": "2026-09-30T18:00:00"},
        {"camera": "cam2", "deployment_id": "dev1-cam2", "latitude": 52.6, "longitude": 13.5, "location_name": None,
         "start": None, "end": None},
    ]


def test_deployments_empty_without_deployment_tables() -> None:
    assert deployments([SimpleNamespace(name="a"), SimpleNamespace(name="b", deployment=None)], "dev1") == []


@pytest.mark.broker
def test_info_is_retained_and_republished_on_every_connect_and_on_change(broker: Broker, tmp_path: Path) -> None:
    make_db(tmp_path / "edge.db")
    versions = iter(f"v{n}" for n in range(1, 100))
    current = {"model_version": next(versions)}

    def source():
        ctx = type(CTX)(device_id="dev1", station_tz="Europe/Berlin", model_id="m-1",
                        model_version=current["model_version"])
        return info_message(ctx, cameras(), software_version=edge.__version__)

    sub = Subscriber(broker, [f"{BASE}/#"], client_id="info-sub")
    pub = Publisher(MqttConfig(**broker.mqtt_config(prefix="tc", discovery=False)), tmp_path / "edge.db", "dev1",
                    PublisherSources(info=source))
    pub.start()
    try:
        first = sub.wait_for(lambda ms: [m for m in ms if m.topic == f"{BASE}/info"], what="info")[0]
        assert json.loads(first.payload)["model_version"] == "v1"
        topics = [m.topic for m in sub.messages]
        assert topics.index(f"{BASE}/status") < topics.index(f"{BASE}/info")  # after `online`
        # A model reload: info_changed() republishes with what the source says now.
        current["model_version"] = "v2"
        pub.info_changed()
        sub.wait_for(lambda ms: len([m for m in ms if m.topic == f"{BASE}/info"]) == 2, what="second info")
        assert json.loads(sub.on(f"{BASE}/info")[-1].payload)["model_version"] == "v2"
        # A reconnect (the broker restarted) publishes it again.
        broker.restart()
        wait_until(lambda: pub.status()["connects"] >= 2, 20, "publisher reconnected")
        # Live deliveries carry retain=False (a resubscription's retained copy carries True).
        sub.wait_for(lambda ms: len([m for m in ms if m.topic == f"{BASE}/info" and not m.retain]) >= 3,
                     what="info published again after the reconnect")
    finally:
        pub.stop()
        sub.close()
    late = Subscriber(broker, [f"{BASE}/info"], persistent=False)
    retained = late.wait_for(lambda ms: [m for m in ms if m.retain], what="retained info")[0]
    info = json.loads(retained.payload)
    assert info["deployments"][0]["deployment_id"] == "dep-7" and info["cameras"] == ["cam1", "cam2"]
    assert info["software_version"] == edge.__version__
    late.close()
