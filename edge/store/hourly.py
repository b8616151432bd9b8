"""Hourly visit tallies: `hourly_visits`, kept by SQLite triggers so that no writer can miss them.

The web app's heatmap and hour-of-day chart count, per species, the visits that count it
(`event_species` joined to `events`) by the hour of the visit's start. Counting a year of a busy
station from the events is 200,000 rows per page (313 ms at 10^6 frames); this table holds the
same count per UTC hour and species, a few rows per hour.

Why triggers and not the writer's Python: the count moves whenever `event_species` is rewritten
(every frame's and every review's recount: edge/store/counts.py, from the daemon's Store and the
web app's ReviewStore), whenever an event's start moves (a later frame that is earlier, `edge clock
correct`), and whenever an event row goes (none does today; a future housekeeping might). Triggers
on both tables keep it equal to the events' count whichever code path, present or future, writes,
in the writer's own transaction. The rule they keep:

    hourly_visits(hour, species).visits
        = COUNT(*) FROM event_species s JOIN events e ON e.id = s.event_id
          WHERE substr(e.started_at, 1, 13) = hour AND s.species = species

`hour` is the UTC hour of the visit's start as text (`2026-11-28T04`), the first 13 characters of
the database's one time format, so text order is time order. A (hour, species) row whose visits
fell back to 0 is kept (the next frame of a visit usually brings it back); readers skip zeros.
"""

from __future__ import annotations

from typing import Any

TABLE = "hourly_visits"

# substr(started_at, 1, 13) = 'YYYY-MM-DDTHH' of edge.store.times.format_utc's text.
_HOUR_OF_START = "substr({}, 1, 13)"


def _add(hour: str, species_select: str) -> str:
    """SQL adding one visit per row of `species_select` (which yields `species`) in `hour`."""
    # `WHERE true` keeps SQLite's parser from reading ON CONFLICT as a join constraint.
    return (f"INSERT INTO {TABLE} (hour, species, visits) SELECT {hour}, species, 1 FROM ({species_select}) WHERE true "
            f"ON CONFLICT (hour, species) DO UPDATE SET visits = visits + 1;")


def _remove(hour: str, species_select: str) -> str:
    """SQL taking one visit per row of `species_select` away from `hour`."""
    return f"UPDATE {TABLE} SET visits = visits - 1 WHERE hour = {hour} AND species IN ({species_select});"


def create_tables(conn: Any) -> None:
    """Schema 6's `hourly_visits`, its triggers, and the tally of the rows already there (the
    migration's backfill; run after `event_species` is filled, inside the caller's transaction)."""
    new_start = _HOUR_OF_START.format("NEW.started_at")
    old_start = _HOUR_OF_START.format("OLD.started_at")
    start_of = "(SELECT substr(started_at, 1, 13) FROM events WHERE id = {})"
    statements = [
        f"""CREATE TABLE IF NOT EXISTS {TABLE} (
               hour TEXT NOT NULL,
               species TEXT NOT NULL,
               visits INTEGER NOT NULL,
               PRIMARY KEY (hour, species)
           ) WITHOUT ROWID""",
        # A species a visit counts (event_species row) counts in the hour its event starts; a row
        # whose event is not there (yet) counts nothing, as in the join the heatmap made.
        f"""CREATE TRIGGER IF NOT EXISTS hourly_visits_species_in AFTER INSERT ON event_species BEGIN
               {_add(start_of.format('NEW.event_id'), "SELECT NEW.species AS species WHERE EXISTS "
                                                      "(SELECT 1 FROM events WHERE id = NEW.event_id)")}
           END""",
        f"""CREATE TRIGGER IF NOT EXISTS hourly_visits_species_out AFTER DELETE ON event_species BEGIN
               {_remove(start_of.format('OLD.event_id'), 'SELECT OLD.species')}
           END""",
        f"""CREATE TRIGGER IF NOT EXISTS hourly_visits_species_changed AFTER UPDATE OF event_id, species ON event_species
           BEGIN
               {_remove(start_of.format('OLD.event_id'), 'SELECT OLD.species')}
               {_add(start_of.format('NEW.event_id'), "SELECT NEW.species AS species WHERE EXISTS "
                                                      "(SELECT 1 FROM events WHERE id = NEW.event_id)")}
           END""",
        # An event's start moved to another hour (an earlier frame joined it, a clock correction):
        # its species move with it.
        f"""CREATE TRIGGER IF NOT EXISTS hourly_visits_event_moved AFTER UPDATE OF started_at ON events
               WHEN {old_start} IS NOT {new_start} BEGIN
               {_remove(old_start, 'SELECT species FROM event_species WHERE event_id = OLD.id')}
               {_add(new_start, 'SELECT species FROM event_species WHERE event_id = NEW.id')}
           END""",
        # An event row inserted or deleted: the event_species rows it has (none, on the writer's
        # path, which inserts the event first) start or stop counting.
        f"""CREATE TRIGGER IF NOT EXISTS hourly_visits_event_in AFTER INSERT ON events BEGIN
               {_add(new_start, 'SELECT species FROM event_species WHERE event_id = NEW.id')}
           END""",
        f"""CREATE TRIGGER IF NOT EXISTS hourly_visits_event_out AFTER DELETE ON events BEGIN
               {_remove(old_start, 'SELECT species FROM event_species WHERE event_id = OLD.id')}
           END""",
    ]
    for statement in statements:
        conn.execute(statement)
    conn.execute(f"DELETE FROM {TABLE}")
    conn.execute(f"""INSERT INTO {TABLE} (hour, species, visits)
                     SELECT substr(e.started_at, 1, 13), s.species, COUNT(*)
                       FROM event_species AS s JOIN events AS e ON e.id = s.event_id
                      GROUP BY 1, 2""")


def present(conn: Any) -> bool:
    """Whether the database keeps the hourly tallies (schema 6 as released; a development
    database of schema 6 made before them reads the events instead)."""
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (TABLE,)).fetchone() is not None
