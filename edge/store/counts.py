"""What each visit counts, per species: `event_species`, kept in the writer's and the reviewers' transactions.

The rules are edge/store/events.py's (`species_counts`); this module reads what they need
(the event, its per-name vote state `event_votes`, the bird reviews of its detections), writes
the result to `event_species` (one row per species the visit counts: individuals = MaxN of
that species, frames), and moves the daily tallies by the difference, so that `edge counts`,
MQTT's retained counts, the web app and the exports all read one truth. Both writers (the
daemon's Store and the web app's ReviewStore) call `recount` for every event they touch.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from edge.classify.decision import UNKNOWN
from edge.store.events import DEFAULT_SPECIES_MIN_FRAMES, SpeciesCount, SpeciesSeen, species_counts
from edge.store.tables import has_table
from edge.store.times import local_day, parse_utc

META_MIN_FRAMES = "species_min_frames"


@dataclass(frozen=True)
class Recount:
    """What one recount changed: the species whose counts moved, and the days they moved on."""

    species: set[str]
    days: set[str]


def bump_tally(conn: Any, day: str, camera: str, species: str, *, events: int = 0, frames: int = 0,
               individuals: int = 0) -> None:
    """Add to one (day, camera, species) row of the daily tallies, inside the caller's transaction."""
    conn.execute(
        """INSERT INTO daily_tallies (day, camera, species, events, frames, individuals) VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT (day, camera, species) DO UPDATE SET
               events = events + excluded.events, frames = frames + excluded.frames,
               individuals = individuals + excluded.individuals""",
        (day, camera, species, events, frames, individuals),
    )


def min_frames_of(conn: sqlite3.Connection) -> int:
    """The station's `[events] species_min_frames`, as the daemon last recorded it in `meta`
    (reviews made by the web app follow the daemon's rule)."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (META_MIN_FRAMES,)).fetchone()
    return int(row[0]) if row and row[0] is not None else DEFAULT_SPECIES_MIN_FRAMES


def _machine_seen(conn: sqlite3.Connection, event_id: int) -> dict[str, SpeciesSeen]:
    return {
        species: SpeciesSeen(species, int(frames), int(individuals or 1), bool(together),
                             UNKNOWN if species == UNKNOWN else (rank or "species"))
        for species, frames, individuals, together, rank in conn.execute(
            "SELECT species, frames, individuals, together, rank FROM event_votes WHERE event_id = ?", (event_id,))
    }


def _with_bird_reviews(conn: sqlite3.Connection, event_id: int, seen: dict[str, SpeciesSeen]) -> dict[str, SpeciesSeen]:
    """The machine's names with the bird (detection) reviews applied: each species a review moved
    a bird from or to is recounted from the visit's stored detections; the others keep the
    machine's count (pruned frame rows cannot be recounted)."""
    # Gate on the reviews table (a few rows per event, indexed): without a standing bird review
    # the visit's detections are not read, so a frame's cost does not grow with its visit.
    if conn.execute("""SELECT 1 FROM reviews WHERE event_id = ? AND detection_id IS NOT NULL AND undone_at IS NULL
                           AND action IN ('correct', 'reject') LIMIT 1""", (event_id,)).fetchone() is None:
        return seen
    rows = conn.execute(
        "SELECT frame_id, species, review_state, reviewed_species FROM detections WHERE event_id = ?",
        (event_id,)).fetchall()
    touched: set[str] = set()
    for _, species, state, reviewed in rows:
        if state in ("corrected", "rejected"):
            touched.add(species)
            if reviewed:
                touched.add(reviewed)
    if not touched:
        return seen
    per_frame: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for frame_id, species, state, reviewed in rows:
        if state == "rejected" or species is None:
            continue
        per_frame[frame_id][reviewed if state == "corrected" and reviewed else species] += 1
    recounted: dict[str, SpeciesSeen] = {name: row for name, row in seen.items() if name not in touched}
    maxn: dict[str, int] = defaultdict(int)
    frames: dict[str, int] = defaultdict(int)
    together: dict[str, bool] = defaultdict(bool)
    for birds in per_frame.values():
        for name, n in birds.items():
            if name not in touched:
                continue
            maxn[name] = max(maxn[name], n)
            frames[name] += 1
            together[name] = together[name] or len(birds) > 1
    for name in touched:
        if frames.get(name):
            rank = seen[name].rank if name in seen else (UNKNOWN if name == UNKNOWN else "species")
            recounted[name] = SpeciesSeen(name, frames[name], maxn[name], together[name], rank)
    return recounted


def counts_of(conn: sqlite3.Connection, event: dict[str, Any], min_frames: int) -> dict[str, SpeciesCount]:
    """What the event counts now, per species (edge.store.events.species_counts)."""
    event_id = int(event["id"])
    seen = _with_bird_reviews(conn, event_id, _machine_seen(conn, event_id))
    individuals_for = None
    if event.get("reviewed_individuals"):
        row = conn.execute(
            """SELECT species FROM reviews WHERE event_id = ? AND detection_id IS NULL AND action = 'individuals'
                   AND undone_at IS NULL ORDER BY id DESC LIMIT 1""", (event_id,)).fetchone()
        individuals_for = row[0] if row else None
    return species_counts(
        seen.values(), event["species"], min_frames=min_frames, review_state=event.get("review_state"),
        reviewed_species=event.get("reviewed_species"), reviewed_individuals=event.get("reviewed_individuals"),
        individuals_for=individuals_for, all_birds=int(event.get("individuals") or 1))


