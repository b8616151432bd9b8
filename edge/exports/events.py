"""`edge export events`: the MQTT stream of a device as a file, for sites without any network.

Someone visits the site, runs this (or copies the database and runs it elsewhere), and carries
the file to the central collector, whose `collector import FILE` feeds each line through the
same handler as a live MQTT message. So the lines are built by the very builders the daemon's
outbox uses (edge/publish/messages.py), with the same message ids, and an import is as
idempotent as a redelivery: importing a file twice, or a file overlapping what MQTT already
delivered, counts nothing twice.

The file is JSON Lines, one message a line: {"topic": "<prefix>/<device>/<topic>", "payload":
<the payload object, exactly as published>}. In this order:

1. one `info` line (the device's identity card: zone, cameras, deployments, versions);
2. one `events` line per event started in the period, oldest first: change `end` for a closed
   event, `update` for one still open (a later message for it supersedes this one), with the
   event's review and what it counts per species (`species_counts`);
3. per station-local day in the period, the `counts` summary and one `counts/<species>` per
   species of that day's `daily_tallies` (whole days only, summed over cameras; left out with
   a camera filter, since a single camera's numbers are not the device's day).

The file is written under a temporary name and renamed, so a half-written export (a full USB
stick) is never mistaken for a whole one.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from edge.publish.messages import MessageContext, counts_messages, event_message, info_message
from edge.store.counts import stored_counts, visits_on_day
from edge.store.outbox import OutboxMessage
from edge.store.queries import parse_bound
from edge.store.tables import has_table
from edge.store.times import format_utc
from edge.store.writer import tallies_for_day


@dataclass(frozen=True)
class ExportSummary:
    """What an export wrote (printed by the CLI)."""

    events: int
    open_events: int
    days: int
    lines: int


def context_from_database(conn: sqlite3.Connection, device_id: str | None = None, zone: str | None = None,
                          model_version: str | None = None,
                          scientific_names: dict[str, str] | None = None) -> MessageContext:
    """The MessageContext the daemon would publish with, from the database's own `meta`
    (station_id, timezone) where the configuration does not say."""
    meta = dict(conn.execute("SELECT key, value FROM meta WHERE key IN ('station_id', 'timezone')").fetchall())
    device = device_id or meta.get("station_id")
    if not device:
        raise ValueError("the database names no station (meta station_id): pass --config with [station] device_id")
    model = conn.execute("SELECT model_id FROM events WHERE model_id IS NOT NULL ORDER BY id DESC LIMIT 1").fetchone()
    return MessageContext(device_id=device, station_tz=zone or meta.get("timezone") or "UTC",
                          model_id=model[0] if model else None, model_version=model_version,
                          scientific_names=dict(scientific_names or {}))


def _rows(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> Iterator[dict[str, Any]]:
    cursor = conn.execute(sql, params)
    names = [d[0] for d in cursor.description]
    for row in cursor:
        yield dict(zip(names, row))


def export_messages(conn: sqlite3.Connection, ctx: MessageContext, *, since: str | None = None,
                    until: str | None = None, camera: str | None = None, cameras: list[Any] | None = None,
                    software_version: str, detector_id: str | None = None,
                    now: datetime | None = None) -> Iterator[OutboxMessage]:
    """The messages of the period, in file order (see the module docstring), read in one
    read transaction so that events and tallies agree with each other."""
    zone: ZoneInfo = ctx.station_tz  # type: ignore[assignment]  # MessageContext made it a ZoneInfo
    lower = parse_bound(since, zone, end=False) if since else None
    upper = parse_bound(until, zone, end=True) if until else None
    now = now or datetime.now(UTC)
    if cameras is None:
        cameras = [_Camera(name) for (name,) in conn.execute("SELECT DISTINCT camera FROM events ORDER BY camera")]
    yield info_message(ctx, cameras, software_version=software_version, detector_id=detector_id, now=now)
    where, params = ["1 = 1"], []
    if lower is not None:
        where.append("started_at >= ?")
        params.append(format_utc(lower.moment))
    if upper is not None:
        where.append("started_at < ?")
        params.append(format_utc(upper.moment))
    if camera:
        where.append("camera = ?")
        params.append(camera)
    # What each visit counts per species (schema 6; a database not yet migrated has no list).
    per_species = has_table(conn, "event_species")
    for event in _rows(conn, f"SELECT * FROM events WHERE {' AND '.join(where)} ORDER BY started_at, id",
                       tuple(params)):
        if per_species:
            event["species_counts"] = stored_counts(conn, int(event["id"]))
        yield event_message(event, "end" if event.get("state") == "closed" else "update", ctx)
    if camera:
        return
    day_where, day_params = ["1 = 1"], []
    if lower is not None:
        day_where.append("day >= ?")
        day_params.append(lower.day)
    if upper is not None:
        # An --until date includes its day; a date-time bound ends on the day it falls on.
        day_where.append("day <= ?")
        day_params.append(upper.day if upper.date_only else upper.moment.astimezone(zone).date().isoformat())
    days = [d for (d,) in conn.execute(
        f"SELECT DISTINCT day FROM daily_tallies WHERE {' AND '.join(day_where)} ORDER BY day", tuple(day_params))]
    for day in days:
        tallies = tallies_for_day(conn, day)
        if tallies:
            yield from counts_messages(tallies, day, ctx, now=now, visits=visits_on_day(conn, day))


@dataclass(frozen=True)
class _Camera:
    """A camera known only from the database (no configuration given): its name, no deployment."""

    name: str


def write_export(messages: Iterator[OutboxMessage], out: Path | TextIO, prefix: str, device_id: str) -> ExportSummary:
    """Write the lines to `out` (a path: atomically, via a temporary file in the same folder)."""
    if not isinstance(out, Path):
        return _write(messages, out, prefix, device_id)
    temporary = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            summary = _write(messages, handle, prefix, device_id)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, out)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return summary


def _write(messages: Iterator[OutboxMessage], handle: TextIO, prefix: str, device_id: str) -> ExportSummary:
    events = open_events = lines = 0
    days: set[str] = set()
    for message in messages:
        payload = json.loads(message.payload)
        handle.write(json.dumps({"topic": f"{prefix}/{device_id}/{message.topic}", "payload": payload},
                                ensure_ascii=False, separators=(",", ":")) + "\n")
        lines += 1
        if message.topic == "events":
            events += 1
            open_events += payload["change"] == "update"
        elif message.topic == "counts":
            days.add(payload["day"])
    return ExportSummary(events, open_events, len(days), lines)
