"""Which visits are worth a push notification: `[notify]`'s rules, run inside the frame's transaction.

The store hands every frame's event changes (`new` and `update`; an `end` changes nothing a
reader is told) to `NotificationRules.queue`, inside the transaction that records the frame, so
the notification exists exactly when the visit that earned it does (edge/store/notifications.py).

For each species a visit counts (`event_species`, the one truth of what a visit counts, after
reviews; edge/store/counts.py), in the visit's station-local day:

- new_species: no other visit of this station ever counted the species;
- out_of_range: the species prior flagged one of its frames or birds in this visit (a possible
  rarity, edge/classify/prior.py);
- first_of_year / first_of_season / first_of_day: no other visit counted it in the calendar
  year / the season / the day of this visit. Seasons begin on 20 March, 21 June, 22 September
  and 21 December (BirdNET-Go's defaults); south of the equator (by [station] latitude) the
  names swap, the dates stay;
- every_visit.

The triggers that hold and are configured (`[notify] triggers`) are the notification's
reasons; none → no notification. Then the filters: the allow and deny lists, `min_confidence`
(the species' best confidence in the visit: a visit that grows more certain notifies when it
crosses it), `unknown` only by first_of_day / every_visit with `include_unknown`, visits whose
last frame is older than `max_age_s` (a backlog of old frames is history, not news), and the
per-species `cooldown_s` (from the species' last notification queued or sent, whatever its
trigger). A (visit, species) is notified at most once: a later frame of the same visit that
would satisfy the rules again finds its row.

Quiet hours and delivery are the deliverer's (edge/alerts/delivery.py): they depend on when a
notification goes out, not on when it was earned.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from edge.classify.decision import OUT_OF_RANGE, UNKNOWN
from edge.config.notify import NotifyConfig
from edge.store import notifications
from edge.store.times import parse_utc

log = logging.getLogger(__name__)

# (month, day) each season starts on, northern names (BirdNET-Go's species tracking defaults).
SEASON_STARTS = ((3, 20, "spring"), (6, 21, "summer"), (9, 22, "autumn"), (12, 21, "winter"))
SOUTHERN = {"spring": "autumn", "summer": "winter", "autumn": "spring", "winter": "summer"}
# Strongest first: the order reasons are stored and told in.
ORDER = ("new_species", "out_of_range", "first_of_year", "first_of_season", "first_of_day", "every_visit")
UNKNOWN_TRIGGERS = frozenset({"first_of_day", "every_visit"})


def season(day: date, southern: bool = False) -> tuple[str, date, date]:
    """(name, first day, last day) of the season `day` falls in."""
    starts = []
    for year in (day.year - 1, day.year, day.year + 1):
        starts += [(date(year, month, first), name) for month, first, name in SEASON_STARTS]
    starts.sort()
    for (begin, name), (following, _) in zip(starts, starts[1:]):
        if begin <= day < following:
            return (SOUTHERN[name] if southern else name), begin, following - timedelta(days=1)
    raise AssertionError(f"no season holds {day}")  # pragma: no cover - the three years cover every day


class ReleaseGate:
    """Rows the processing thread queued whose frame's post-processing (the best crop written
    after the commit, edge/operate/snapshots.py) has not run yet: the deliverer leaves them until
    the daemon's after_frame hook releases them, so a notification never races its own picture.
    Rows queued before a restart were never held."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: set[int] = set()

    def hold(self, ids: Sequence[int]) -> None:
        with self._lock:
            self._held.update(ids)

    def release(self) -> None:
        with self._lock:
            self._held.clear()

    def held(self) -> frozenset[int]:
        with self._lock:
            return frozenset(self._held)


