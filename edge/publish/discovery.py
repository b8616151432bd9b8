"""Home Assistant MQTT discovery payloads for one trailcam device.

Home Assistant creates entities from retained JSON configs under
`<discovery_prefix>/<component>/<node_id>/<object_id>/config`. The unique ids are derived only
from the device id and the species label's topic segment, so they are stable across restarts,
reinstalls and model changes: Home Assistant keeps the entity (and its history) instead of
creating `sensor.last_species_2`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

from edge import __version__
from edge.publish.messages import COUNTS_TOPIC, EVENTS_TOPIC, snapshot_topic, species_topic, topic_segment

HEALTH_TOPIC = "health"  # edge.publish.mqtt publishes it directly (a state, not an outbox event)

AVAILABILITY_TEMPLATE = "{{ 'online' if value == 'online' else 'offline' }}"

# The last visit's species as people read it (edge.classify.names.display_name, in Jinja): the
# common name in the station's language, else a genus roll-up's label ("Turdus sp."), else the
# scientific name, else the label.
LAST_SPECIES_TEMPLATE = (
    "{% set j = value_json %}{{ j.common_name or (j.species if j.species and j.species.endswith(' sp.') else none)"
    " or j.scientific_name or j.species }}"
)


def node_id(device_id: str) -> str:
    return f"trailcam_{device_id.replace('-', '_')}"


def _device_block(device_id: str) -> dict[str, object]:
    return {
        "identifiers": [node_id(device_id)],
        "name": f"trailcam {device_id}",
        "manufacturer": "trailcam",
        "model": "trailcam edge",
        "sw_version": __version__,
    }


def _sensor(
    base_topic: str, device_id: str, object_id: str, name: str, state_topic: str, value_template: str, **extra: object
) -> dict[str, object]:
    node = node_id(device_id)
    config: dict[str, object] = {
        "name": name,
        "unique_id": f"{node}_{object_id}",
        "state_topic": state_topic,
        "value_template": value_template,
        "availability": [{"topic": f"{base_topic}/status", "value_template": AVAILABILITY_TEMPLATE}],
        "device": _device_block(device_id),
        "origin": {"name": "trailcam", "sw_version": __version__},
        "qos": 1,
    }
    config.update(extra)
    return config


def discovery_messages(
    discovery_prefix: str, base_topic: str, device_id: str, species: Iterable[str] = (), *, health: bool = False,
    cameras: Iterable[str] = (), display: Callable[[str], str] | None = None,
) -> list[tuple[str, str]]:
    """(topic, JSON payload) for the device's sensors: last species, today's visits and birds,
    each species (named by `display`, the label's name people read: "Mourning Dove visits
    today"; its unique id and topic stay keyed by the label); with `health`, a `problem` binary sensor (on while the daemon is paused, e.g.
    disk full); per camera in `cameras` (the detector route's), a camera entity showing the
    best crop of the camera's latest event (the retained `snapshot/<camera>` JPEG)."""
    configs = _device_sensors(base_topic, device_id)
    configs += [_species_sensor(base_topic, device_id, label, display) for label in sorted(set(species))]
    configs += [_camera_entity(base_topic, device_id, camera) for camera in sorted(set(cameras))]
    if health:
        configs.append(_problem_sensor(base_topic, device_id))
    return [_message(discovery_prefix, device_id, entity) for entity in configs]


def species_discovery_message(discovery_prefix: str, base_topic: str, device_id: str, label: str,
                              display: Callable[[str], str] | None = None) -> tuple[str, str]:
    """(topic, JSON payload) of one species' sensor, as discovery_messages has it: announced
    when the publisher learns a species that was not known at start."""
    return _message(discovery_prefix, device_id, _species_sensor(base_topic, device_id, label, display))


_Entity = tuple[str, str, dict[str, object]]  # component, object id, config


def _message(discovery_prefix: str, device_id: str, entity: _Entity) -> tuple[str, str]:
    component, object_id, config = entity
    return (f"{discovery_prefix}/{component}/{node_id(device_id)}/{object_id}/config",
            json.dumps(config, separators=(",", ":")))


def _device_sensors(base_topic: str, device_id: str) -> list[_Entity]:
    """Last species, today's visits and today's birds."""
    return [
        (
            "sensor",
            "last_species",
            _sensor(
                base_topic, device_id, "last_species", "Last species", f"{base_topic}/{EVENTS_TOPIC}",
                LAST_SPECIES_TEMPLATE,
                json_attributes_topic=f"{base_topic}/{EVENTS_TOPIC}",
                icon="mdi:bird",
            ),
        ),
        (
            "sensor",
            "events_today",
            _sensor(
                base_topic, device_id, "events_today", "Visits today", f"{base_topic}/{COUNTS_TOPIC}",
                "{{ value_json.total.events }}",
                json_attributes_topic=f"{base_topic}/{COUNTS_TOPIC}",
                json_attributes_template="{{ value_json.species | tojson }}",
                state_class="total_increasing",
                unit_of_measurement="visits",
                icon="mdi:counter",
            ),
        ),
        (
            "sensor",
            "birds_today",
            _sensor(
                base_topic, device_id, "birds_today", "Birds today", f"{base_topic}/{COUNTS_TOPIC}",
                # Each visit's most birds in one frame (MaxN), summed; 1 per visit without a detector.
                "{{ value_json.total.individuals }}",
                state_class="total_increasing",
                unit_of_measurement="birds",
                icon="mdi:bird",
            ),
        ),
    ]


def _species_sensor(base_topic: str, device_id: str, label: str, display: Callable[[str], str] | None) -> _Entity:
    """A species' visits today: named as people read it, keyed by the label's topic segment."""
    slug = topic_segment(label)
    return (
        "sensor",
        f"species_{slug}",
        _sensor(
            base_topic, device_id, f"species_{slug}", f"{display(label) if display else label} visits today",
            f"{base_topic}/{species_topic(label)}",
            "{{ value_json.events }}",
            json_attributes_topic=f"{base_topic}/{species_topic(label)}",
            state_class="total_increasing",
            unit_of_measurement="visits",
            icon="mdi:bird",
        ),
    )


def _camera_entity(base_topic: str, device_id: str, camera: str) -> _Entity:
    """A camera's last best crop (the retained `snapshot/<camera>` JPEG)."""
    slug = topic_segment(camera)
    config = _sensor(base_topic, device_id, f"snapshot_{slug}", f"{camera} last bird",
                     f"{base_topic}/{snapshot_topic(camera)}", "", icon="mdi:bird")
    # A camera entity reads raw image bytes from `topic`; it has no state or template.
    config["topic"] = config.pop("state_topic")
    config.pop("value_template")
    config.pop("qos")
    return ("camera", f"snapshot_{slug}", config)


def _problem_sensor(base_topic: str, device_id: str) -> _Entity:
    """On while the daemon is not running normally (paused, e.g. disk full): the `health` topic."""
    return (
        "binary_sensor",
        "problem",
        _sensor(
            base_topic, device_id, "problem", "Problem", f"{base_topic}/{HEALTH_TOPIC}",
            "{{ 'ON' if value_json.state != 'running' else 'OFF' }}",
            json_attributes_topic=f"{base_topic}/{HEALTH_TOPIC}",
            device_class="problem",
            entity_category="diagnostic",
        ),
    )
