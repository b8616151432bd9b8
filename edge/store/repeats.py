"""Repeat-detection elimination, the memory: each camera's places (edge/detect/repeats.py has
the rule), kept in the database so that it survives restarts, and what a person does with them.

    create_tables(conn)                           repeat_places, repeat_days (schema 6)
    observe(conn, camera, birds, captured, day, now, rules) -> list[Verdict]
        inside the store's frame transaction (Store.record): each detector bird of the frame
        matched against its camera's places, the places updated or created, and the birds whose
        place is suppressed get a REPEAT decision (kind none: no event, tally or MQTT message)
    link_detections(conn, frame_id, verdicts)     each place's picture: its latest detection
    list_places(conn, camera=, states=, min_repeats=)   `edge repeats list`, the web page
    get_place(conn, id)                           one of them

A person's release (`edge repeats release`, the web page's button) is written by
edge/store/repeat_release.py, which opens the database; this module never does.

Counting: suppression applies from the detection that makes the place due onwards. Detections
counted before (`counted`, shown in the list) stay counted: each was a frame the station
published as a bird at the time, a rock counted 19 times is visible in the list, and recounting
visits and tallies behind the operator's back would change numbers already sent. A person who
wants them gone rejects those visits in the review (docs/web.md).

A place is forgotten when it is a candidate not seen for `forget_after_days` (capture time) when
a new place of the camera is made; suppressed and released places stay until a person acts.
Ids are never reused (AUTOINCREMENT): the id a person read in the list names that place only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from edge.classify.decision import Decision
from edge.detect.repeats import (
    CANDIDATE,
    RELEASED,
    REPEAT,
    STATES,
    SUPPRESSED,
    BoxTuple,
    Place,
    RepeatRules,
    blend,
    blend_box,
    due,
    match,
    memory_weight,
    suppressed,
    trackable,
    window,
)
from edge.store.tables import has_table
from edge.store.times import format_utc

log = logging.getLogger(__name__)


class RepeatError(Exception):
    """A release the store refuses (an unknown place); the message says why."""


class Observed(Protocol):
    """A detector's bird as the store records it (edge.store.writer.BirdRecord). Read-only
    members: BirdRecord is a frozen dataclass, and a plain attribute here would ask for a
    settable one."""

    @property
    def box(self) -> BoxTuple: ...

    @property
    def decision(self) -> Decision: ...

    @property
    def look(self) -> bytes | None: ...


@dataclass(frozen=True)
class Verdict:
    """What the memory made of one bird of a frame."""

    rank: int  # the bird's rank in the frame (1 = best detector score)
    place_id: int | None  # the place it matched or made; None: not tracked (too big, no look)
    decision: Decision  # the bird's decision: its own, or the REPEAT one when suppressed
    state: str | None = None  # the place's state after this bird
    became_suppressed: bool = False  # this bird made the place due

    @property
    def suppressed(self) -> bool:
        return self.decision.flag == REPEAT


def create_tables(conn: Any) -> None:
    """The two tables (idempotent): the places, and the distinct days each was seen on."""
    conn.execute(
        f"""CREATE TABLE IF NOT EXISTS repeat_places (
               id INTEGER PRIMARY KEY AUTOINCREMENT,
               camera TEXT NOT NULL,
               ymin REAL NOT NULL, xmin REAL NOT NULL, ymax REAL NOT NULL, xmax REAL NOT NULL,
               look BLOB NOT NULL,
               repeats INTEGER NOT NULL DEFAULT 1,
               days INTEGER NOT NULL DEFAULT 1,
               counted INTEGER NOT NULL DEFAULT 0,
               suppressed INTEGER NOT NULL DEFAULT 0,
               first_seen TEXT NOT NULL,
               last_seen TEXT NOT NULL,
               state TEXT NOT NULL DEFAULT '{CANDIDATE}' CHECK (state IN ({", ".join(repr(s) for s in STATES)})),
               created_at TEXT NOT NULL,
               suppressed_at TEXT,
               released_at TEXT,
               released_by TEXT,
               detection_id INTEGER
           )""")
    conn.execute("CREATE INDEX IF NOT EXISTS repeat_places_camera_xmin ON repeat_places (camera, xmin)")
    conn.execute(f"""CREATE INDEX IF NOT EXISTS repeat_places_forget ON repeat_places (camera, last_seen)
                     WHERE state = '{CANDIDATE}'""")
    conn.execute("""CREATE TABLE IF NOT EXISTS repeat_days (
                        place_id INTEGER NOT NULL,
                        day TEXT NOT NULL,
                        PRIMARY KEY (place_id, day)
                    ) WITHOUT ROWID""")


PLACE_COLUMNS = "id, ymin, xmin, ymax, xmax, look, repeats, days, state"


def _places_near(conn: Any, camera: str, box: BoxTuple, rules: RepeatRules) -> list[Place]:
    """The camera's places whose box can overlap `box` by iou_threshold (an index range on xmin)."""
    (x_low, x_high), (y_low, y_high) = window(box, rules)
    return [Place(int(i), (a, b, c, d), bytes(look), int(repeats), int(days), state)
            for i, a, b, c, d, look, repeats, days, state in conn.execute(
                f"""SELECT {PLACE_COLUMNS} FROM repeat_places WHERE camera = ? AND xmin BETWEEN ? AND ?
                       AND ymin BETWEEN ? AND ?""", (camera, x_low, x_high, y_low, y_high))]