class NotificationRules:
    """The store's NotificationSink (edge/store/writer.py): decides and queues, one row per target."""

    def __init__(self, config: NotifyConfig, targets: Sequence[str], station_tz: ZoneInfo | str,
                 latitude: float | None = None, gate: ReleaseGate | None = None) -> None:
        self.config = config
        self.targets = list(targets)
        self.zone = ZoneInfo(station_tz) if isinstance(station_tz, str) else station_tz
        self.southern = latitude is not None and latitude < 0
        self.triggers = set(config.triggers)
        self.allow = set(config.species)
        self.deny = set(config.exclude_species)
        self.gate = gate or ReleaseGate()
        self._suppressed: set[str] = set()  # keys held back by the cooldown (said once each)

    def queue(self, conn: sqlite3.Connection, changes, now: datetime) -> list[int]:
        """Queue what these changes earn (inside the caller's transaction); returns the row ids."""
        ids: list[int] = []
        for change in changes:
            if change.change not in ("new", "update"):
                continue
            ids += self._visit(conn, change.event, now)
        if ids:
            self.gate.hold(ids)
        return ids

    def _visit(self, conn: sqlite3.Connection, event: dict, now: datetime) -> list[int]:
        event_id = int(event["id"])
        if event.get("review_state") == "rejected":
            return []
        if now - parse_utc(event["ended_at"]) > timedelta(seconds=self.config.max_age_s):
            return []  # a backlog's old visit: history, not news
        ids = []
        for species, day in conn.execute("SELECT species, day FROM event_species WHERE event_id = ? ORDER BY species",
                                         (event_id,)).fetchall():
            ids += self._species(conn, event, species, day, now)
        return ids

    def _species(self, conn: sqlite3.Connection, event: dict, species: str, day: str, now: datetime) -> list[int]:
        event_id = int(event["id"])
        key = notifications.visit_key(event_id, species)
        if (self.allow and species not in self.allow) or species in self.deny:
            return []
        if species == UNKNOWN and not self.config.include_unknown:
            return []
        if notifications.exists(conn, key):
            return []
        confidence = self._confidence(conn, event, species)
        if self.config.min_confidence > 0 and (confidence is None or confidence < self.config.min_confidence):
            return []
        reasons = [r for r in self.reasons(conn, event_id, species, day) if r in self.triggers]
        if species == UNKNOWN:
            reasons = [r for r in reasons if r in UNKNOWN_TRIGGERS]
        if not reasons:
            return []
        if self.config.cooldown_s > 0:
            last = notifications.last_for_species(conn, species)
            if last is not None and now - parse_utc(last) < timedelta(seconds=self.config.cooldown_s):
                if key in self._suppressed:  # counted and logged once a visit and species, not each frame
                    return []
                if len(self._suppressed) > 10_000:
                    self._suppressed.clear()
                self._suppressed.add(key)
                notifications.bump(conn, "suppressed_cooldown")
                log.info("notify: %s in visit %s not notified (%s): within cooldown_s of its last notification",
                         species, event["uid"][:8], ",".join(reasons))
                return []
        log.info("notify: %s in visit %s queued (%s) for %d target(s)", species, event["uid"][:8], ",".join(reasons),
                 len(self.targets))
        return notifications.enqueue(conn, kind="visit", key=key, targets=self.targets, now=now, event_id=event_id,
                                     species=species, day=day, reasons=tuple(reasons))

    def reasons(self, conn: sqlite3.Connection, event_id: int, species: str, day: str) -> list[str]:
        """Every trigger that holds for this species in this visit (strongest first)."""
        other = "SELECT 1 FROM event_species WHERE species = ? AND event_id != ?"
        args = (species, event_id)

        def none_between(first: str, last: str) -> bool:
            return conn.execute(other + " AND day BETWEEN ? AND ? LIMIT 1", (*args, first, last)).fetchone() is None

        found = []
        if conn.execute(other + " LIMIT 1", args).fetchone() is None:
            found.append("new_species")
        if self._flagged(conn, event_id, species):
            found.append("out_of_range")
        the_day = date.fromisoformat(day)
        if none_between(f"{the_day.year}-01-01", f"{the_day.year}-12-31"):
            found.append("first_of_year")
        _, begin, end = season(the_day, self.southern)
        if none_between(begin.isoformat(), end.isoformat()):
            found.append("first_of_season")
        if none_between(day, day):
            found.append("first_of_day")
        found.append("every_visit")
        return found

    @staticmethod
    def _flagged(conn: sqlite3.Connection, event_id: int, species: str) -> bool:
        """A frame or bird of this species in the visit flagged out of range by the prior."""
        return conn.execute(
            """SELECT 1 FROM frames WHERE event_id = ? AND species = ? AND flag = ?
               UNION ALL SELECT 1 FROM detections WHERE event_id = ? AND species = ? AND flag = ? LIMIT 1""",
            (event_id, species, OUT_OF_RANGE, event_id, species, OUT_OF_RANGE)).fetchone() is not None

    @staticmethod
    def _confidence(conn: sqlite3.Connection, event: dict, species: str) -> float | None:
        """The species' best confidence in the visit (its vote state; a reviewed name: the event's)."""
        row = conn.execute("SELECT best_confidence FROM event_votes WHERE event_id = ? AND species = ?",
                           (int(event["id"]), species)).fetchone()
        if row is not None and row[0] is not None:
            return float(row[0])
        return float(event["confidence"]) if event.get("confidence") is not None else None


def describe_season(day: str, southern: bool) -> str:
    """"spring 2026" for a station day (the words a notification uses)."""
    name, begin, _ = season(date.fromisoformat(day), southern)
    return f"{name} {begin.year}" if name != "winter" else f"winter {begin.year}/{str(begin.year + 1)[-2:]}"
