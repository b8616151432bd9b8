"""The read queries behind the pages, each on an index (never a scan of `frames`).

| query | served by (EXPLAIN QUERY PLAN on schema 4) |
|---|---|
| today's counts, per-day bars | `daily_tallies` primary key (day, camera, species): a day or a day range |
| latest events | `events_started` (started_at): newest first |
| heatmap, hour-of-day | `hourly_visits` primary key (day, species): the UTC days of a period, 24 hour columns each; `events_started` for a half-hour zone or a database without it |
| events list | `events_camera_started` with a camera, else `events_started` newest first (filters on the walk) |
| an event's frames | `frames_event` (event_id) |
| a frame's detections | detections UNIQUE (frame_id, rank) |
| the review queue | `events_review_queue` (review_state, confidence), edge.store.reviews.review_queue |
| species and camera names for the filters | a scan of `daily_tallies` (one row per day, camera and species: small) |

A database of schema 3 (before reviews) is read as it is: nothing reviewed.

Counted species of an event = NULL when its review rejected it, else the reviewed species or the
machine's; counted individuals = the reviewed number or the machine's (docs/web.md).
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from edge.store import folders, hourly
from edge.store.counts import counts_by_event, headline
from edge.store.tables import has_table
from edge.store.times import format_utc, parse_utc

NOT_COUNTED = {"not_bird": "not a bird", "repeat": "repeat (not counted)", "unconfirmed": "unconfirmed"}


def counted_label(bird: dict[str, Any], event: dict[str, Any] | None) -> str | None:
    """The name a bird (a detection, or a frame classified whole) counts under in its visit, as
    the visit's title counts it: its review's species, or the visit's corrected species where the
    visit was corrected as a whole; None when it counts nothing (not a bird, a repeat, unconfirmed,
    rejected by a review, no species)."""
    if bird.get("flag") in NOT_COUNTED or bird.get("kind") == "none":
        return None
    state = bird.get("review_state")
    if state == "rejected":
        return None
    species = bird.get("reviewed_species") if state == "corrected" else bird.get("species")
    if event is not None:
        if event.get("review_state") == "rejected":
            return None
        if event.get("review_state") == "corrected" and species == event.get("machine_species"):
            return event.get("reviewed_species") or species
    return species


def _rows(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    cursor = conn.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


class Reader:
    """The page queries over one read-only connection; `zone` = the station's time zone."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        row = conn.execute("SELECT value FROM meta WHERE key = 'timezone'").fetchone()
        self.zone = ZoneInfo(row[0]) if row and row[0] else ZoneInfo("UTC")
        event_columns = columns(conn, "events")
        self.reviews = "review_state" in event_columns
        self.detections = "best_detection_id" in event_columns
        # frame_objects (schema 6): the people and vehicles a detector found in a frame.
        self.objects = has_table(conn, "frame_objects")
        self.detection_reviews = "review_state" in columns(conn, "detections")
        # detections.flag (schema 6): `not_bird` where the classifier vetoed the detector's box.
        self.detection_flag = "flag" if "flag" in columns(conn, "detections") else "NULL AS flag"
        if self.reviews:
            self.counted_species = ("CASE WHEN e.review_state = 'rejected' THEN NULL "
                                    "ELSE COALESCE(e.reviewed_species, e.species) END")
            self.counted_individuals = "COALESCE(e.reviewed_individuals, e.individuals)"
            self.review_columns = "e.review_state, e.reviewed_species, e.reviewed_individuals, e.reviewed_at"
        else:
            self.counted_species = "e.species"
            self.counted_individuals = "e.individuals" if "individuals" in event_columns else "1"
            self.review_columns = ("NULL AS review_state, NULL AS reviewed_species, NULL AS reviewed_individuals, "
                                   "NULL AS reviewed_at")
        # Schema 6: what each visit counts per species (edge/store/events.py).
        self.per_species = "species" in columns(conn, "event_species")
        # Schema 6: visits per UTC hour and species, kept by triggers (edge/store/hourly.py).
        self.hourly = self.per_species and hourly.present(conn)
        best = "e.best_detection_id, e.snapshot" if self.detections else "NULL AS best_detection_id, NULL AS snapshot"
        # A possible rarity (the species prior's out-of-range flag): shown and reviewed first.
        self.flagged = "flag" in event_columns
        flag = "e.flag" if self.flagged else "NULL AS flag"
        # Schema 6: what is doubtful about the capture times (edge/store/clock_checks.py).
        time_flags = "e.time_flags" if "time_flags" in event_columns else "NULL AS time_flags"
        self.frame_time_flags = "time_flags" if "time_flags" in columns(conn, "frames") else "NULL AS time_flags"
        # Schema 6: a video clip's sampled frames (edge/store/clips.py).
        self.clips = "clip_id" in columns(conn, "frames")
        self.frame_clip = "clip_id, clip_offset_s" if self.clips else "NULL AS clip_id, NULL AS clip_offset_s"
        self.event_columns = (f"e.id, e.uid, e.camera, e.species AS machine_species, e.confidence, e.started_at, "
                              f"e.ended_at, e.frame_count, e.state, {best}, {self.review_columns}, {flag}, "
                              f"{self.counted_species} AS species, {self.counted_individuals} AS individuals, "
                              f"{time_flags}")

    def taxa(self) -> dict[str, Any]:
        """Every recorded label → its names (edge.store.taxa: the `taxa` table the daemon fills;
        empty before schema 5), for the names people read."""
        from edge.store.taxa import taxa

        return taxa(self.conn)

    # ----- days and times -------------------------------------------------------------------
    def today(self) -> date:
        return datetime.now(self.zone).date()

    def utc_bounds(self, first: date, last: date) -> tuple[str, str]:
        """UTC text bounds [first 00:00, last + 1 day 00:00) of local days."""
        low = datetime.combine(first, time(), tzinfo=self.zone).astimezone(UTC)
        high = datetime.combine(last + timedelta(days=1), time(), tzinfo=self.zone).astimezone(UTC)
        return format_utc(low), format_utc(high)

    def local(self, stamp: str | None) -> datetime | None:
        return parse_utc(stamp).astimezone(self.zone) if stamp else None

    def picture_folders(self) -> list[folders.PictureFolder]:
        """The camera folders and archive the daemon recorded (edge/store/folders.py)."""
        return folders.read(self.conn)

    def seen_days(self, species: str) -> tuple[date, date] | None:
        """The first and last local day with a visit of `species` (the tallies), or None."""
        row = self.conn.execute("SELECT MIN(day), MAX(day) FROM daily_tallies WHERE species = ? AND events > 0",
                                (species,)).fetchone()
        return (date.fromisoformat(row[0]), date.fromisoformat(row[1])) if row and row[0] else None

    # ----- pages ------------------------------------------------------------------------------
    def day_counts(self, day: date) -> list[dict[str, Any]]:
        """Per species: events, individuals, frames on one local day (the tallies)."""
        individuals = "SUM(individuals)" if "individuals" in columns(self.conn, "daily_tallies") else "SUM(events)"
        return _rows(self.conn, f"""SELECT species, SUM(events) AS events, {individuals} AS individuals,
                                    SUM(frames) AS frames FROM daily_tallies WHERE day = ?
                                    GROUP BY species HAVING SUM(events) > 0 OR SUM(frames) > 0
                                    ORDER BY SUM(events) DESC, species""", (day.isoformat(),))

    def species_names(self) -> list[str]:
        return [r[0] for r in self.conn.execute(
            "SELECT DISTINCT species FROM daily_tallies WHERE events > 0 ORDER BY species")]

    def cameras(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT DISTINCT camera FROM daily_tallies ORDER BY camera")]

    def latest_events(self, limit: int = 12) -> list[dict[str, Any]]:
        return self.with_counts(_rows(
            self.conn, f"SELECT {self.event_columns} FROM events e ORDER BY e.started_at DESC LIMIT ?", (limit,)))

    def species_days(self, species: str, last: date, days: int = 30) -> tuple[list[str], list[int], list[int]]:
        """(days, visits, individuals) for the `days` local days ending with `last`, zeros included."""
        first = last - timedelta(days=days - 1)
        individuals = "SUM(individuals)" if "individuals" in columns(self.conn, "daily_tallies") else "SUM(events)"
        found = {r["day"]: r for r in _rows(
            self.conn, f"""SELECT day, SUM(events) AS events, {individuals} AS individuals FROM daily_tallies
                           WHERE day >= ? AND day <= ? AND species = ? GROUP BY day""",
            (first.isoformat(), last.isoformat(), species))}
        labels = [(first + timedelta(days=i)).isoformat() for i in range(days)]
        return (labels, [int(found[d]["events"]) if d in found else 0 for d in labels],
                [int(found[d]["individuals"] or 0) if d in found else 0 for d in labels])

    def hour_matrix(self, first: date, last: date, species: str | None = None) -> dict[str, list[int]]:
        """Counted species → 24 visit counts by the local hour of the visit's start.

        Read from the hourly tallies (`hourly_visits`, edge/store/hourly.py: visits per UTC hour
        and species, kept by triggers) where they answer exactly, else counted from the events in
        SQL (a year of a busy station at 10^6 frames: 13 ms from the tallies, 0.44 s from the
        events, 0.98 s when each row was parsed here: docs/benchmarks.md). The period is cut where the station's UTC offset changes (DST), so
        within a piece the local time is the UTC time plus one fixed offset; a piece of a
        whole-hour offset between whole UTC hours is summed from the tallies, any other (a
        half-hour zone) from the events, grouped by the UTC minute of day, each group landing in
        its local hour."""
        low, high = self.utc_bounds(first, last)
        matrix: dict[str, list[int]] = defaultdict(lambda: [0] * 24)
        for start, end, offset_min in _offset_pieces(parse_utc(low), parse_utc(high), self.zone):
            tallied = self.hourly and offset_min % 60 == 0 and _whole_hour(start) and _whole_hour(end)
            for name, minute, count in (self._tallied_minutes if tallied else self._event_minutes)(start, end, species):
                if name is None or not count:
                    continue
                matrix[name][((int(minute) + offset_min) % 1440) // 60] += int(count)
        return dict(sorted(matrix.items(), key=lambda item: (-sum(item[1]), item[0])))

    def _tallied_minutes(self, start: datetime, end: datetime, species: str | None) -> list[tuple[Any, Any, Any]]:
        """(species, UTC minute of day, visits) of [start, end) (whole UTC hours) from the hourly tallies."""
        return [(name, hour * 60, count)
                for name, hour, count in hourly.visits(self.conn, format_utc(start), format_utc(end), species)]

    def _event_minutes(self, start: datetime, end: datetime, species: str | None) -> list[tuple[Any, Any, Any]]:
        """(counted species, UTC minute of day, visits) of [start, end) counted from the events."""
        name_column = "s.species" if self.per_species else self.counted_species
        source = "events e JOIN event_species s ON s.event_id = e.id" if self.per_species else "events e"
        where = "" if species is None else f" AND {name_column} = ?"
        params: tuple[Any, ...] = (format_utc(start), format_utc(end)) + (() if species is None else (species,))
        return self.conn.execute(
            f"""SELECT {name_column} AS name,
                       CAST(substr(e.started_at, 12, 2) AS INTEGER) * 60 + CAST(substr(e.started_at, 15, 2) AS INTEGER),
                       COUNT(*)
                FROM {source} WHERE e.started_at >= ? AND e.started_at < ?{where}
                GROUP BY 1, 2""", params).fetchall()

    def events(self, *, camera: str | None = None, species: str | None = None, first: date | None = None,
               last: date | None = None, reviewed: bool | None = None, limit: int = 50,
               offset: int = 0) -> list[dict[str, Any]]:
        """The events list, newest first, filtered; `limit + 1` rows tell whether there is a next page."""
        clauses, params = [], []
        if camera:
            clauses.append("e.camera = ?")
            params.append(camera)
        if species:  # the visits that count this species (any of their species)
            clauses.append("e.id IN (SELECT event_id FROM event_species WHERE species = ?)" if self.per_species
                           else f"{self.counted_species} = ?")
            params.append(species)
        if first or last:
            low, high = self.utc_bounds(first or date(1970, 1, 1), last or date(9999, 12, 30))
            clauses += ["e.started_at >= ?", "e.started_at < ?"]
            params += [low, high]
        if reviewed is not None and self.reviews:
            clauses.append("e.review_state IS NOT NULL" if reviewed else "e.review_state IS NULL")
        elif reviewed is True:
            clauses.append("0")
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        return self.with_counts(_rows(self.conn, f"SELECT {self.event_columns} FROM events e{where} "
                                                 f"ORDER BY e.started_at DESC, e.id DESC LIMIT ? OFFSET ?",
                                      (*params, limit + 1, offset)))

    def with_counts(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each event with `species_counts` (every species the visit counts, with its MaxN, most
        first); `species` stays the headline and `individuals` becomes the headline's own count."""
        if not self.per_species or not events:
            for event in events:
                event.setdefault("species_counts", [])
            return events
        found = counts_by_event(self.conn, [int(e["id"]) for e in events])
        for event in events:
            listed = found.get(int(event["id"]), [])
            event["species_counts"] = listed
            event["species"] = headline(event["species"], listed)
            if listed:
                event["individuals"] = next(c["individuals"] for c in listed if c["species"] == event["species"])
        return events

    def review_queue(self, *, species: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Unreviewed events with a species, least confident first."""
        clauses = ["e.species IS NOT NULL"]
        params: list[Any] = []
        if self.reviews:
            clauses.append("e.review_state IS NULL")
        if species:
            clauses.append("e.species = ?")
            params.append(species)
        rarities_first = "e.flag IS NULL, " if self.flagged else ""
        return self.with_counts(_rows(
            self.conn, f"SELECT {self.event_columns} FROM events e WHERE {' AND '.join(clauses)} "
                       f"ORDER BY {rarities_first}e.confidence ASC, e.id ASC LIMIT ?", (*params, limit)))

    def event(self, event_id: int) -> dict[str, Any] | None:
        rows = self.with_counts(_rows(self.conn, f"SELECT {self.event_columns} FROM events e WHERE e.id = ?", (event_id,)))
        return rows[0] if rows else None

    def event_frames(self, event_id: int, event: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """The visit's frames, each with its detections and predictions, and `counted`: the
        (name, birds, best confidence) this frame counts in the visit, named as the visit's title
        names them (counted_label), so that a frame's caption and the title agree."""
        frames = _rows(self.conn, f"""SELECT id, path, stored_path, captured_at, time_source, species, confidence,
                                      {self.frame_time_flags}, {self.frame_clip} FROM frames
                                      WHERE event_id = ? ORDER BY captured_at, id""", (event_id,))
        has_detections = self.detections
        for frame in frames:
            frame["detections"] = []
            if has_detections:
                reviewed = ("review_state, reviewed_species" if self.detection_reviews
                            else "NULL AS review_state, NULL AS reviewed_species")
                for det in _rows(self.conn, f"""SELECT id, rank, score, kind, species, confidence, top_k, event_id,
                                                {reviewed}, {self.detection_flag} FROM detections WHERE frame_id = ? ORDER BY rank""",
                                 (frame["id"],)):
                    det["top_k"] = json.loads(det["top_k"]) if det["top_k"] else []
                    frame["detections"].append(det)
            frame["predictions"] = _rows(self.conn, "SELECT rank, label, score FROM predictions WHERE frame_id = ? "
                                                    "ORDER BY rank", (frame["id"],))
            frame["counted"] = self._frame_counts(frame, event_id, event)
        return frames

    @staticmethod
    def _frame_counts(frame: dict[str, Any], event_id: int, event: dict[str, Any] | None) -> list[tuple[str, int, Any]]:
        birds: dict[str, list[Any]] = {}
        if frame["detections"]:
            for det in frame["detections"]:
                det["counted"] = counted_label(det, event) if det.get("event_id") == event_id else None
                if det["counted"]:
                    entry = birds.setdefault(det["counted"], [0, None])
                    entry[0] += 1
                    entry[1] = max(entry[1] or 0, det.get("confidence") or 0)
        else:  # classified whole: the frame's own species
            name = counted_label({"species": frame.get("species")}, event)
            if name:
                birds[name] = [1, frame.get("confidence")]
        return sorted(((name, n, best) for name, (n, best) in birds.items()), key=lambda item: (-item[1], item[0]))

    def frame(self, frame_id: int) -> dict[str, Any] | None:
        rows = _rows(self.conn, f"SELECT id, path, stored_path, camera, {self.frame_clip} FROM frames WHERE id = ?",
                     (frame_id,))
        return rows[0] if rows else None

    def event_clips(self, event_id: int) -> list[dict[str, Any]]:
        """The video clips whose sampled frames joined the event (the event page plays them)."""
        if not self.clips:
            return []
        return _rows(self.conn, """SELECT c.id, c.path, c.media_type, c.duration_s FROM clips AS c
                                   WHERE c.id IN (SELECT clip_id FROM frames WHERE event_id = ? AND clip_id IS NOT NULL)
                                   ORDER BY c.captured_at, c.id""", (event_id,))

    def clip(self, clip_id: int) -> dict[str, Any] | None:
        """A clip's file (path, stored_path) and whether a person was found in any of its frames."""
        if not self.clips:
            return None
        rows = _rows(self.conn, """SELECT c.id, c.path, c.stored_path, c.media_type,
                                          EXISTS (SELECT 1 FROM frames AS f JOIN frame_objects AS o ON o.frame_id = f.id
                                                   WHERE f.clip_id = c.id AND o.kind = 'person') AS has_person
                                     FROM clips AS c WHERE c.id = ?""", (clip_id,))
        return rows[0] if rows else None

    def frame_boxes(self, frame_id: int) -> list[dict[str, Any]]:
        """The frame's detector boxes, each with `counted` (the name its visit counts it under,
        counted_label) and `reason` (why it counts nothing) for the captions drawn on the frame."""
        if not self.detections:
            return []
        reviewed = ("review_state, reviewed_species" if self.detection_reviews
                    else "NULL AS review_state, NULL AS reviewed_species")
        boxes = _rows(self.conn, f"""SELECT id, rank, ymin, xmin, ymax, xmax, score, kind, species, confidence,
                                     event_id, {reviewed}, {self.detection_flag} FROM detections
                                     WHERE frame_id = ? ORDER BY rank""", (frame_id,))
        events = {event_id: self.event(event_id) for event_id in {b["event_id"] for b in boxes if b["event_id"]}}
        for box in boxes:
            box["counted"] = counted_label(box, events.get(box["event_id"]))
            box["reason"] = None if box["counted"] else (NOT_COUNTED.get(box.get("flag") or "") or (
                "rejected" if box.get("review_state") == "rejected" else "not counted"))
        return boxes

    def detection(self, detection_id: int) -> dict[str, Any] | None:
        if not self.detections:
            return None
        rows = _rows(self.conn, """SELECT id, frame_id, ymin, xmin, ymax, xmax, score, detector_label
                                   FROM detections WHERE id = ?""", (detection_id,))
        return rows[0] if rows else None

    def frame_has_person(self, frame_id: int) -> bool:
        """Whether the detector found a person in the frame ([privacy] hide_people hides it)."""
        if not self.objects:
            return False
        return bool(self.conn.execute("SELECT 1 FROM frame_objects WHERE frame_id = ? AND kind = 'person' LIMIT 1",
                                      (frame_id,)).fetchone())

    def snapshot_has_person(self, event_id: int) -> bool:
        """Whether the event's snapshot was cut from a frame with a person in it."""
        if not self.objects or not self.detections:
            return False
        return bool(self.conn.execute(
            """SELECT 1 FROM events AS e JOIN detections AS d ON d.id = e.best_detection_id
                 JOIN frame_objects AS o ON o.frame_id = d.frame_id AND o.kind = 'person'
                WHERE e.id = ? LIMIT 1""", (event_id,)).fetchone())

    def snapshot_name(self, event_id: int) -> str | None:
        if not self.detections:
            return None
        row = self.conn.execute("SELECT snapshot FROM events WHERE id = ?", (event_id,)).fetchone()
        return row[0] if row else None


def _whole_hour(moment: datetime) -> bool:
    return moment.minute == 0 and moment.second == 0 and moment.microsecond == 0


def _offset_pieces(start: datetime, end: datetime, zone: Any) -> list[tuple[datetime, datetime, int]]:
    """[start, end) cut at the zone's UTC offset changes: (piece start, piece end, offset in minutes).
    Found by stepping a day at a time and bisecting to the minute where the offset changed."""
    def offset(moment: datetime) -> int:
        delta = moment.astimezone(zone).utcoffset()
        assert delta is not None  # astimezone(zone) is aware, and an aware datetime has an offset
        return int(delta.total_seconds() // 60)

    pieces, piece_start, current = [], start, offset(start)
    day = start
    while day < end:
        following = min(day + timedelta(days=1), end)
        if offset(following) != current or following == end:
            if offset(following) != current:
                low, high = day, following  # the change lies in (low, high]
                while (high - low) > timedelta(minutes=1):
                    middle = low + (high - low) / 2
                    if offset(middle) == current:
                        low = middle
                    else:
                        high = middle
                whole = high.replace(second=0, microsecond=0)  # zones change offset on a whole minute
                if low < whole and offset(whole) != current:
                    high = whole
                pieces.append((piece_start, high, current))
                piece_start, current = high, offset(high)
        day = following
    pieces.append((piece_start, end, current))
    return [(a, b, o) for a, b, o in pieces if a < b]