def observe(conn: Any, camera: str, birds: Sequence[Observed], captured: datetime, day: str, now: datetime,
            rules: RepeatRules) -> list[Verdict]:
    """Match each bird of one frame (in rank order) against the camera's places and update them;
    inside the caller's transaction (never commits). `captured` is the frame's UTC capture time,
    `day` its station-local day, `now` this device's time (when a place was made or suppressed)."""
    verdicts = []
    captured_text, now_text = format_utc(captured), format_utc(now)
    for rank, bird in enumerate(birds, start=1):
        box = tuple(float(v) for v in bird.box)
        if bird.look is None or not trackable(box, rules):  # type: ignore[arg-type]
            verdicts.append(Verdict(rank, None, bird.decision))
            continue
        counts = bird.decision.species is not None
        found = match(box, bird.look, _places_near(conn, camera, box, rules), rules)  # type: ignore[arg-type]
        if found.place is None:
            _forget(conn, camera, captured, rules)
            place_id = int(conn.execute(
                """INSERT INTO repeat_places (camera, ymin, xmin, ymax, xmax, look, repeats, days, counted,
                       first_seen, last_seen, created_at) VALUES (?, ?, ?, ?, ?, ?, 1, 1, ?, ?, ?, ?)""",
                (camera, *box, bird.look, int(counts), captured_text, captured_text, now_text)).lastrowid)
            conn.execute("INSERT INTO repeat_days (place_id, day) VALUES (?, ?)", (place_id, day))
            verdicts.append(Verdict(rank, place_id, bird.decision, CANDIDATE))
            continue
        verdicts.append(_update(conn, camera, rank, found.place, box, bird, day, captured_text, now_text, rules))  # type: ignore[arg-type]
    return verdicts


def _update(conn: Any, camera: str, rank: int, place: Place, box: BoxTuple, bird: Observed, day: str,
            captured_text: str, now_text: str, rules: RepeatRules) -> Verdict:
    """One more detection of a known place: its counters, days, box and look, and maybe its state."""
    repeats = place.repeats + 1
    new_day = conn.execute("INSERT OR IGNORE INTO repeat_days (place_id, day) VALUES (?, ?)",
                           (place.id, day)).rowcount == 1
    days = place.days + (1 if new_day else 0)
    state, became = place.state, False
    if state == CANDIDATE and due(repeats, days, rules):
        state, became = SUPPRESSED, True
    decision = bird.decision
    if state == SUPPRESSED and decision.species is not None:
        decision = suppressed(decision, place.id, repeats, days)
    weight = memory_weight(repeats)
    conn.execute(
        """UPDATE repeat_places SET ymin = ?, xmin = ?, ymax = ?, xmax = ?, look = ?, repeats = ?, days = ?,
               counted = counted + ?, suppressed = suppressed + ?, first_seen = MIN(first_seen, ?),
               last_seen = MAX(last_seen, ?), state = ?, suppressed_at = COALESCE(suppressed_at, ?)
           WHERE id = ?""",
        (*blend_box(place.box, box, weight), blend(place.look, bird.look or place.look, weight), repeats, days,
         int(decision.species is not None), int(decision.flag == REPEAT), captured_text, captured_text, state,
         now_text if became else None, place.id))
    if became:
        log.warning("camera %s: place %d (box y %.3f-%.3f, x %.3f-%.3f) suppressed as a repeat: the same thing "
                    "seen %d times on %d days; its detections are recorded with flag repeat and no longer "
                    "counted (`edge repeats release %d` if birds are there)", camera, place.id, place.box[0],
                    place.box[2], place.box[1], place.box[3], repeats, days, place.id)
    return Verdict(rank, place.id, decision, state, became)


