"""Hourly visit tallies: `hourly_visits`, kept by SQLite triggers so that no writer can miss them.

The web app's heatmap and hour-of-day chart count, per species, the visits that count it
(`event_species` joined to `events`) by the hour of the visit's start. Counting a year of a busy
station from the events is 200,000 rows per page (0.44 s at 10^6 frames); this table holds the
same count per UTC hour and species (13 ms).

Why triggers and not the writer's Python: the count moves whenever `event_species` is rewritten
(every frame's and every review's recount: edge/store/counts.py, from the daemon's Store and the
web app's ReviewStore), whenever an event's start moves (a later frame that is earlier, `edge clock
correct`), and whenever an event row goes (none does today; a future housekeeping might). Triggers
on both tables keep it equal to the events' count whichever code path, present or future, writes,
in the writer's own transaction. The rule they keep:

    hourly_visits(day, species).h<H>
        = COUNT(*) FROM event_species s JOIN events e ON e.id = s.event_id
          WHERE substr(e.started_at, 1, 13) = day || 'T' || <H, two digits> AND s.species = species

One row per UTC day of the visits' start (`2026-11-28`, the first 10 characters of the database's
one time format) and species, with 24 columns h0..h23 (the UTC hour of the start): a year of 25
species is 9,000 rows, summed in a few milliseconds; one row per hour was 100,000 rows (150 ms).
A row whose visits fell back to 0 is kept; readers skip zeros.
"""

from __future__ import annotations

from typing import Any

from edge.store.tables import has_table

TABLE = "hourly_visits"
HOURS = tuple(f"h{hour}" for hour in range(24))


def _shift(day: str, hour: str, species_select: str, delta: int) -> str:
    """SQL moving the (day, species) rows of `species_select` (which yields `species`) by `delta`
    visits in the column of `hour`; `day` and `hour` are SQL expressions (NULL day: nothing)."""
    # The hour's column is picked by 24 comparisons in one row-value SET (SQLite 3.15+): no
    # dynamic column names in a trigger. `WHERE ... IS NOT NULL` also keeps SQLite's parser from
    # reading ON CONFLICT as a join constraint.
    sums = ", ".join(f"{TABLE}.{column} + {delta} * (x.h = {index})" for index, column in enumerate(HOURS))
    update = (f"UPDATE {TABLE} SET ({', '.join(HOURS)}) = (SELECT {sums} FROM (SELECT {hour} AS h) AS x) "
              f"WHERE day = {day} AND species IN ({species_select});")
    if delta < 0:
        return update
    return (f"INSERT INTO {TABLE} (day, species) SELECT {day}, species FROM ({species_select}) WHERE {day} IS NOT NULL "
            f"ON CONFLICT (day, species) DO NOTHING; {update}")


