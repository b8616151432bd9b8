"""MQTT payload builders: what the outside world sees of an event or a day's tallies.

The store calls these inside its per-frame transaction and hands the result to
`edge.store.outbox.enqueue`, so a message exists exactly when the frame result that caused it is
committed. The builders are pure (no I/O, no clock unless one is passed) because the payloads
are a public contract documented in README.md, section "MQTT": tests pin every field.

Topics here are relative to `<prefix>/<device>/`; the publisher adds that prefix, so a renamed
prefix needs no rewrite of queued rows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from edge.classify.names import display_name
from edge.store.counts import headline
from edge.store.outbox import OutboxMessage
from edge.store.times import format_utc, parse_utc

PAYLOAD_SCHEMA = 1
"""Bumped when a payload field changes meaning or disappears (adding fields does not bump it)."""

EVENTS_TOPIC = "events"
COUNTS_TOPIC = "counts"
SNAPSHOT_TOPIC = "snapshot"  # snapshot/<camera>: retained JPEG of the camera's latest event's best crop

Change = Literal["new", "update", "end"]
CHANGES: tuple[str, ...] = ("new", "update", "end")


@dataclass(frozen=True)
class MessageContext:
    """What every payload needs besides the event or tallies themselves.

    `scientific_names` maps a model label to its scientific name (from the bundle's label map
    or the AIY labelmap.csv); a label without an entry is published with `scientific_name: null`.
    `common_names` maps a label to its common name in the station's language ([station]
    language, edge.classify.names.Namer.common); none gives `common_name: null`, so a context
    made before names existed publishes as before. A callable is accepted for either, for
    lookups that are not a plain dict.
    """

    device_id: str
    station_tz: ZoneInfo | str = "UTC"
    model_id: str | None = None
    model_version: str | None = None
    scientific_names: Mapping[str, str] | Callable[[str], str | None] = field(default_factory=dict)
    common_names: Mapping[str, str] | Callable[[str], str | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.station_tz, str):
            object.__setattr__(self, "station_tz", ZoneInfo(self.station_tz))
        if not _DEVICE_ID.fullmatch(self.device_id or ""):
            raise ValueError(
                f"device id {self.device_id!r} is not a safe MQTT topic level "
                "(1-64 letters, digits, '-' or '_')"
            )

    @property
    def zone(self) -> ZoneInfo:
        """The station's zone, typed: __post_init__ has made `station_tz` a ZoneInfo already, the
        field keeps `| str` only so that callers may pass a name."""
        zone = self.station_tz
        return zone if isinstance(zone, ZoneInfo) else ZoneInfo(zone)

    def scientific_name(self, label: str | None) -> str | None:
        if label is None:
            return None
        return _look_up(self.scientific_names, label)

    def common_name(self, label: str | None) -> str | None:
        """The label's common name in the station's language, or None."""
        if label is None:
            return None
        return _look_up(self.common_names, label)

    def display_name(self, label: str) -> str:
        """The name a person reads (edge.classify.names.display_name): Home Assistant's entity
        names; topics and payloads keep the label."""
        return display_name(label, self.scientific_name(label), self.common_name(label))


def _look_up(lookup: Mapping[str, str] | Callable[[str], str | None], label: str) -> str | None:
    return lookup(label) if callable(lookup) else lookup.get(label)


_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_DEVICE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # as [station] device_id validates it


def topic_segment(label: str) -> str:
    """A label as one MQTT topic level: lower case, runs of anything but [a-z0-9_-] → `_`.

    Labels can hold spaces, apostrophes, slashes or `+`/`#` (wildcards in MQTT), none of which
    may appear raw in a topic level. The exact label stays in the payload.
    """
    slug = _UNSAFE.sub("_", label.strip()).strip("_").lower()
    return slug or "_"


def _format_offset(dt: datetime) -> str:
    offset = dt.utcoffset()
    assert offset is not None
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    minutes = abs(minutes)
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _local(dt: datetime, station_tz: ZoneInfo) -> dict[str, str]:
    local = dt.astimezone(station_tz)
    return {"local": local.isoformat(timespec="milliseconds"), "offset": _format_offset(local)}


def _dumps(payload: Mapping[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def event_message_id(uid: str, change: str, frame_count: int, reviewed_at: str | None = None) -> str:
    """The dedupe key: one event change is published once per (uid, change, frame count), and
    once per review change of the event (its time)."""
    return f"{uid}:{change}:{frame_count}" + (f":reviewed:{reviewed_at}" if reviewed_at else "")


def event_message(event: Mapping[str, Any], change: Change, ctx: MessageContext) -> OutboxMessage:
    """One `events` message for a change of one event (a row of the `events` table).

    `event` needs uid, camera, species, confidence, started_at, ended_at, frame_count;
    model_id falls back to the context's. The payload repeats start/end in the station's local
    time with its UTC offset, because consumers display local time and DST shifts the offset.
    """
    if change not in CHANGES:
        raise ValueError(f"event change must be one of {CHANGES}, got {change!r}")
    try:
        uid = str(event["uid"])
        started = parse_utc(event["started_at"])
        ended = parse_utc(event.get("ended_at") or event["started_at"])
        frame_count = int(event["frame_count"])
        camera = str(event["camera"])
    except KeyError as exc:
        raise ValueError(f"event is missing the field {exc.args[0]!r}") from None
    # What the event counts as: the machine's vote, or a person's review of it (edge/store/reviews.py).
    review = event.get("review_state")
    machine_species = event.get("species")
    # Per species, what the visit counts (edge/store/events.py): MaxN of each species.
    per_species = [row for row in event.get("species_counts") or () if row.get("individuals")]
    if review == "rejected":
        species = None
    else:
        species = headline(event.get("reviewed_species") or machine_species, per_species)
    if "species_counts" in event:
        headline_n = next((int(r["individuals"]) for r in per_species if r["species"] == species), 0)
    else:  # an event row without its counts (a caller outside the store): the event's own number
        headline_n = int(event.get("reviewed_individuals") or event.get("individuals") or 1)
    confidence = event.get("confidence")
    start_local = _local(started, ctx.zone)
    end_local = _local(ended, ctx.zone)
    payload = {
        "schema": PAYLOAD_SCHEMA,
        "id": event_message_id(uid, change, frame_count, event.get("reviewed_at")),
        "event_id": uid,
        "change": change,
        "device": ctx.device_id,
        "camera": camera,
        "species": species,
        "scientific_name": ctx.scientific_name(species),
        "common_name": ctx.common_name(species),
        "confidence": None if confidence is None else round(float(confidence), 4),
        "start": format_utc(started),
        "end": format_utc(ended),
        "start_local": start_local["local"],
        "end_local": end_local["local"],
        "utc_offset": end_local["offset"],
        "timezone": ctx.zone.key,
        "duration_s": round((ended - started).total_seconds(), 3),
        "frame_count": frame_count,
        # The most birds of `species` in any one frame of the visit (its MaxN): 1 when frames are
        # classified whole. `species_counts` lists every species the visit counts, each with its
        # own MaxN (the headline first when it has the most); `birds`: the most birds of any
        # species in one frame.
        "individuals": headline_n,
        "species_counts": [
            {"species": row["species"], "scientific_name": ctx.scientific_name(row["species"]),
             "common_name": ctx.common_name(row["species"]), "individuals": int(row["individuals"]), "frames": int(row["frames"])}
            for row in per_species],
        "birds": int(event.get("individuals") or 1),
        # None, or "confirmed" | "corrected" | "rejected" (not a bird: the visit counts for nothing).
        "review": review,
        "model_species": machine_species,
        "model_id": event.get("model_id") or ctx.model_id,
        "model_version": ctx.model_version,
    }
    if "species_counts" not in event:
        # An event row without its counts (a caller outside the store, a database older than
        # schema 6): no list rather than an empty one, which would say the visit counts nothing.
        # A consumer then counts (species, individuals), as from a device before the list.
        del payload["species_counts"]
    return OutboxMessage(EVENTS_TOPIC, _dumps(payload), qos=1, retain=False, kind="event")


def snapshot_topic(camera: str) -> str:
    """Relative topic of one camera's retained best-crop JPEG (raw bytes, as Frigate publishes
    its snapshots: a Home Assistant MQTT camera shows it as it is)."""
    return f"{SNAPSHOT_TOPIC}/{topic_segment(camera)}"


def species_topic(label: str) -> str:
    """Relative topic of one species' retained daily tally."""
    return f"{COUNTS_TOPIC}/{topic_segment(label)}"