def _forget(conn: Any, camera: str, captured: datetime, rules: RepeatRules) -> int:
    """Drop the camera's candidates not seen for forget_after_days before `captured`."""
    cutoff = format_utc(captured - timedelta(days=rules.forget_after_days))
    stale = [row[0] for row in conn.execute(
        # The state as a literal: SQLite uses the partial index (repeat_places_forget) only then.
        f"SELECT id FROM repeat_places WHERE camera = ? AND state = '{CANDIDATE}' AND last_seen < ?", (camera, cutoff))]
    if stale:
        marks = ",".join("?" * len(stale))
        conn.execute(f"DELETE FROM repeat_days WHERE place_id IN ({marks})", stale)
        conn.execute(f"DELETE FROM repeat_places WHERE id IN ({marks})", stale)
    return len(stale)


def link_detections(conn: Any, frame_id: int, verdicts: Iterable[Verdict]) -> None:
    """Each matched place's picture: the detection row just written for its bird (its latest)."""
    for verdict in verdicts:
        if verdict.place_id is not None:
            conn.execute("""UPDATE repeat_places SET detection_id = (
                                SELECT id FROM detections WHERE frame_id = ? AND rank = ?) WHERE id = ?""",
                         (frame_id, verdict.rank, verdict.place_id))


LIST_COLUMNS = ("id", "camera", "state", "ymin", "xmin", "ymax", "xmax", "repeats", "days", "counted", "suppressed",
                "first_seen", "last_seen", "suppressed_at", "released_at", "released_by", "detection_id")


def has_tables(conn: Any) -> bool:
    """Whether the database has the places (schema 6 made by this release or later)."""
    return has_table(conn, "repeat_places")


def list_places(conn: Any, *, camera: str | None = None, states: Sequence[str] = (SUPPRESSED, RELEASED),
                min_repeats: int = 1, limit: int | None = None) -> list[dict[str, Any]]:
    """The places in `states` (suppressed first, then released, then candidates; most repeats
    first), as dicts of LIST_COLUMNS. An older database without the table has none."""
    if not has_tables(conn):
        return []
    unknown = [s for s in states if s not in STATES]
    if unknown:
        raise ValueError(f"unknown place state(s) {unknown}; known: {', '.join(STATES)}")
    where = [f"state IN ({','.join('?' * len(states))})", "repeats >= ?"]
    params: list[Any] = [*states, min_repeats]
    if camera is not None:
        where.append("camera = ?")
        params.append(camera)
    order = "CASE state WHEN 'suppressed' THEN 0 WHEN 'released' THEN 1 ELSE 2 END, repeats DESC, id"
    sql = f"SELECT {', '.join(LIST_COLUMNS)} FROM repeat_places WHERE {' AND '.join(where)} ORDER BY {order}"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return [dict(zip(LIST_COLUMNS, row)) for row in conn.execute(sql, params)]


def get_place(conn: Any, place_id: int) -> dict[str, Any] | None:
    """One place by id, as list_places gives it; None when there is none (or no table)."""
    if not has_tables(conn):
        return None
    row = conn.execute(f"SELECT {', '.join(LIST_COLUMNS)} FROM repeat_places WHERE id = ?", (place_id,)).fetchone()
    return dict(zip(LIST_COLUMNS, row)) if row else None


__all__ = ["LIST_COLUMNS", "Observed", "RepeatError", "Verdict", "create_tables", "has_tables",
           "get_place", "link_detections", "list_places", "observe"]
