"""One MQTT message (topic + payload bytes) → the row it means, or why it cannot be used.

Pure: no database, no clock unless handed one. The collector and `collector import` both go
through `parse`, so a message imported from a file and the same message from the broker
produce the same row and the same idempotency. The payloads are the devices' public contract
(edge/publish/messages.py, docs/mqtt.md); `info` is documented in docs/fleet.md.

Topics: `<prefix>/<device>/events`, `<prefix>/<device>/counts/<species>`,
`<prefix>/<device>/status`, `<prefix>/<device>/info`. An empty payload is a retained
message being cleared: nothing to store (`Ignored`). The `counts` summary, snapshots, health
and discovery topics are not subscribed; should one arrive it is ignored too, not rejected.

Why every field is checked against a bound here, before any database work (docs/fleet.md,
"Validation bounds"): one message must never stop a fleet. A value out of Python's, the
database's or an index's range (a time of year 1 that leaves datetime once converted to UTC,
an integer past 32 bits, a 3,000-character label past a btree row, a NUL byte PostgreSQL's
text refuses, a lone surrogate no encoder takes) would otherwise fail later, where it looks
like the database being down or crashes the collector, and an unacknowledged message comes
back after every restart. Whatever fails becomes a `Rejected` (its reason, the payload's size
and digest, its first `KEEP_PAYLOAD_BYTES`), which the collector stores once and acknowledges.
`parse` never raises.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from edge.store.times import format_utc
from fleet.schema import CHANGE_RANK, event_order_key

PAYLOAD_SCHEMA = 1  # the newest payload schema this collector understands (edge.publish.messages)
STATES = ("online", "offline", "stopped")
REVIEWS = ("confirmed", "corrected", "rejected")
_DEVICE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_ZONE = re.compile(r"[A-Za-z0-9_+\-/]{1,64}")  # IANA names (America/Argentina/Buenos_Aires, Etc/GMT+5, UTC)
# Control characters (NUL is refused by PostgreSQL's text) and lone surrogates (no UTF-8 for them).
_UNSTORABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_NOT_STORED = re.compile("[\x00\ud800-\udfff]")  # what neither engine stores in text
# A time exactly as the devices (edge.store.times.format_utc) write it: already the stored form.
_CANONICAL_UTC = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")

# The bounds (docs/fleet.md, "Validation bounds"). Each is far above what a device publishes and
# far below what a column, an index row (PostgreSQL btree: about 2,700 bytes) or memory allows.
MAX_PAYLOAD_BYTES = 256 * 1024  # an event with 100 species of 200-character names is about 70 KB
MAX_SPECIES = 100  # species in one event's `species_counts`: a visit holds a few
MAX_LABEL = 200  # characters of a species label or scientific name
MAX_NAME = 128  # characters of a camera, model id/version, software version, detector id
MAX_UID = 128  # characters of an event id (the device's uuid5: 36)
MAX_ID = 512  # characters of a message id (`uid:change:frames:reviewed:<time>`, `counts:...:<slug>`)
MAX_INT = 2**31 - 1  # counts: PostgreSQL `integer`
MAX_CAMERAS = 256  # names in the info's `cameras`, objects in its `deployments`
MAX_JSON_DEPTH = 8  # nesting inside a deployment object
MAX_JSON_TEXT = 1000  # characters of a string inside a deployment object
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)  # times: [EARLIEST, LATEST) in UTC
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
_EARLIEST_NAIVE, _LATEST_NAIVE = EARLIEST.replace(tzinfo=None), LATEST.replace(tzinfo=None)
KEEP_PAYLOAD_BYTES = 4096  # of a rejected payload, stored with its size and sha256
MAX_REASON = 500  # characters of a rejection reason
MAX_KEPT_TOPIC = 300  # characters of a rejected message's topic


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
    """A message that cannot be used: kept in rejected_messages with why (bounded: the payload's
    first KEEP_PAYLOAD_BYTES as text, with the whole payload's size and sha256)."""

    device: str | None  # known when the topic named one (it was still seen)
    topic: str
    payload: str
    reason: str
    size: int = 0  # bytes of the whole payload
    sha256: str = ""  # of the whole payload (the same bad message is stored once)


def rejected(device: str | None, topic: str, raw: bytes, reason: str) -> Rejected:
    """A `Rejected` whose every text is storable in either engine: the payload truncated to
    KEEP_PAYLOAD_BYTES and decoded leniently, NUL and lone surrogates replaced, the topic and the
    reason bounded. The size and digest are the whole payload's."""
    return Rejected(device, storable(topic, MAX_KEPT_TOPIC), storable(raw[:KEEP_PAYLOAD_BYTES].decode("utf-8", "replace")),
                    storable(reason, MAX_REASON), len(raw), hashlib.sha256(raw).hexdigest())


def storable(text: str, limit: int | None = None) -> str:
    """`text` (cut to `limit` characters) with what no engine stores (NUL, lone surrogates) replaced by U+FFFD."""
    text = text if limit is None else text[:limit]
    return _NOT_STORED.sub("\ufffd", text)


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
    """What `payload` on `topic` means for the central database. Never raises: anything wrong
    with the message is a `Rejected` with its reason."""
    if not topic.startswith(prefix + "/"):
        return Ignored(None, topic)
    levels = topic[len(prefix) + 1:].split("/")
    device = levels[0]
    if not _DEVICE.fullmatch(device):
        return rejected(None, topic, payload, f"device id {device[:80]!r} in the topic is not a valid device id")
    kind = levels[1:]
    if not payload:
        return Ignored(device, topic)
    try:
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise _Bad(f"payload of {len(payload)} bytes is larger than {MAX_PAYLOAD_BYTES}")
        if kind == ["events"]:
            return _event(device, _json(payload))
        if len(kind) == 2 and kind[0] == "counts":
            return _count(device, _json(payload))
        if kind == ["status"]:
            state = payload.decode("utf-8", "replace").strip()
            if state not in STATES:
                raise _Bad(f"status {state[:40]!r} is not one of {', '.join(STATES)}")
            return StatusRow(device, state)
        if kind == ["info"]:
            return _info(device, _json(payload))
    except _Bad as exc:
        return rejected(device, topic, payload, str(exc))
    except Exception as exc:  # noqa: BLE001 - a case no rule above foresaw still must not stop the stream
        return rejected(device, topic, payload, f"collector could not read it ({type(exc).__name__}: {exc})")
    return Ignored(device, topic)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


_DECODER = json.JSONDecoder(parse_constant=_no_constant)  # made once: json.loads(..., parse_constant=) makes one a call


def _json(payload: bytes) -> dict[str, Any]:
    try:
        # What json.loads does with bytes (the encoding detected, lone surrogates passed through
        # to be refused by the field checks), without a new decoder per message.
        value = _DECODER.decode(payload.decode(json.detect_encoding(payload), "surrogatepass"))
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError, NaN/Infinity, a 5,000-digit integer
        raise _Bad(f"payload is not JSON ({str(exc)[:200]})") from None
    except RecursionError:
        raise _Bad("payload is not JSON (nested too deeply)") from None
    if not isinstance(value, dict):
        raise _Bad("payload is not a JSON object")
    return value


def _common(device: str, data: dict[str, Any]) -> None:
    schema = data.get("schema")
    if not isinstance(schema, int) or isinstance(schema, bool):
        raise _Bad("field 'schema' is missing or not an integer")
    if schema > PAYLOAD_SCHEMA:
        raise _Bad(f"payload schema {schema} is newer than this collector's ({PAYLOAD_SCHEMA}): upgrade trailcam")
    if schema < 1:
        raise _Bad(f"payload schema {schema} is not a schema (1 or more)")
    claimed = data.get("device")
    if claimed is None:
        raise _Bad("field 'device' is missing")
    if claimed != device:
        shown = claimed[:80] if isinstance(claimed, str) else claimed
        raise _Bad(f"field 'device' {shown!r} differs from the topic's device {device!r}")


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


def _check_text(name: str, value: str, limit: int) -> str:
    if len(value) > limit:
        raise _Bad(f"field {name!r} is longer than {limit} characters ({len(value)})")
    bad = _UNSTORABLE.search(value)
    if bad:
        raise _Bad(f"field {name!r} holds a control character or lone surrogate (U+{ord(bad.group()):04X})")
    return value


def _text(data: dict[str, Any], name: str, limit: int) -> str:
    """A required, non-empty string of at most `limit` storable characters."""
    value = _check_text(name, _field(data, name), limit)
    if not value:
        raise _Bad(f"field {name!r} is empty")
    return value


def _optional_text(data: dict[str, Any], name: str, limit: int) -> str | None:
    value = _optional(data, name)
    return None if value is None else _check_text(name, value, limit)


def _zone(data: dict[str, Any]) -> str | None:
    value = _optional(data, "timezone")
    if value is not None and not _ZONE.fullmatch(value):
        raise _Bad(f"field 'timezone' {value[:80]!r} is not a time zone name")
    return value


def _moment(name: str, text: str) -> str:
    if _CANONICAL_UTC.fullmatch(text):  # the devices' own form (nearly every message): check, keep as is
        try:
            naive = datetime.fromisoformat(text[:-1])
        except ValueError:
            raise _Bad(f"field {name!r} is not an ISO 8601 time: {text[:40]!r}") from None
        if not _EARLIEST_NAIVE <= naive < _LATEST_NAIVE:
            raise _Bad(f"field {name!r} {text!r} is outside {EARLIEST.year} to {LATEST.year - 1} (UTC)")
        return text
    if len(text) > 40:
        raise _Bad(f"field {name!r} is not an ISO 8601 time: {text[:40]!r}...")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise _Bad(f"field {name!r} is not an ISO 8601 time: {text[:40]!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        in_range = EARLIEST <= moment < LATEST  # compares in UTC without converting (no overflow)
    except OverflowError:  # pragma: no cover - comparison of aware datetimes does not convert
        in_range = False
    if not in_range:
        raise _Bad(f"field {name!r} {text!r} is outside {EARLIEST.year} to {LATEST.year - 1} (UTC)")
    return format_utc(moment)


def _utc(data: dict[str, Any], name: str) -> str:
    return _moment(name, _field(data, name))


def _count_field(data: dict[str, Any], name: str) -> int:
    value = _field(data, name, int)
    return _count_value(name, value)


def _count_value(name: str, value: int) -> int:
    if value < 0:
        raise _Bad(f"field {name!r} is negative")
    if value > MAX_INT:
        raise _Bad(f"field {name!r} {value} is larger than {MAX_INT}")
    return value


def _optional_count(data: dict[str, Any], name: str) -> int | None:
    value = _optional(data, name, int)
    return None if value is None else _count_value(name, value)


def reviewed_at_of(message_id: str) -> str | None:
    """The review time an event message id carries (`...:reviewed:<ts>`), or None."""
    _, sep, at = message_id.partition(":reviewed:")
    return at if sep else None


def _event(device: str, data: dict[str, Any]) -> EventRow:
    _common(device, data)
    change = _field(data, "change")
    if change not in CHANGE_RANK:
        raise _Bad(f"field 'change' {change[:40]!r} is not one of new, update, end")
    message_id = _text(data, "id", MAX_ID)
    uid = _text(data, "event_id", MAX_UID)
    frame_count = _count_field(data, "frame_count")
    started, ended = _utc(data, "start"), _utc(data, "end")
    confidence = _optional(data, "confidence", (int, float))
    if confidence is not None and not (math.isfinite(confidence) and 0 <= confidence <= 1):
        raise _Bad(f"field 'confidence' {confidence!r} is not between 0 and 1")
    individuals = _optional_count(data, "individuals")
    _optional_count(data, "birds")
    species = _optional_text(data, "species", MAX_LABEL)
    scientific_name = _optional_text(data, "scientific_name", MAX_LABEL)
    review = _optional(data, "review")
    if review is not None and review not in REVIEWS:
        raise _Bad(f"field 'review' {review[:40]!r} is not one of {', '.join(REVIEWS)}")
    individuals = 1 if individuals is None else individuals
    if data.get("species_counts") is not None:
        per_species = _species_counts(data["species_counts"])
    else:  # a device before per-species counts: the visit counts its species once
        per_species = (() if species is None else
                       (SpeciesCountRow(species, scientific_name, individuals, frame_count),))
    reviewed_at = reviewed_at_of(message_id)
    if reviewed_at is not None:
        try:
            reviewed_at = _moment("t", reviewed_at)
        except _Bad:
            raise _Bad(f"field 'id' {message_id[:80]!r}: the review time is not an ISO 8601 time "
                       f"from {EARLIEST.year} to {LATEST.year - 1}") from None
    return EventRow(
        device=device,
        uid=uid,
        camera=_text(data, "camera", MAX_NAME),
        species=species,
        scientific_name=scientific_name,
        confidence=None if confidence is None else float(confidence),
        started_at=started,
        ended_at=ended,
        frame_count=frame_count,
        individuals=individuals,
        review=review,
        model_species=_optional_text(data, "model_species", MAX_LABEL),
        model_id=_optional_text(data, "model_id", MAX_NAME),
        model_version=_optional_text(data, "model_version", MAX_NAME),
        timezone=_zone(data),
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
    _check_text("species", species, MAX_LABEL)
    scientific = _optional_text(item, "scientific_name", MAX_LABEL)
    return SpeciesCountRow(species, scientific, _count_field(item, "individuals"), _count_field(item, "frames"))


def _count(device: str, data: dict[str, Any]) -> CountRow:
    _common(device, data)
    day = _field(data, "day")
    if not _DAY.fullmatch(day):
        raise _Bad(f"field 'day' {day[:20]!r} is not YYYY-MM-DD")
    try:
        real_day = date.fromisoformat(day)
    except ValueError:
        raise _Bad(f"field 'day' {day!r} is not a date of the calendar") from None
    if not EARLIEST.date() <= real_day < LATEST.date():
        raise _Bad(f"field 'day' {day!r} is outside {EARLIEST.year} to {LATEST.year - 1}")
    return CountRow(
        device=device,
        day=day,
        species=_text(data, "species", MAX_LABEL),
        scientific_name=_optional_text(data, "scientific_name", MAX_LABEL),
        events=_count_field(data, "events"),
        frames=_count_field(data, "frames"),
        individuals=_count_field(data, "individuals"),
        timezone=_zone(data),
        updated_at=_utc(data, "updated_at"),
        message_id=_text(data, "id", MAX_ID),
    )


def _info(device: str, data: dict[str, Any]) -> InfoRow:
    _common(device, data)
    cameras = data.get("cameras") or []
    if not isinstance(cameras, list) or not all(isinstance(c, str) for c in cameras):
        raise _Bad("field 'cameras' is not a list of names")
    if len(cameras) > MAX_CAMERAS:
        raise _Bad(f"field 'cameras' lists {len(cameras)} cameras (at most {MAX_CAMERAS})")
    for camera in cameras:
        _check_text("cameras", camera, MAX_NAME)
    deployments = data.get("deployments") or []
    if not isinstance(deployments, list):
        raise _Bad("field 'deployments' is not a list")
    if len(deployments) > MAX_CAMERAS:
        raise _Bad(f"field 'deployments' lists {len(deployments)} deployments (at most {MAX_CAMERAS})")
    for deployment in deployments:
        if not isinstance(deployment, dict):
            raise _Bad("field 'deployments' holds something that is not an object")
        _check_json("deployments", deployment, 1)
    return InfoRow(
        device=device,
        software_version=_optional_text(data, "software_version", MAX_NAME),
        model_id=_optional_text(data, "model_id", MAX_NAME),
        model_version=_optional_text(data, "model_version", MAX_NAME),
        detector_id=_optional_text(data, "detector_id", MAX_NAME),
        timezone=_zone(data),
        cameras=cameras,
        deployments=deployments,
        published_at=_utc(data, "published_at"),
    )


def _check_json(name: str, value: Any, depth: int) -> None:
    """A JSON value stored as jsonb/text as it came: bounded depth, storable strings (jsonb
    refuses \\u0000), numbers jsonb takes."""
    if isinstance(value, (dict, list)) and depth > MAX_JSON_DEPTH:
        raise _Bad(f"field {name!r} is nested deeper than {MAX_JSON_DEPTH}")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_text(name, key, MAX_JSON_TEXT)
            _check_json(name, item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_json(name, item, depth + 1)
    elif isinstance(value, str):
        _check_text(name, value, MAX_JSON_TEXT)
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**63 - 1:
        raise _Bad(f"field {name!r} holds an integer larger than 64 bits")
