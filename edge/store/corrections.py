"""Clock corrections after the fact: a camera's stored times shifted, its visits and counts following.

An ecologist finds at a site visit that a camera's clock was wrong (reset to 2000-01-01 after a
battery change, an hour off since the last daylight-saving change, minutes of drift) and writes
down the camera's time and the true time. `edge clock correct` applies that to what is already
recorded, the way Timelapse's date correction does: every ok frame of the camera whose stored
capture time lies in [since, until) (the times as the wrong clock gave them) moves by the offset,
and in the same transaction:

- the frames' `time_source` gains `+corrected`, and the plausibility flags the wrong clock
  earned (`out-of-order`, `future`, `before-deployment`) are cleared;
- the camera's visits inside the range move with their frames (start, end, vote state) and are
  recounted per species (edge/store/counts.py), so the daily tallies' visits and individuals
  move to the right days; the frames tally moves frame by frame;
- the correction itself is recorded in `clock_corrections` (who, when, camera, range, offset,
  how many frames and visits, why), so a report can say what was changed.

A visit with frames on both sides of the range boundary is not split: the correction is refused
and names it (choose a boundary between visits: a clock reset separates them anyway). A moved
visit that lands within the independence interval of another visit of the camera is not merged;
it is listed in the result (and by the CLI) so that a person can decide. Nothing is written
when the correction is refused or `dry_run` is set.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from edge.store import clock_checks
from edge.store.counts import bump_tally, min_frames_of, recount
from edge.store.db import StoreError, connect, immediate, inserted_id, schema_version
from edge.store.tables import has_table
from edge.store.times import format_utc, local_day, parse_utc

CORRECTED = "+corrected"
# Flags a wrong clock earns (edge/store/clock_checks.py); a corrected time no longer has them.
CLOCK_FLAGS = frozenset(clock_checks.DOUBTFUL)


class CorrectionError(ValueError):
    """A correction that cannot be applied as asked (nothing was written)."""


@dataclass(frozen=True)
class Correction:
    camera: str
    since: datetime        # aware; the range in the camera's (wrong) times, as stored
    until: datetime        # exclusive
    offset: timedelta      # added to each stored time
    reviewer: str
    reason: str | None = None


@dataclass
class CorrectionResult:
    frames: int = 0
    events: list[str] = field(default_factory=list)        # uids of the visits moved
    near: list[tuple[str, str]] = field(default_factory=list)  # (moved uid, other uid) now within the interval
    days: set[str] = field(default_factory=set)
    correction_id: int | None = None


def offset_from_pair(camera_time: datetime, true_time: datetime) -> timedelta:
    """The offset a known (camera's time, true time) pair gives: what to add to the camera's clock."""
    if (camera_time.tzinfo is None) != (true_time.tzinfo is None):
        raise CorrectionError("the camera's time and the true time must both have an offset or neither")
    return true_time - camera_time


def _frame_names(conn: sqlite3.Connection, frame_id: int, birds: int | None, species: str | None) -> list[str]:
    """The names a frame counted in the frames tally (the store bumps one per name per frame)."""
    if birds is None:
        return [species] if species is not None else []
    return [row[0] for row in conn.execute(
        "SELECT DISTINCT species FROM detections WHERE frame_id = ? AND event_id IS NOT NULL AND species IS NOT NULL",
        (frame_id,))]


def _events_of(conn: sqlite3.Connection, ids: list[int]) -> list[dict[str, Any]]:
    if not ids:
        return []
    marks = ",".join("?" * len(ids))
    cursor = conn.execute(f"SELECT * FROM events WHERE id IN ({marks}) ORDER BY id", ids)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def correct(conn: sqlite3.Connection, correction: Correction, zone: ZoneInfo, *, independence_s: float,
            dry_run: bool = False, now: datetime | None = None, outbox: Any = None) -> CorrectionResult:
    """Apply (or with `dry_run`, only plan) a clock correction inside one BEGIN IMMEDIATE
    transaction on `conn`; raises CorrectionError (nothing written) when it cannot. With an
    `outbox` (edge.store.writer.OutboxSink: the daemon's OutboxWriter), each moved visit is queued
    again as an MQTT `events` message with its new times, so the fleet's database follows."""
    if correction.until <= correction.since:
        raise CorrectionError("--until must be after --since")
    if correction.offset == timedelta(0):
        raise CorrectionError("the offset is zero: nothing to correct")
    if not correction.reviewer.strip():
        raise CorrectionError("a correction must say who made it")
    since, until = format_utc(correction.since), format_utc(correction.until)
    shift = correction.offset
    result = CorrectionResult()
    with immediate(conn):
        frames = conn.execute(
            """SELECT id, captured_at, species, event_id, birds, time_source, time_flags FROM frames
               WHERE camera = ? AND status = 'ok' AND captured_at >= ? AND captured_at < ? ORDER BY captured_at, id""",
            (correction.camera, since, until)).fetchall()
        if not frames:
            raise CorrectionError(f"camera {correction.camera!r} has no recorded frame from {since} to {until} "
                                  "(the range is in the camera's own, wrong times, as `edge frames` shows them)")
        event_ids = sorted({int(f[3]) for f in frames if f[3] is not None})
        events = _events_of(conn, event_ids)
        straddling = [e["uid"] for e in events
                      if e["started_at"] < since or e["ended_at"] >= until or conn.execute(
                          """SELECT 1 FROM frames WHERE event_id = ? AND (captured_at < ? OR captured_at >= ?)
                             LIMIT 1""", (e["id"], since, until)).fetchone()]
        if straddling:
            raise CorrectionError(
                f"{len(straddling)} visit(s) have frames on both sides of the range and would be split: "
                + ", ".join(uid[:8] for uid in straddling[:5])
                + "; move --since/--until to a gap between visits")
        result.frames = len(frames)
        result.events = [e["uid"] for e in events]
        if dry_run:  # nothing was written: the transaction commits empty
            result.near = _near(conn, correction.camera, events, shift, independence_s, event_ids)
            return result
        # The frames tally, frame by frame, from the old day to the new.
        for frame_id, captured, species, _, birds, source, flags in frames:
            old, new = parse_utc(captured), parse_utc(captured) + shift
            old_day, new_day = local_day(old, zone), local_day(new, zone)
            if old_day != new_day:
                for name in _frame_names(conn, int(frame_id), birds, species):
                    bump_tally(conn, old_day, correction.camera, name, frames=-1)
                    bump_tally(conn, new_day, correction.camera, name, frames=1)
                result.days.update({old_day, new_day})
            kept = [f for f in (flags or "").split(",") if f and f not in CLOCK_FLAGS]
            conn.execute("UPDATE frames SET captured_at = ?, time_source = ?, time_flags = ? WHERE id = ?",
                         (format_utc(new), source if (source or "").endswith(CORRECTED) else f"{source}{CORRECTED}",
                          ",".join(kept) or None, frame_id))
        # The visits inside the range move whole and are recounted (tallies move by the difference).
        min_frames = min_frames_of(conn)
        for event in events:
            started, ended = parse_utc(event["started_at"]) + shift, parse_utc(event["ended_at"]) + shift
            # The visit's doubtful-time flags are its frames' again (the corrected ones have none).
            flags = clock_checks.merge(*(clock_checks.doubtful(clock_checks.parse(f)) for (f,) in conn.execute(
                "SELECT time_flags FROM frames WHERE event_id = ? AND time_flags IS NOT NULL", (event["id"],))))
            conn.execute("UPDATE events SET started_at = ?, ended_at = ?, time_flags = ? WHERE id = ?",
                         (format_utc(started), format_utc(ended), ",".join(flags) or None, event["id"]))
            for species, first in conn.execute("SELECT species, first_at FROM event_votes WHERE event_id = ?",
                                               (event["id"],)).fetchall():
                conn.execute("UPDATE event_votes SET first_at = ? WHERE event_id = ? AND species = ?",
                             (format_utc(parse_utc(first) + shift), event["id"], species))
            moved = recount(conn, {**event, "started_at": format_utc(started), "ended_at": format_utc(ended)},
                            zone, min_frames=min_frames)
            result.days.update(moved.days)
        result.near = _near(conn, correction.camera, events, shift, independence_s, event_ids)  # events hold the old times
        stamp = format_utc(now or datetime.now(UTC))
        if outbox is not None and events:
            import sqlite_utils

            from edge.store.writer import EventChange

            moved_rows = _events_of(conn, event_ids)
            # A new message id per correction (edge.publish.messages.event_message_id keys on reviewed_at).
            changes = [EventChange("end" if row["state"] == "closed" else "update", {**row, "reviewed_at": stamp})
                       for row in moved_rows]
            outbox.enqueue(sqlite_utils.Database(conn), changes, None, local_day(now or datetime.now(UTC),
                                                                                 zone), set())
        result.correction_id = inserted_id(conn.execute(
            """INSERT INTO clock_corrections (created_at, reviewer, camera, since, until, offset_s, frames, events,
                   reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (stamp, correction.reviewer.strip(), correction.camera, since, until, shift.total_seconds(),
             result.frames, len(events), correction.reason)))
    return result


def _near(conn: sqlite3.Connection, camera: str, events: list[dict[str, Any]], shift: timedelta,
          independence_s: float, moved_ids: list[int]) -> list[tuple[str, str]]:
    """(moved visit, another visit of the camera) pairs within the independence interval once
    moved: candidates a person may want to merge (never merged here)."""
    gap = timedelta(seconds=independence_s)
    found: list[tuple[str, str]] = []
    moved = set(moved_ids)
    for event in events:
        low = format_utc(parse_utc(event["started_at"]) + shift - gap)
        high = format_utc(parse_utc(event["ended_at"]) + shift + gap)
        for other_id, uid in conn.execute(
                "SELECT id, uid FROM events WHERE camera = ? AND started_at <= ? AND ended_at >= ?",
                (camera, high, low)):
            if int(other_id) not in moved:
                found.append((event["uid"], uid))
    return found


def history(conn: sqlite3.Connection, camera: str | None = None) -> list[dict[str, Any]]:
    """The corrections recorded, oldest first (`edge clock history`, the exports' timestampIssues)."""
    if not has_table(conn, "clock_corrections"):
        return []
    where, params = ("WHERE camera = ?", (camera,)) if camera else ("", ())
    cursor = conn.execute(f"SELECT * FROM clock_corrections {where} ORDER BY id", params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def open_for_correction(path: Path, busy_timeout_s: float = 30.0) -> sqlite3.Connection:
    """A writing connection to a database of the current schema (the daemon migrates; this never does)."""
    if not Path(path).exists():
        raise StoreError(f"{path}: database not found")
    import sqlite_utils

    from edge.store.schema import SCHEMA_VERSION  # schema.py creates this module's table

    conn = connect(Path(path), busy_timeout_s=busy_timeout_s)
    version = schema_version(sqlite_utils.Database(conn)) or 0
    if version != SCHEMA_VERSION:
        conn.close()
        raise StoreError(f"{path}: schema version {version}, corrections need {SCHEMA_VERSION}: "
                         + ("upgrade trailcam" if version > SCHEMA_VERSION else
                            "start the daemon once so that it migrates the database"))
    return conn


__all__ = ["CORRECTED", "Correction", "CorrectionError", "CorrectionResult", "correct", "history",
           "offset_from_pair", "open_for_correction"]