def create_tables(conn: Any) -> None:
    """Schema 6's `hourly_visits`, its triggers, and the tally of the rows already there (the
    migration's backfill; run after `event_species` is filled, inside the caller's transaction)."""
    day_of, hour_of = "substr({}, 1, 10)", "CAST(substr({}, 12, 2) AS INTEGER)"
    event_day = "(SELECT substr(started_at, 1, 10) FROM events WHERE id = {})"
    event_hour = "(SELECT CAST(substr(started_at, 12, 2) AS INTEGER) FROM events WHERE id = {})"
    new_species = "SELECT NEW.species AS species"
    old_species = "SELECT OLD.species AS species"
    statements = [
        f"""CREATE TABLE IF NOT EXISTS {TABLE} (
               day TEXT NOT NULL,
               species TEXT NOT NULL,
               {', '.join(f'{column} INTEGER NOT NULL DEFAULT 0' for column in HOURS)},
               PRIMARY KEY (day, species)
           ) WITHOUT ROWID""",
        # A species a visit counts (event_species row) counts in the hour its event starts; a row
        # whose event is not there (yet) counts nothing, as in the join the heatmap made.
        f"""CREATE TRIGGER IF NOT EXISTS hourly_visits_species_in AFTER INSERT ON event_species BEGIN
               {_shift(event_day.format('NEW.event_id'), event_hour.format('NEW.event_id'), new_species, 1)}
           END""",
        f"""CREATE TRIGGER IF NOT EXISTS hourly_visits_species_out AFTER DELETE ON event_species BEGIN
               {_shift(event_day.format('OLD.event_id'), event_hour.format('OLD.event_id'), old_species, -1)}
           END""",
        f"""CREATE TRIGGER IF NOT EXISTS hourly_visits_species_changed AFTER UPDATE OF event_id, species ON event_species
           BEGIN
               {_shift(event_day.format('OLD.event_id'), event_hour.format('OLD.event_id'), old_species, -1)}
               {_shift(event_day.format('NEW.event_id'), event_hour.format('NEW.event_id'), new_species, 1)}
           END""",
        # An event's start moved to another hour (an earlier frame joined it, a clock correction):
        # its species move with it. Checked at every frame (the writer sets started_at each time).
        f"""CREATE TRIGGER IF NOT EXISTS hourly_visits_event_moved AFTER UPDATE OF started_at ON events
               WHEN substr(OLD.started_at, 1, 13) IS NOT substr(NEW.started_at, 1, 13) BEGIN
               {_shift(day_of.format('OLD.started_at'), hour_of.format('OLD.started_at'),
                       'SELECT species FROM event_species WHERE event_id = OLD.id', -1)}
               {_shift(day_of.format('NEW.started_at'), hour_of.format('NEW.started_at'),
                       'SELECT species FROM event_species WHERE event_id = NEW.id', 1)}
           END""",
        # An event row inserted or deleted: the event_species rows it has (none, on the writer's
        # path, which inserts the event first) start or stop counting.
        f"""CREATE TRIGGER IF NOT EXISTS hourly_visits_event_in AFTER INSERT ON events BEGIN
               {_shift(day_of.format('NEW.started_at'), hour_of.format('NEW.started_at'),
                       'SELECT species FROM event_species WHERE event_id = NEW.id', 1)}
           END""",
        f"""CREATE TRIGGER IF NOT EXISTS hourly_visits_event_out AFTER DELETE ON events BEGIN
               {_shift(day_of.format('OLD.started_at'), hour_of.format('OLD.started_at'),
                       'SELECT species FROM event_species WHERE event_id = OLD.id', -1)}
           END""",
    ]
    for statement in statements:
        conn.execute(statement)
    conn.execute(f"DELETE FROM {TABLE}")
    hour = "CAST(substr(e.started_at, 12, 2) AS INTEGER)"
    conn.execute(f"""INSERT INTO {TABLE} (day, species, {', '.join(HOURS)})
                     SELECT substr(e.started_at, 1, 10), s.species,
                            {', '.join(f'SUM({hour} = {index})' for index in range(24))}
                       FROM event_species AS s JOIN events AS e ON e.id = s.event_id
                      GROUP BY 1, 2""")


def visits(conn: Any, start: str, end: str, species: str | None = None) -> list[tuple[str, int, int]]:
    """(species, UTC hour of day, visits) of the visits starting in [start, end), two UTC times
    on whole hours (`2026-03-29T01:00:00.000Z`): the whole days between summed in SQL, the partial
    days at either end read row by row (a few rows each)."""
    first_day, first_hour = start[:10], int(start[11:13])
    end_day, end_hour = end[:10], int(end[11:13])
    only = "" if species is None else " AND species = ?"
    named: tuple[str, ...] = () if species is None else (species,)
    found: list[tuple[str, int, int]] = []

    def day_rows(day: str, low: int, high: int) -> None:
        for row in conn.execute(f"SELECT species, {', '.join(HOURS)} FROM {TABLE} WHERE day = ?{only}", (day, *named)):
            found.extend((row[0], hour, int(row[1 + hour])) for hour in range(low, high))

    if first_day == end_day:
        day_rows(first_day, first_hour, end_hour)
        return found
    day_rows(first_day, first_hour, 24)
    if end_hour:
        day_rows(end_day, 0, end_hour)
    for row in conn.execute(f"""SELECT species, {', '.join(f'SUM({column})' for column in HOURS)} FROM {TABLE}
                                WHERE day > ? AND day < ?{only} GROUP BY species""", (first_day, end_day, *named)):
        found.extend((row[0], hour, int(row[1 + hour])) for hour in range(24))
    return found


def present(conn: Any) -> bool:
    """Whether the database keeps the hourly tallies (schema 6 as released; a development
    database of schema 6 made before them reads the events instead)."""
    return has_table(conn, TABLE)