def stored_counts(conn: sqlite3.Connection, event_id: int) -> list[dict[str, Any]]:
    """The event's `event_species` rows, most individuals first: what the payloads and pages list."""
    return counts_by_event(conn, [event_id]).get(int(event_id), [])


def counts_by_event(conn: sqlite3.Connection, event_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    """event id → its `event_species` rows ({species, individuals, frames}), most individuals
    first, for a page of events in a few queries (500 ids a query)."""
    found: dict[int, list[dict[str, Any]]] = defaultdict(list)
    ids = [int(i) for i in event_ids]
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        marks = ",".join("?" * len(chunk))
        for event_id, species, n, frames in conn.execute(
                f"""SELECT event_id, species, individuals, frames FROM event_species WHERE event_id IN ({marks})
                    ORDER BY event_id, individuals DESC, frames DESC, species""", chunk):
            found[int(event_id)].append({"species": species, "individuals": int(n), "frames": int(frames)})
    return dict(found)


def headline(counted_as: str | None, listed: Sequence[dict[str, Any]]) -> str | None:
    """The species a visit is shown under: what it counts as (its vote, or its review), unless
    bird reviews moved every bird of that species away; then the species it counts most of."""
    if not listed or counted_as in {c["species"] for c in listed}:
        return counted_as
    return listed[0]["species"]


def recount(conn: sqlite3.Connection, event: dict[str, Any], zone: tzinfo, *, min_frames: int) -> Recount:
    """Recompute the event's per-species counts, store them, and move the daily tallies by the
    difference (events and individuals; frames stay each frame's own). `event` is the event's
    row as it is now (after the caller's update)."""
    event_id = int(event["id"])
    camera = event["camera"]
    day = local_day(parse_utc(event["started_at"]), zone)
    before = {species: (d, int(n)) for species, n, d in conn.execute(
        "SELECT species, individuals, day FROM event_species WHERE event_id = ?", (event_id,))}
    after = counts_of(conn, event, min_frames)
    moved: set[str] = set()
    days: set[str] = set()
    for species in set(before) | set(after):
        old = before.get(species)
        new = (day, after[species].individuals) if species in after else None
        if old == new:
            continue
        moved.add(species)
        if old is not None:
            bump_tally(conn, old[0], camera, species, events=-1, individuals=-old[1])
            days.add(old[0])
        if new is not None:
            bump_tally(conn, new[0], camera, species, events=1, individuals=new[1])
            days.add(new[0])
    # Only the rows that go are deleted and the others updated in place: a row deleted and inserted
    # again would fire the hourly tallies' triggers twice per species and frame (edge/store/hourly.py).
    gone = sorted(set(before) - set(after))
    if gone:
        conn.execute(f"DELETE FROM event_species WHERE event_id = ? AND species IN ({','.join('?' * len(gone))})",
                     (event_id, *gone))
    conn.executemany(
        """INSERT INTO event_species (event_id, species, individuals, frames, day) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (event_id, species) DO UPDATE SET
               individuals = excluded.individuals, frames = excluded.frames, day = excluded.day""",
        [(event_id, c.species, c.individuals, c.frames, day) for c in after.values()])
    return Recount(moved, days)


def create_tables(conn: Any) -> None:
    """Schema 6's `event_species` (edge/store/schema.py)."""
    conn.execute(
        """CREATE TABLE IF NOT EXISTS event_species (
               event_id INTEGER NOT NULL REFERENCES events(id),
               species TEXT NOT NULL,
               individuals INTEGER NOT NULL,
               frames INTEGER NOT NULL,
               day TEXT NOT NULL,
               PRIMARY KEY (event_id, species)
           ) WITHOUT ROWID""")
    conn.execute("CREATE INDEX IF NOT EXISTS event_species_species ON event_species (species, day)")


def visits_on_day(conn: Any, day: str) -> int | None:
    """How many visits of one station day count anything: each visit once, however many
    species it counts (the per-species tallies count a two-species visit for each). None for a
    database older than schema 6."""
    if not has_table(conn, "event_species"):
        return None
    return int(conn.execute("SELECT COUNT(DISTINCT event_id) FROM event_species WHERE day = ?", (day,)).fetchone()[0])


def recount_all(conn: sqlite3.Connection) -> int:
    """Recount every visit and rebuild the tallies' events and individuals from the result (the
    schema-6 migration; frames tallies stay). Returns the number of events recounted."""
    from zoneinfo import ZoneInfo

    row = conn.execute("SELECT value FROM meta WHERE key = 'timezone'").fetchone()
    zone = ZoneInfo(row[0] if row and row[0] else "UTC")
    min_frames = min_frames_of(conn)
    conn.execute("UPDATE daily_tallies SET events = 0, individuals = 0")
    cursor = conn.execute("SELECT * FROM events ORDER BY id")
    names = [d[0] for d in cursor.description]
    events = [dict(zip(names, r)) for r in cursor.fetchall()]
    for event in events:
        recount(conn, event, zone, min_frames=min_frames)
    conn.execute("DELETE FROM daily_tallies WHERE events = 0 AND frames = 0 AND individuals = 0")
    return len(events)