def counts_messages(
    tallies: Mapping[str, Mapping[str, int]],
    day: str,
    ctx: MessageContext,
    *,
    changed: Iterable[str] | None = None,
    now: datetime | None = None,
    visits: int | None = None,
) -> list[OutboxMessage]:
    """Retained snapshots of one station-local day: `counts` plus `counts/<species>` per species.

    `tallies` maps species label → {"events": n, "frames": m, "individuals": k}, summed over
    cameras (individuals: the day's visits' MaxN summed; absent = one per event), and must be
    the full day so far (a snapshot, not a delta): retained messages replace each other, and
    the outbox may coalesce queued snapshots of one topic down to the newest.
    `changed` limits the per-species messages to the species a frame touched (the summary
    always goes out): a frame changes one species, and republishing all of them would multiply
    the outbox traffic by the number of species seen today.
    `now` stamps `updated_at` (defaults to the clock) so tests can pin payloads.
    `visits`: the day's visits, each once (edge.store.counts.visits_on_day); a visit that counts
    two species is one visit in `total.events` but one for each species in `species`. None: the
    sum over species (a database older than schema 6, where a visit had one species).
    """
    updated_at = format_utc(now or datetime.now(UTC))
    species_rows: dict[str, dict[str, Any]] = {}
    total_events = total_frames = total_individuals = 0
    for label in sorted(tallies):
        counts = tallies[label]
        events = int(counts.get("events", 0))
        frames = int(counts.get("frames", 0))
        individuals = int(counts.get("individuals", events))
        total_events += events
        total_frames += frames
        total_individuals += individuals
        species_rows[label] = {
            "events": events,
            "frames": frames,
            "individuals": individuals,
            "scientific_name": ctx.scientific_name(label),
            "common_name": ctx.common_name(label),
        }
    snapshot_id = f"counts:{day}:{total_events}:{total_frames}"
    summary = {
        "schema": PAYLOAD_SCHEMA,
        "id": snapshot_id,
        "device": ctx.device_id,
        "day": day,
        "timezone": ctx.zone.key,
        "updated_at": updated_at,
        "total": {"events": total_events if visits is None else int(visits), "frames": total_frames,
                  "individuals": total_individuals},
        "species": species_rows,
    }
    messages = [OutboxMessage(COUNTS_TOPIC, _dumps(summary), qos=1, retain=True, kind="counts")]
    wanted = None if changed is None else set(changed)
    for label, row in species_rows.items():
        if wanted is not None and label not in wanted:
            continue
        per_species = {
            "schema": PAYLOAD_SCHEMA,
            "id": f"{snapshot_id}:{topic_segment(label)}",
            "device": ctx.device_id,
            "day": day,
            "timezone": ctx.zone.key,
            "updated_at": updated_at,
            "species": label,
            "scientific_name": row["scientific_name"],
            "common_name": row["common_name"],
            "events": row["events"],
            "frames": row["frames"],
            "individuals": row["individuals"],
        }
        messages.append(
            OutboxMessage(species_topic(label), _dumps(per_species), qos=1, retain=True, kind="counts")
        )
    return messages


