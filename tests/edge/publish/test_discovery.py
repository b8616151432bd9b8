"""Home Assistant discovery: schema keys, stable unique ids, republish on `homeassistant/status`."""

from __future__ import annotations

import json
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.config.mqtt import MqttConfig
from edge.publish.discovery import discovery_messages
from edge.publish.mqtt import Publisher, PublisherSources
from tests.edge.publish.helpers import enqueue_frame, make_db
from tests.fixtures.broker import Broker, Subscriber, wait_until

# Keys Home Assistant's MQTT sensor platform accepts (abbreviations aside); a typo would be
# rejected by HA with "extra keys not allowed".
HA_SENSOR_KEYS = {
    "name", "unique_id", "state_topic", "value_template", "availability", "device", "origin", "qos",
    "json_attributes_topic", "json_attributes_template", "icon", "state_class", "unit_of_measurement",
}
HA_STATE_CLASSES = {"measurement", "total", "total_increasing"}


def check_sensor_config(topic: str, config: dict) -> None:
    parts = topic.split("/")
    assert parts[0] == "homeassistant" and parts[1] == "sensor" and parts[-1] == "config" and len(parts) == 5
    assert set(config) <= HA_SENSOR_KEYS, set(config) - HA_SENSOR_KEYS
    assert config["state_topic"] and config["unique_id"] and config["name"]
    assert config["unique_id"].startswith(parts[2])  # node id prefix keeps ids unique per device
    assert config["device"]["identifiers"] == [parts[2]]
    assert all("topic" in a for a in config["availability"])
    assert config.get("state_class", "measurement") in HA_STATE_CLASSES
    assert "{{" in config["value_template"]


def test_discovery_payloads_match_home_assistant_schema() -> None:
    messages = discovery_messages("homeassistant", "tc/dev1", "dev1", ["Blue Jay", "Cassin's Finch"])
    unique_ids = set()
    for topic, payload in messages:
        config = json.loads(payload)
        check_sensor_config(topic, config)
        unique_ids.add(config["unique_id"])
    assert unique_ids == {
        "trailcam_dev1_last_species", "trailcam_dev1_events_today", "trailcam_dev1_birds_today",
        "trailcam_dev1_species_blue_jay", "trailcam_dev1_species_cassin_s_finch",
    }
    assert by_id_of(messages)["trailcam_dev1_birds_today"]["value_template"] == "{{ value_json.total.individuals }}"
    by_id = {json.loads(p)["unique_id"]: json.loads(p) for _, p in messages}
    assert by_id["trailcam_dev1_species_blue_jay"]["state_topic"] == "tc/dev1/counts/blue_jay"
    assert by_id["trailcam_dev1_last_species"]["state_topic"] == "tc/dev1/events"


def test_discovery_names_species_as_people_read_them() -> None:
    """Sensor names use the display name; unique ids and topics stay keyed by the label; the
    last species sensor shows the common name, else a roll-up's label, else the scientific name."""
    from jinja2 import Environment

    names = {"MOURNING DOVE": "Mourning Dove", "Spinus tristis": "Spinus tristis"}
    by_id = by_id_of(discovery_messages("homeassistant", "tc/dev1", "dev1", list(names), display=names.__getitem__))
    dove = by_id["trailcam_dev1_species_mourning_dove"]
    assert dove["name"] == "Mourning Dove visits today"
    assert dove["state_topic"] == "tc/dev1/counts/mourning_dove"
    assert by_id["trailcam_dev1_species_spinus_tristis"]["name"] == "Spinus tristis visits today"
    # Home Assistant renders value_template with Jinja: the same rule as display_name.
    template = Environment().from_string(by_id["trailcam_dev1_last_species"]["value_template"])

    def shown(**payload: object) -> str:
        return template.render(value_json={"species": None, "scientific_name": None, "common_name": None, **payload})
    assert shown(species="MOURNING DOVE", scientific_name="Zenaida macroura", common_name="Carolinataube") == "Carolinataube"
    assert shown(species="Spinus tristis", scientific_name="Spinus tristis") == "Spinus tristis"
    assert shown(species="Turdus sp.", scientific_name="Turdus") == "Turdus sp."
    assert shown(species="unknown") == "unknown"


def by_id_of(messages: list[tuple[str, str]]) -> dict[str, dict]:
    return {json.loads(p)["unique_id"]: json.loads(p) for _, p in messages}


def discovered(sub: Subscriber) -> dict[str, dict]:
    return {m.topic: json.loads(m.payload) for m in sub.messages if m.topic.startswith("homeassistant/")}


@pytest.mark.broker
def test_discovery_is_retained_stable_across_restarts_and_republished(broker: Broker, tmp_path: Path) -> None:
    db = make_db(tmp_path / "edge.db")
    enqueue_frame(db, 0)  # counts/blue_jay announces the species sensor
    config = MqttConfig(**broker.mqtt_config(prefix="tc"))
    first = Publisher(config, tmp_path / "edge.db", "dev1")
    first.start()
    sub = Subscriber(broker, ["homeassistant/#"], persistent=False)
    try:
        sub.wait_for(lambda ms: len(discovered(sub)) == 4, what="4 discovery configs")
        for topic, cfg in discovered(sub).items():
            check_sensor_config(topic, cfg)
        first.stop()
        ids_first = {cfg["unique_id"] for cfg in discovered(sub).values()}

        second = Publisher(config, tmp_path / "edge.db", "dev1", PublisherSources(known_species=lambda: ["Blue Jay"]))
        late = Subscriber(broker, ["homeassistant/#"], persistent=False)
        retained = late.wait_for(lambda ms: len([m for m in ms if m.retain]) >= 3 and ms, what="retained configs")
        assert {json.loads(m.payload)["unique_id"] for m in retained} == ids_first
        late.close()
        second.start()
        before = len(sub.messages)
        sub.wait_for(lambda ms: len(ms) >= before + 3, what="discovery on reconnect")
        assert {cfg["unique_id"] for cfg in discovered(sub).values()} == ids_first

        # Home Assistant restarts and announces itself: configs are sent again.
        wait_until(lambda: second.status()["connected"], 10, "second publisher connected")
        count = len(sub.messages)
        ha = paho.Client(CallbackAPIVersion.VERSION2, client_id="ha", protocol=paho.MQTTv311)
        ha.connect(broker.host, broker.port)
        ha.loop_start()
        ha.publish("homeassistant/status", "online", qos=1).wait_for_publish(5)
        ha.loop_stop()
        sub.wait_for(lambda ms: len([m for m in ms[count:] if m.topic.endswith("/config")]) >= 3,
                     what="discovery republished after homeassistant/status online")
        second.stop()
    finally:
        sub.close()
