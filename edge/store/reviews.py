"""Reviews: a person's observation of an event or one of its birds, stored next to the machine's.

A review never overwrites what the model said. It is a row of its own (`reviews`): who, when,
what (confirm the species, correct it, reject: not a bird or an empty frame, or set the number
of individuals), what the machine had said then, and which earlier review of the same target
it supersedes. Undo marks a review undone; nothing is deleted. The event's effective review is
kept as a cache on the event (`review_state`, `reviewed_species`, `reviewed_individuals`,
`reviewed_at`) in the review's own transaction, so reports and tallies read the counted truth
(edge.store.events.counted) without replaying the history.

What follows a review, in the same transaction:

- the visit's per-species counts (`event_species`, edge/store/counts.py, by the rules of
  edge/store/events.py) and the daily tallies: a corrected event's visit and individuals move
  from the machine's species to the reviewed one; a rejected event leaves the counts; a bird
  (detection) corrected to another species moves that bird's count with it, a rejected bird
  leaves it; undo moves them back. The frames tally stays the machine's (what the model saw,
  frame by frame);
- with an outbox (the web app hands in the daemon's OutboxWriter), the retained MQTT `counts`
  of the station's day when the event belongs to today, and an `events` update carrying the
  review, exactly as a frame's transaction queues them; the daemon's publisher sends them.

Detection reviews (one bird of an event) also feed the training set and per-species
thresholds (`edge export training-set`, `edge thresholds suggest`). An event-level verdict
(correct, reject) outranks the bird reviews of its visit.

Every review is one BEGIN IMMEDIATE transaction (edge.store.db.immediate): the web app writes
while the daemon writes, and neither may see the other's half-done work.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlite_utils

from edge.store.counts import headline, min_frames_of, recount, stored_counts
from edge.store.db import StoreError, connect, immediate, inserted_id, schema_version
from edge.store.events import counted
from edge.store.known_taxa import KnownTaxa
from edge.store.schema import SCHEMA_VERSION
from edge.store.times import format_utc, local_day, parse_utc
from edge.store.writer import EventChange, OutboxSink, tallies_for_day

ACTIONS: tuple[str, ...] = ("confirm", "correct", "reject", "individuals")
DETECTION_ACTIONS: tuple[str, ...] = ("confirm", "correct", "reject")
STATES = {"confirm": "confirmed", "correct": "corrected", "reject": "rejected"}
MAX_INDIVIDUALS = 1000

# SQL for what an event counts as (edge.store.events.counted, in SQL), for reports and queries.
COUNTED_SPECIES_SQL = "CASE WHEN review_state = 'rejected' THEN NULL ELSE COALESCE(reviewed_species, species) END"
COUNTED_INDIVIDUALS_SQL = "COALESCE(reviewed_individuals, individuals)"


class ReviewError(Exception):
    """A review that cannot be recorded: unknown target, bad action, species or count."""


@dataclass(frozen=True)
class Review:
    """One row of `reviews`."""

    id: int
    created_at: str
    reviewer: str
    event_id: int
    detection_id: int | None
    action: str
    species: str | None
    individuals: int | None
    machine_species: str | None
    machine_confidence: float | None
    replaces: int | None
    undone_at: str | None
    undone_by: str | None


REVIEW_COLUMNS = ("id, created_at, reviewer, event_id, detection_id, action, species, individuals, machine_species, "
                  "machine_confidence, replaces, undone_at, undone_by")


def history(conn: sqlite3.Connection, event_id: int) -> list[Review]:
    """Every review of the event and its detections, oldest first, undone ones included."""
    return [Review(*row) for row in conn.execute(
        f"SELECT {REVIEW_COLUMNS} FROM reviews WHERE event_id = ? ORDER BY id", (event_id,))]


def effective(reviews: list[Review]) -> dict[str, Any]:
    """The review cache of one target from its history: replay the reviews not undone, in order.

    confirm → confirmed (the machine's species is right; an earlier correction no longer holds);
    correct → corrected to its species; reject → rejected; individuals → the count (the
    species verdict stays as it was)."""
    state: str | None = None
    species: str | None = None
    individuals: int | None = None
    for review in reviews:
        if review.undone_at is not None:
            continue
        if review.action == "individuals":
            individuals = review.individuals
            continue
        state = STATES[review.action]
        species = review.species if review.action == "correct" else None
    return {"review_state": state, "reviewed_species": species, "reviewed_individuals": individuals}


class ReviewStore:
    """Records reviews in the edge database (a second writer beside the daemon's Store)."""

    def __init__(self, path: Path | str, *, outbox: OutboxSink | None = None, station_tz: ZoneInfo | str | None = None,
                 busy_timeout_s: float = 30.0, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 known: Callable[[sqlite3.Connection], KnownTaxa] | None = None) -> None:
        """`known`: the taxa a correction may name (edge/store/known_taxa.py), read in each
        review's transaction; None accepts any name (tests, tools that check names themselves)."""
        self.path = Path(path)
        self.known = known
        if not self.path.exists():
            raise StoreError(f"{self.path}: database not found (has the daemon run yet?)")
        self.conn = connect(self.path, busy_timeout_s=busy_timeout_s)
        self.db = sqlite_utils.Database(self.conn)
        version = schema_version(self.db) or 0
        if version != SCHEMA_VERSION:
            self.conn.close()
            raise StoreError(f"{self.path}: schema version {version}, reviews need {SCHEMA_VERSION}: "
                             + ("upgrade trailcam" if version > SCHEMA_VERSION else
                                "restart the daemon once so that it migrates the database"))
        if station_tz is None:
            row = self.conn.execute("SELECT value FROM meta WHERE key = 'timezone'").fetchone()
            station_tz = row[0] if row else "UTC"
        self.station_tz = ZoneInfo(station_tz) if isinstance(station_tz, str) else station_tz
        self.outbox = outbox
        self.clock = clock

    def close(self) -> None:
        self.conn.close()

    # -- recording ------------------------------------------------------------------------

    def review_event(self, event_id: int, action: str, *, reviewer: str, species: str | None = None,
                     individuals: int | None = None, new_species: bool = False) -> Review:
        """Record a review of the whole event; its tallies (and MQTT counts) follow."""
        self._check(action, ACTIONS, reviewer, species, individuals)
        with immediate(self.conn):
            if action == "correct":
                species = self._known_name(species, new_species)
            event = self._event(event_id)
            if action == "individuals" and species is not None:
                counted_now = {row["species"] for row in stored_counts(self.conn, event_id)}
                if species not in counted_now:
                    raise ReviewError(f"species: the visit counts no {species!r} "
                                      f"(it counts {', '.join(sorted(counted_now)) or 'nothing'})")
            replaces = self._latest(event_id, None, action == "individuals")
            review = self._insert(event, None, action, reviewer, species, individuals,
                                  event["species"], event["confidence"], replaces)
            self._refresh_event(event, review.created_at)
        return review

    def review_detection(self, detection_id: int, action: str, *, reviewer: str, species: str | None = None,
                         new_species: bool = False) -> Review:
        """Record a review of one bird: its count moves with it (and it feeds the training set)."""
        self._check(action, DETECTION_ACTIONS, reviewer, species, None)
        with immediate(self.conn):
            if action == "correct":
                species = self._known_name(species, new_species)
            row = self.conn.execute(
                "SELECT id, event_id, species, confidence FROM detections WHERE id = ?", (detection_id,)).fetchone()
            if row is None:
                raise ReviewError(f"detection {detection_id}: no such detection")
            if row[1] is None:
                raise ReviewError(f"detection {detection_id}: not counted in any event (a denied species)")
            event = self._event(int(row[1]))
            replaces = self._latest(int(row[1]), detection_id, False)
            review = self._insert(event, detection_id, action, reviewer, species, None, row[2], row[3], replaces)
            self._refresh_detection(detection_id)
            self._refresh_event(event, review.created_at, event_review=False)
        return review

    def undo(self, review_id: int, *, reviewer: str) -> Review:
        """Mark a review undone (it then counts for nothing) and restore what it changed."""
        if not reviewer or not reviewer.strip():
            raise ReviewError("reviewer: who undoes the review must be named")
        with immediate(self.conn):
            row = self.conn.execute(f"SELECT {REVIEW_COLUMNS} FROM reviews WHERE id = ?", (review_id,)).fetchone()
            if row is None:
                raise ReviewError(f"review {review_id}: no such review")
            review = Review(*row)
            if review.undone_at is not None:
                raise ReviewError(f"review {review_id}: already undone at {review.undone_at} by {review.undone_by}")
            now = format_utc(self.clock())
            self.conn.execute("UPDATE reviews SET undone_at = ?, undone_by = ? WHERE id = ?", (now, reviewer, review_id))
            if review.detection_id is not None:
                self._refresh_detection(review.detection_id)
                self._refresh_event(self._event(review.event_id), now, event_review=False)
            else:
                self._refresh_event(self._event(review.event_id), now)
        return replace(review, undone_at=now, undone_by=reviewer)

    def history(self, event_id: int) -> list[Review]:
        return history(self.conn, event_id)

    # -- internals ------------------------------------------------------------------------

    @staticmethod
    def _check(action: str, allowed: tuple[str, ...], reviewer: str, species: str | None,
               individuals: int | None) -> None:
        if action not in allowed:
            raise ReviewError(f"action {action!r}: expected one of {', '.join(allowed)}")
        if not reviewer or not reviewer.strip():
            raise ReviewError("reviewer: a review must say who made it")
        if action == "correct" and (species is None or not species.strip()):
            raise ReviewError("species: a correction needs the species it corrects to")
        if action not in ("correct", "individuals") and species is not None:
            raise ReviewError(f"species: only a correction (or a count of one species) takes a species, not {action!r}")
        if action == "individuals":
            if isinstance(individuals, bool) or not isinstance(individuals, int) or not 1 <= individuals <= MAX_INDIVIDUALS:
                raise ReviewError(f"individuals: a whole number from 1 to {MAX_INDIVIDUALS}, got {individuals!r}")
        elif individuals is not None:
            raise ReviewError(f"individuals: only an 'individuals' review takes a number, not {action!r}")

    def _follow_picture(self, event: dict[str, Any]) -> None:
        """The visit's picture (its card in the web app) shows a bird of the species it now
        counts first: after a bird review the best crop of that species (corrections applied,
        rejected birds never), so the card never shows a bird a person moved to another species.
        An event-level correction keeps the picture: the birds are the same, only named anew."""
        listed = stored_counts(self.conn, int(event["id"]))
        counted_as = counted(event)[0]
        shown = headline(counted_as, listed)
        if shown is None:
            return
        row = self.conn.execute(
            """SELECT id FROM detections WHERE event_id = ? AND (review_state IS NULL OR review_state != 'rejected')
                   AND (CASE WHEN review_state = 'corrected' THEN reviewed_species ELSE species END) = ?
               ORDER BY confidence DESC, score DESC, id LIMIT 1""", (event["id"], shown)).fetchone()
        if row is None or row[0] == event.get("best_detection_id"):
            return
        # The daemon's snapshot file shows the old bird: the card falls back to the crop of this one.
        self.conn.execute("UPDATE events SET best_detection_id = ?, snapshot = NULL WHERE id = ?", (row[0], event["id"]))

    def _known_name(self, species: str | None, new_species: bool) -> str | None:
        """The label a correction is stored under: a taxon the station knows (any of its names,
        any case), or the name as typed when the reviewer said it is a new species."""
        if species is None or self.known is None:
            return species
        known = self.known(self.conn)
        label = known.resolve(species)
        if label is not None:
            return label
        if new_species:
            return species.strip()
        close = known.suggestions(species)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ReviewError(f"species: {species.strip()!r} is not a species this station knows (the model's labels, "
                          f"its taxonomy, the species counted here){hint} To count a species the model does not "
                          f"know, mark the correction as a new species.")

    def _event(self, event_id: int) -> dict[str, Any]:
        cursor = self.conn.execute("SELECT * FROM events WHERE id = ?", (event_id,))
        row = cursor.fetchone()
        if row is None:
            raise ReviewError(f"event {event_id}: no such event")
        return dict(zip([d[0] for d in cursor.description], row))

    def _latest(self, event_id: int, detection_id: int | None, counting: bool) -> int | None:
        """The review of the same target (and kind: a count, or a species verdict) this one supersedes."""
        kind = "action = 'individuals'" if counting else "action != 'individuals'"
        target = "detection_id IS NULL" if detection_id is None else "detection_id = ?"
        params = (event_id,) if detection_id is None else (event_id, detection_id)
        row = self.conn.execute(
            f"SELECT MAX(id) FROM reviews WHERE event_id = ? AND {target} AND {kind} AND undone_at IS NULL", params
        ).fetchone()
        return int(row[0]) if row and row[0] is not None else None

    def _insert(self, event: dict[str, Any], detection_id: int | None, action: str, reviewer: str,
                species: str | None, individuals: int | None, machine_species: str | None,
                machine_confidence: float | None, replaces: int | None) -> Review:
        created = format_utc(self.clock())
        species = species.strip() if species else None
        cursor = self.conn.execute(
            """INSERT INTO reviews (created_at, reviewer, event_id, detection_id, action, species, individuals,
                   machine_species, machine_confidence, replaces) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (created, reviewer.strip(), event["id"], detection_id, action, species, individuals, machine_species,
             machine_confidence, replaces),
        )
        return Review(inserted_id(cursor), created, reviewer.strip(), int(event["id"]), detection_id, action, species,
                      individuals, machine_species, machine_confidence, replaces, None, None)

    def _refresh_detection(self, detection_id: int) -> None:
        reviews = [Review(*row) for row in self.conn.execute(
            f"SELECT {REVIEW_COLUMNS} FROM reviews WHERE detection_id = ? ORDER BY id", (detection_id,))]
        cache = effective(reviews)
        self.conn.execute("UPDATE detections SET review_state = ?, reviewed_species = ? WHERE id = ?",
                          (cache["review_state"], cache["reviewed_species"], detection_id))

    def _refresh_event(self, event: dict[str, Any], at: str, *, event_review: bool = True) -> None:
        """Recompute the event's review cache from its history (an event review), recount what
        the visit counts per species (edge/store/counts.py: the tallies move by the difference),
        and queue MQTT: the event as it now counts, and the day's counts when the day is today."""
        if event_review:
            reviews = [r for r in history(self.conn, int(event["id"])) if r.detection_id is None]
            cache = effective(reviews)
            after = {**event, **cache, "reviewed_at": at}
            self.conn.execute(
                """UPDATE events SET review_state = ?, reviewed_species = ?, reviewed_individuals = ?, reviewed_at = ?
                   WHERE id = ?""",
                (cache["review_state"], cache["reviewed_species"], cache["reviewed_individuals"], at, event["id"]),
            )
        else:  # a bird review: the event's own verdict stays; its message still needs a new id
            self.conn.execute("UPDATE events SET reviewed_at = ? WHERE id = ?", (at, event["id"]))
            after = {**event, "reviewed_at": at}
        before_species, _ = counted(event)
        after_species, _ = counted(after)
        moved = recount(self.conn, after, self.station_tz, min_frames=min_frames_of(self.conn))
        self._follow_picture(after)
        day = local_day(parse_utc(event["started_at"]), self.station_tz)
        if self.outbox is not None:
            today = local_day(self.clock(), self.station_tz)
            previous = before_species if before_species != after_species else None
            # The event again, as it now counts: `end` when the visit is over, so that a consumer
            # keeping only the newest message of each event (the fleet's collector) still knows it closed.
            after["species_counts"] = stored_counts(self.conn, int(event["id"]))
            change = EventChange("end" if after.get("state") == "closed" else "update", after,
                                 previous_species=previous)
            touched = {s for s in (before_species, after_species) if s is not None} | moved.species
            tallies = tallies_for_day(self.conn, today) if today in moved.days or day == today else None
            self.outbox.enqueue(self.db, [change], tallies, today, touched if tallies is not None else set())


def review_queue(conn: sqlite3.Connection, *, species: str | None = None, camera: str | None = None,
                 limit: int = 50) -> list[dict[str, Any]]:
    """Events nobody has reviewed yet, least confident first (then oldest): the review queue.
    Reads the (review_state, confidence) index, never the frames."""
    where, params = ["review_state IS NULL"], []
    if species is not None:
        where.append("species = ?")
        params.append(species)
    if camera is not None:
        where.append("camera = ?")
        params.append(camera)
    cursor = conn.execute(
        f"""SELECT * FROM events WHERE {' AND '.join(where)}
            ORDER BY confidence IS NOT NULL, confidence, id LIMIT ?""", (*params, limit))
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


__all__ = ["ACTIONS", "COUNTED_INDIVIDUALS_SQL", "COUNTED_SPECIES_SQL", "DETECTION_ACTIONS", "Review", "ReviewError",
           "ReviewStore", "effective", "history", "review_queue"]