INFO_TOPIC = "info"
"""Retained: what this device is (software, model, detector, zone, cameras and their deployments)."""

DEPLOYMENT_FIELDS: tuple[str, ...] = ("latitude", "longitude", "location_name", "start", "end")


def _moment(value: Any) -> str | None:
    """A configured deployment start/end as text: a date (`2026-05-01`) or a date-time as
    configured (local to the station when it carries no offset)."""
    if value is None:
        return None
    isoformat = getattr(value, "isoformat", None)
    return isoformat() if callable(isoformat) else str(value)


def deployments(cameras: Iterable[Any], device_id: str) -> list[dict[str, Any]]:
    """One entry per camera that has a `[cameras.deployment]` table: camera, deployment_id
    (the configured id, else `<device_id>-<camera>` as the ecology exports name it),
    latitude, longitude, location_name, start, end. Cameras without one are left out; read
    with getattr so a configuration model without deployments yields an empty list."""
    entries: list[dict[str, Any]] = []
    for camera in cameras:
        deployment = getattr(camera, "deployment", None)
        if deployment is None:
            continue
        entry: dict[str, Any] = {"camera": str(camera.name),
                                 "deployment_id": getattr(deployment, "id", None) or f"{device_id}-{camera.name}"}
        for name in DEPLOYMENT_FIELDS:
            value = getattr(deployment, name, None)
            entry[name] = _moment(value) if name in ("start", "end") else value
        entries.append(entry)
    return entries


def info_message(ctx: MessageContext, cameras: Iterable[Any] = (), *, software_version: str,
                 detector_id: str | None = None, now: datetime | None = None) -> OutboxMessage:
    """The retained `info` message (QoS 1): the device's identity card, published on every
    connect so that a central collector learns versions, zone and deployments without asking,
    and a broker that lost its retained store gets it back at the next reconnect.

    `cameras` are `[[cameras]]` tables (name, optional deployment); `now` stamps published_at."""
    camera_list = list(cameras)
    payload = {
        "schema": PAYLOAD_SCHEMA,
        "device": ctx.device_id,
        "software_version": software_version,
        "model_id": ctx.model_id,
        "model_version": ctx.model_version,
        "detector_id": detector_id,
        "timezone": ctx.zone.key,
        "cameras": [str(camera.name) for camera in camera_list],
        "deployments": deployments(camera_list, ctx.device_id),
        "published_at": format_utc(now or datetime.now(UTC)),
    }
    # Published directly, never queued; were it queued, it is a retained snapshot that the next
    # one supersedes, which is what the outbox's `counts` kind means (coalescible).
    return OutboxMessage(INFO_TOPIC, _dumps(payload), qos=1, retain=True, kind="counts")
