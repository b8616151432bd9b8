"""One MQTT message (topic + payload bytes) → the row it means, or why it cannot be used.

Pure: no database, no clock unless handed one. The collector and `collector import` both go
through `parse`, so a message imported from a file and the same message from the broker
produce the same row and the same idempotency. The payloads are the devices' public contract
(edge/publish/messages.py, docs/mqtt.md); `info` is documented in docs/fleet.md.

Topics: `<prefix>/<device>/events`, `<prefix>/<device>/counts/<species>`,
`<prefix>/<device>/status`, `<prefix>/<device>/info`. An empty payload is a retained
message being cleared: nothing to store (`Ignored`). The `counts` summary, snapshots, health
and discovery topics are not subscribed; should one arrive it is ignored too, not rejected.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from edge.fleet.schema import CHANGE_RANK, event_order_key
from edge.store.times import format_utc

PAYLOAD_SCHEMA = 1  # the newest payload schema this collector understands (edge.publish.messages)
STATES = ("online", "offline", "stopped")
_DEVICE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
MAX_SPECIES = 100  # species in one event's `species_counts`: a visit holds a few
MAX_LABEL = 200  # characters of a species label or scientific name in `species_counts`


@dataclass(frozen=True)
class SpeciesCountRow:
    """One species an event counts (the payload's `species_counts` item): its MaxN and frames."""

    species: str
    scientific_name: str | None
    individuals: int
    frames: int


@dataclass(frozen=True)
class EventRow:
    device: str
    uid: str
    camera: str
    species: str | None
    scientific_name: str | None
    confidence: float | None
    started_at: str
    ended_at: str
    frame_count: int
    individuals: int
    review: str | None
    model_species: str | None
    model_id: str | None
    model_version: str | None
    timezone: str | None
    change: str
    message_id: str
    order_key: str
    # Every species the event counts (`event_species`); from an older device without
    # `species_counts`: (species, individuals) when the event counts at all.
    species_counts: tuple[SpeciesCountRow, ...] = ()


@dataclass(frozen=True)
class CountRow:
    device: str
    day: str
    species: str
    scientific_name: str | None
    events: int
    frames: int
    individuals: int
    timezone: str | None
    updated_at: str
    message_id: str


@dataclass(frozen=True)
class StatusRow:
    device: str
    state: str


@dataclass(frozen=True)
class InfoRow:
    device: str
    software_version: str | None
    model_id: str | None
    model_version: str | None
    detector_id: str | None
    timezone: str | None
    cameras: list[str]
    deployments: list[Any]
    published_at: str


@dataclass(frozen=True)
class Rejected:
    device: str | None  # known when the topic named one (it was still seen)
    topic: str
    payload: str
    reason: str


@dataclass(frozen=True)
class Ignored:
    device: str | None
    topic: str


Parsed = EventRow | CountRow | StatusRow | InfoRow | Rejected | Ignored


class _Bad(Exception):
    pass


def subscriptions(prefix: str, group: str | None = None) -> list[str]:
    """The topic filters the collector subscribes to; `$share/<group>/...` with a group."""
    filters = [f"{prefix}/+/events", f"{prefix}/+/counts/+", f"{prefix}/+/status", f"{prefix}/+/info"]
    return [f"$share/{group}/{f}" for f in filters] if group else filters


def parse(topic: str, payload: bytes, prefix: str = "trailcam") -> Parsed:
    """What `payload` on `topic` means for the central database."""
    text = payload.decode("utf-8", "replace")
    if not topic.startswith(prefix + "/"):
        return Ignored(None, topic)
    levels = topic[len(prefix) + 1:].split("/")
    device = levels[0]
    if not _DEVICE.fullmatch(device):
        return Rejected(None, topic, text, f"device id {device!r} in the topic is not a valid device id")
    kind = levels[1:]
    if not payload:
        return Ignored(device, topic)
    try:
        if kind == ["events"]:
            return _event(device, _json(payload))
        if len(kind) == 2 and kind[0] == "counts":
            return _count(device, _json(payload))
        if kind == ["status"]:
            state = text.strip()
            if state not in STATES:
                raise _Bad(f"status {state[:40]!r} is not one of {', '.join(STATES)}")
            return StatusRow(device, state)
        if kind == ["info"]:
            return _info(device, _json(payload))
    except _Bad as exc:
        return Rejected(device, topic, text, str(exc))
    return Ignored(device, topic)


def _json(payload: bytes) -> dict[str, Any]:
    try:
        value = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _Bad(f"payload is not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise _Bad("payload is not a JSON object")
    return value


def _common(device: str, data: dict[str, Any]) -> None:
    schema = data.get("schema")
    if not isinstance(schema, int) or isinstance(schema, bool):
        raise _Bad("field 'schema' is missing or not an integer")
    if schema > PAYLOAD_SCHEMA:
        raise _Bad(f"payload schema {schema} is newer than this collector's ({PAYLOAD_SCHEMA}): upgrade trailcam")
    if data.get("device") is not None and data.get("device") != device:
        raise _Bad(f"field 'device' {data.get('device')!r} differs from the topic's device {device!r}")


def _field(data: dict[str, Any], name: str, kind: type | tuple[type, ...] = str) -> Any:
    if name not in data or data[name] is None:
        raise _Bad(f"field {name!r} is missing")
    value = data[name]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise _Bad(f"field {name!r} has the wrong type ({type(value).__name__})")
    return value


def _optional(data: dict[str, Any], name: str, kind: type | tuple[type, ...] = str) -> Any:
    value = data.get(name)
    if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
        raise _Bad(f"field {name!r} has the wrong type ({type(value).__name__})")
    return value


def _utc(data: dict[str, Any], name: str) -> str:
    text = _field(data, name)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise _Bad(f"field {name!r} is not an ISO 8601 time: {text[:40]!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return format_utc(moment)


def _count_field(data: dict[str, Any], name: str) -> int:
    value = _field(data, name, int)
    if value < 0:
        raise _Bad(f"field {name!r} is negative")
    return value


def reviewed_at_of(message_id: str) -> str | None:
    """The review time an event message id carries (`...:reviewed:<ts>`), or None."""
    _, sep, at = message_id.partition(":reviewed:")
    return at if sep else None


def _event(device: str, data: dict[str, Any]) -> EventRow:
    _common(device, data)
    change = _field(data, "change")
    if change not in CHANGE_RANK:
        raise _Bad(f"field 'change' {change!r} is not one of new, update, end")
    message_id = _field(data, "id")
    uid = _field(data, "event_id")
    if not uid:
        raise _Bad("field 'event_id' is empty")
    frame_count = _count_field(data, "frame_count")
    started, ended = _utc(data, "start"), _utc(data, "end")
    confidence = _optional(data, "confidence", (int, float))
    individuals = _optional(data, "individuals", int)
    if individuals is not None and individuals < 0:
        raise _Bad("field 'individuals' is negative")
    birds = _optional(data, "birds", int)
    if birds is not None and birds < 0:
        raise _Bad("field 'birds' is negative")
    species = _optional(data, "species")
    scientific_name = _optional(data, "scientific_name")
    individuals = 1 if individuals is None else individuals
    if data.get("species_counts") is not None:
        per_species = _species_counts(data["species_counts"])
    else:  # a device before per-species counts: the visit counts its species once
        per_species = (() if species is None else
                       (SpeciesCountRow(species, scientific_name, individuals, frame_count),))
    reviewed_at = reviewed_at_of(message_id)
    if reviewed_at is not None:
        try:
            reviewed_at = _utc({"t": reviewed_at}, "t")
        except _Bad:
            raise _Bad(f"field 'id' {message_id[:80]!r}: the review time is not an ISO 8601 time") from None
    return EventRow(
        device=device,
        uid=uid,
        camera=_field(data, "camera"),
        species=species,
        scientific_name=scientific_name,
        confidence=None if confidence is None else float(confidence),
        started_at=started,
        ended_at=ended,
        frame_count=frame_count,
        individuals=individuals,
        review=_optional(data, "review"),
        model_species=_optional(data, "model_species"),
        model_id=_optional(data, "model_id"),
        model_version=_optional(data, "model_version"),
        timezone=_optional(data, "timezone"),
        change=change,
        message_id=message_id,
        order_key=event_order_key(change, frame_count, reviewed_at),
        species_counts=per_species,
    )


def _species_counts(value: Any) -> tuple[SpeciesCountRow, ...]:
    """The payload's `species_counts`: a list of {species, scientific_name, individuals, frames},
    each species once."""
    if not isinstance(value, list):
        raise _Bad("field 'species_counts' is not a list")
    if len(value) > MAX_SPECIES:
        raise _Bad(f"field 'species_counts' lists {len(value)} species (at most {MAX_SPECIES})")
    rows: list[SpeciesCountRow] = []
    for n, item in enumerate(value):
        try:
            row = _species_count(item)
        except _Bad as exc:
            raise _Bad(f"species_counts[{n}]: {exc}") from None
        if any(seen.species == row.species for seen in rows):
            raise _Bad(f"field 'species_counts' lists {row.species[:40]!r} twice")
        rows.append(row)
    return tuple(rows)


def _species_count(item: Any) -> SpeciesCountRow:
    if not isinstance(item, dict):
        raise _Bad("not an object")
    species = _field(item, "species")
    if not species or len(species) > MAX_LABEL:
        raise _Bad(f"field 'species' is empty or longer than {MAX_LABEL} characters")
    scientific = _optional(item, "scientific_name")
    if scientific is not None and len(scientific) > MAX_LABEL:
        raise _Bad(f"field 'scientific_name' is longer than {MAX_LABEL} characters")
    return SpeciesCountRow(species, scientific, _count_field(item, "individuals"), _count_field(item, "frames"))


def _count(device: str, data: dict[str, Any]) -> CountRow:
    _common(device, data)
    day = _field(data, "day")
    if not _DAY.fullmatch(day):
        raise _Bad(f"field 'day' {day[:20]!r} is not YYYY-MM-DD")
    species = _field(data, "species")
    if not isinstance(species, str):
        raise _Bad("field 'species' is not a label")
    return CountRow(
        device=device,
        day=day,
        species=species,
        scientific_name=_optional(data, "scientific_name"),
        events=_count_field(data, "events"),
        frames=_count_field(data, "frames"),
        individuals=_count_field(data, "individuals"),
        timezone=_optional(data, "timezone"),
        updated_at=_utc(data, "updated_at"),
        message_id=_field(data, "id"),
    )


def _info(device: str, data: dict[str, Any]) -> InfoRow:
    _common(device, data)
    cameras = data.get("cameras") or []
    if not isinstance(cameras, list) or not all(isinstance(c, str) for c in cameras):
        raise _Bad("field 'cameras' is not a list of names")
    deployments = data.get("deployments") or []
    if not isinstance(deployments, list):
        raise _Bad("field 'deployments' is not a list")
    return InfoRow(
        device=device,
        software_version=_optional(data, "software_version"),
        model_id=_optional(data, "model_id"),
        model_version=_optional(data, "model_version"),
        detector_id=_optional(data, "detector_id"),
        timezone=_optional(data, "timezone"),
        cameras=cameras,
        deployments=deployments,
        published_at=_utc(data, "published_at"),
    )
