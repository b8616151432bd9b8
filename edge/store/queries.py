"""Read-only queries for operators: counts, events, frames (rows; edge/cli/tables.py renders them).

Each report runs in one read transaction on its own connection, so it sees one consistent
snapshot while the daemon keeps writing (WAL: readers never wait for the writer). Hour and day
boundaries are the station's time zone (stored in `meta` by the daemon); times are stored UTC.

Daily counts come from `daily_tallies`, which are kept forever (frame rows may be pruned);
hourly counts come from the events and frames tables.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import sqlite_utils

from edge.store.counts import counts_by_event, headline
from edge.store.db import standing_error_sql
from edge.store.reviews import COUNTED_INDIVIDUALS_SQL, COUNTED_SPECIES_SQL
from edge.store.times import format_utc, parse_utc


class ReportError(ValueError):
    """A bad report argument (the CLI exits 2)."""


@dataclass(frozen=True)
class TimeBound:
    """A --since/--until value: a local date (whole day) or a local date-time."""

    moment: datetime  # aware, UTC
    day: str  # local date it falls on (for day-granular tallies)
    date_only: bool


def parse_bound(text: str, zone: ZoneInfo, *, end: bool) -> TimeBound:
    """`2026-11-28` (a whole local day; --until includes it) or `2026-11-28T06:00` (local, or with offset)."""
    text = text.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            local = datetime.combine(day + timedelta(days=1) if end else day, time(), tzinfo=zone)
            return TimeBound(local.astimezone(UTC), day.isoformat(), True)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ReportError(f"{text!r} is not a date (YYYY-MM-DD) or date-time (YYYY-MM-DDTHH:MM)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return TimeBound(moment.astimezone(UTC), moment.astimezone(zone).date().isoformat(), False)


def station_zone(db: sqlite_utils.Database, override: str | None = None) -> ZoneInfo:
    if override:
        return ZoneInfo(override)
    row = db.execute("SELECT value FROM meta WHERE key = 'timezone'").fetchone()
    return ZoneInfo(row[0]) if row and row[0] else ZoneInfo("UTC")


def _read(db: sqlite_utils.Database, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    cursor = db.conn.execute(sql, tuple(params))
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


class _Snapshot:
    """One read transaction: every query inside sees the same committed state."""

    def __init__(self, db: sqlite_utils.Database):
        self.conn = db.conn

    def __enter__(self) -> None:
        if not self.conn.in_transaction:
            self.conn.execute("BEGIN")

    def __exit__(self, *exc: object) -> None:
        if self.conn.in_transaction:
            self.conn.execute("COMMIT")


def _where(*conditions: tuple[str, Any], fixed: Sequence[str] = ()) -> tuple[str, list[Any]]:
    """` WHERE ...` over the fixed clauses and each `(clause, value)` whose value is given
    (an option left out is None or empty), with the values as the query's parameters."""
    given = [(clause, value) for clause, value in conditions if value]
    clauses = [*fixed, *(clause for clause, _ in given)]
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", [value for _, value in given]


def _bounds(since: str | None, until: str | None, zone: ZoneInfo) -> tuple[TimeBound | None, TimeBound | None]:
    """--since and --until, each None when not given."""
    return (parse_bound(since, zone, end=False) if since else None,
            parse_bound(until, zone, end=True) if until else None)


def _utc(bound: TimeBound | None) -> str | None:
    return format_utc(bound.moment) if bound else None


def _has(db: sqlite_utils.Database, table: str, column: str) -> bool:
    """Whether `table` has `column`: a database of an older schema (read before the daemon's
    first start after an upgrade migrated it) lacks the newer columns, and the reports fill in
    what they meant then (one bird per event, no detections)."""
    return any(row[1] == column for row in db.conn.execute(f"PRAGMA table_info({table})"))


def period_key(local: datetime, by: str) -> str:
    """The `period` of a report row for a station-local instant: its hour, its day, or "total"."""
    if by == "hour":
        return local.replace(minute=0, second=0, microsecond=0).isoformat(timespec="minutes")
    if by == "day":
        return local.date().isoformat()
    return "total"


def counts(
    db: sqlite_utils.Database,
    *,
    by: Literal["hour", "day", "total"] = "day",
    unit: Literal["events", "frames", "individuals"] = "events",
    since: str | None = None,
    until: str | None = None,
    camera: str | None = None,
    species: str | None = None,
    zone: ZoneInfo | None = None,
) -> list[dict[str, Any]]:
    """Rows {period, species, <unit>} sorted by period then species; `period` is the local day,
    the local hour (`2026-11-28T06:00+01:00`) or "total". `individuals` sums each visit's most
    birds in one frame (MaxN; 1 per visit for frames classified whole), by the visit's start."""
    station = station_zone(db)
    zone = zone or station
    lower, upper = _bounds(since, until, zone)
    # Tallies are bucketed by the station's local day: usable when the report uses that zone.
    whole_days = (lower is None or lower.date_only) and (upper is None or upper.date_only)
    with _Snapshot(db):
        # Before schema 3 every event was one bird.
        tally_unit = unit if unit != "individuals" or _has(db, "daily_tallies", "individuals") else "events"
        if by in ("day", "total") and whole_days and zone.key == station.key:
            where, params = _where(
                ("day >= ?", lower.day if lower else None), ("day <= ?", upper.day if upper else None),
                ("camera = ?", camera), ("species = ?", species),
            )
            period = "day" if by == "day" else "'total'"
            rows = _read(
                db,
                f"""SELECT {period} AS period, species, SUM({tally_unit}) AS n FROM daily_tallies{where}
                    GROUP BY 1, species HAVING SUM({tally_unit}) > 0 ORDER BY 1, species""",
                params,
            )
            return [{"period": r["period"], "species": r["species"], unit: int(r["n"])} for r in rows]
        # Hourly (or bounded by a time of day): from the rows themselves.
        reviewed = _has(db, "events", "review_state")
        if unit in ("events", "individuals") and _has(db, "event_species", "species"):
            # What each visit counts, per species, after its reviews (edge/store/events.py).
            label = "species"
            table, column, extra = f"({PER_SPECIES_VISITS})", "started_at", []
            weight = "individuals" if unit == "individuals" else "1"
        elif unit in ("events", "individuals"):
            # What each visit counts as after its review (edge/store/reviews.py).
            label = f"({COUNTED_SPECIES_SQL})" if reviewed else "species"
            table, column, extra = "events", "started_at", [f"{label} IS NOT NULL"]
            if unit == "individuals" and _has(db, "events", "individuals"):
                weight = COUNTED_INDIVIDUALS_SQL if reviewed else "individuals"
            else:
                weight = "1"
        else:
            label = "species"
            table, column, extra = "frames", "captured_at", ["status = 'ok'", "species IS NOT NULL"]
            weight = "1"
        where, params = _where(
            (f"{column} >= ?", _utc(lower)), (f"{column} < ?", _utc(upper)),
            ("camera = ?", camera), (f"{label} = ?", species),
            fixed=extra,
        )
        rows = _read(db, f"SELECT {column} AS at, {label} AS species, {weight} AS n FROM {table}{where}", params)
    totals: dict[tuple[str, str], int] = defaultdict(int)
    for row in rows:
        totals[(period_key(parse_utc(row["at"]).astimezone(zone), by), row["species"])] += int(row["n"])
    return [{"period": p, "species": s, unit: n} for (p, s), n in sorted(totals.items()) if n > 0]


# One row per (visit, species it counts): the visit's time and camera with that species' MaxN.
PER_SPECIES_VISITS = ("SELECT e.id AS id, e.started_at AS started_at, e.camera AS camera, s.species AS species, "
                      "s.individuals AS individuals FROM event_species AS s JOIN events AS e ON e.id = s.event_id")


def species_counts_of(db: sqlite_utils.Database, event_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    """event id → what the visit counts per species ({species, individuals, frames}), most
    individuals first; {} for a database older than schema 6."""
    if not event_ids or not _has(db, "event_species", "species"):
        return {}
    return counts_by_event(db.conn, event_ids)


def _local(text: str | None, zone: ZoneInfo) -> str | None:
    return parse_utc(text).astimezone(zone).isoformat(timespec="seconds") if text else None


class ReportRows(list):
    """A report's rows (a plain list to every caller) plus how many matched in all.

    `events` and `frames` show the newest `limit` rows; `total` is counted in the same snapshot,
    so `left_out` is exact and the CLI can say how many rows a limit hid instead of silently
    stopping at it.
    """

    def __init__(self, rows: list[dict[str, Any]], total: int) -> None:
        super().__init__(rows)
        self.total = total

    @property
    def left_out(self) -> int:
        return max(0, self.total - len(self))


def _limited(db: sqlite_utils.Database, select: str, source: str, order: str, params: list[Any],
             limit: int | None) -> ReportRows:
    """`SELECT <select> FROM <source> ORDER BY <order>` with LIMIT `limit` (None or <= 0: all rows),
    and the number of rows that match without the limit, both in one read transaction."""
    with _Snapshot(db):
        if limit is not None and limit > 0:
            rows = _read(db, f"SELECT {select} FROM {source} ORDER BY {order} LIMIT ?", [*params, limit])
            total = len(rows)
            if total == limit:
                total = int(db.conn.execute(f"SELECT COUNT(*) FROM {source}", tuple(params)).fetchone()[0])
        else:
            rows = _read(db, f"SELECT {select} FROM {source} ORDER BY {order}", params)
            total = len(rows)
    return ReportRows(rows, total)


def events(
    db: sqlite_utils.Database, *, since: str | None = None, until: str | None = None, camera: str | None = None,
    species: str | None = None, limit: int | None = 100, zone: ZoneInfo | None = None,
) -> ReportRows:
    """The most recent `limit` events first (None or 0: all), with local start and end times."""
    zone = zone or station_zone(db)
    lower, upper = _bounds(since, until, zone)
    reviewed = _has(db, "events", "review_state")
    per_species = _has(db, "event_species", "species")
    label = f"({COUNTED_SPECIES_SQL})" if reviewed else "species"
    # --species: the visits that count that species (any of their species, schema 6).
    species_clause = "id IN (SELECT event_id FROM event_species WHERE species = ?)" if per_species else f"{label} = ?"
    where, params = _where(
        ("started_at >= ?", _utc(lower)), ("started_at < ?", _utc(upper)),
        ("camera = ?", camera), (species_clause, species),
    )
    if reviewed:  # species: what the visit counts as; model_species: what the model said
        columns = (f"id, uid, camera, {label} AS species, {COUNTED_INDIVIDUALS_SQL} AS individuals, confidence, "
                   "started_at, ended_at, frame_count, state, model_id, snapshot, review_state AS review, "
                   "species AS model_species")
    elif _has(db, "events", "individuals"):
        columns = ("uid, camera, species, individuals, confidence, started_at, ended_at, frame_count, state, model_id, "
                   "snapshot, NULL AS review, species AS model_species")
    else:
        columns = ("uid, camera, species, 1 AS individuals, confidence, started_at, ended_at, frame_count, state, "
                   "model_id, NULL AS snapshot, NULL AS review, species AS model_species")
    rows = _limited(db, columns, f"events{where}", "started_at DESC, id DESC", params, limit)
    per_event = species_counts_of(db, [int(row["id"]) for row in rows if "id" in row])
    for row in rows:
        event_id = row.pop("id", None)
        if per_species:
            # species: the headline (what the visit counts as first); individuals: its MaxN;
            # species_counts: every species the visit counts, each with its own MaxN.
            listed = per_event.get(int(event_id), []) if event_id is not None else []
            row["species_counts"] = listed
            row["species"] = headline(row["species"], listed)
            row["individuals"] = next((c["individuals"] for c in listed if c["species"] == row["species"]),
                                      0 if row["species"] is None else row["individuals"])
        row["start_local"] = _local(row["started_at"], zone)
        row["end_local"] = _local(row["ended_at"], zone)
        row["confidence"] = None if row["confidence"] is None else round(row["confidence"], 4)
    return rows


def frames(
    db: sqlite_utils.Database, *, errors: bool = False, since: str | None = None, until: str | None = None,
    camera: str | None = None, limit: int | None = 100, zone: ZoneInfo | None = None, by_processed: bool = False,
) -> ReportRows:
    """The most recently processed `limit` frames first (None or 0: all; standing errors only
    with `errors=True`). `since`/`until` bound the capture time, the time a frame is counted
    under; an error row has none and is bounded by its processing time, as every row is with
    `by_processed=True`."""
    zone = zone or station_zone(db)
    lower, upper = _bounds(since, until, zone)
    # An error that a later row at its path replaced is no error any more: `--errors` leaves it
    # out, and the full listing shows it as `superseded`.
    standing, _retrying = standing_error_sql(db.conn)
    at = "processed_at" if by_processed else "COALESCE(captured_at, processed_at)"
    where, params = _where(
        (f"{at} >= ?", _utc(lower)), (f"{at} < ?", _utc(upper)),
        ("camera = ?", camera),
        fixed=[standing] if errors else [],
    )
    status = f"CASE WHEN status = 'error' AND NOT {standing} THEN 'superseded' ELSE status END AS status"
    birds = "birds" if _has(db, "frames", "birds") else "NULL AS birds"
    # Where the capture time came from (exif, exif-local, mtime, ...) and what is doubtful about it.
    flags = "time_flags" if _has(db, "frames", "time_flags") else "NULL AS time_flags"
    # An infrared night frame (1), a day frame (0), not known (NULL: error rows, older rows).
    night = "night" if _has(db, "frames", "night") else "NULL AS night"
    rows = _limited(db, f"""id, path, camera, {status}, error, species, confidence, {birds}, captured_at, time_source,
                   {flags}, {night}, processed_at, inference_ms, model_id""", f"frames{where}", "processed_at DESC, id DESC",
                    params, limit)
    for row in rows:
        row["captured_local"] = _local(row["captured_at"], zone)
        if row["confidence"] is not None:
            row["confidence"] = round(row["confidence"], 4)
        if row["inference_ms"] is not None:
            row["inference_ms"] = round(row["inference_ms"], 1)
    return rows


# -- what one run did (`edge run --once`'s summary line) and frames that share one file time --


def run_figures(db: sqlite_utils.Database, frame_ids: Sequence[int]) -> dict[str, int]:
    """What the counted frames `frame_ids` (ok rows) add up to: {visits, species, birds,
    from_files, flagged}. visits: the visits they joined; species: the species those visits
    count (`event_species`, `unknown` left out); birds: the visits' per-species individuals
    (MaxN) summed, unknown birds included; from_files: frames whose time is the file's
    (`time_source = 'mtime'`); flagged: frames whose time is doubtful (`time_flags`)."""
    flagged_sql = "time_flags IS NOT NULL" if _has(db, "frames", "time_flags") else "0"
    events: set[int] = set()
    from_files = flagged = 0
    for start in range(0, len(frame_ids), 500):
        chunk = list(frame_ids[start:start + 500])
        marks = ",".join("?" * len(chunk))
        for event_id, source, doubtful in db.conn.execute(
                f"SELECT event_id, time_source, {flagged_sql} FROM frames WHERE id IN ({marks})", chunk):
            if event_id is not None:
                events.add(int(event_id))
            from_files += source == "mtime"
            flagged += bool(doubtful)
    species: set[str] = set()
    birds = 0
    for counted in species_counts_of(db, sorted(events)).values():
        for entry in counted:
            birds += entry["individuals"]
            if entry["species"] != "unknown":
                species.add(entry["species"])
    return {"visits": len(events), "species": len(species), "birds": birds, "from_files": from_files,
            "flagged": flagged}


# Frames of one camera whose times are the file's and lie this close together ...
SHARED_FILE_TIME_S = 2.0
# ... this many of them at least: a copy that set every file's time to the moment it was copied
# (`cp` without -p), not a camera's burst (a few frames, about a second apart).
SHARED_FILE_TIME_FRAMES = 10


@dataclass(frozen=True)
class SharedFileTime:
    """Frames of one camera that got their time from the file (no EXIF time) and share one."""

    camera: str
    frames: int  # in the tightest cluster: within SHARED_FILE_TIME_S of its first
    from_files: int  # of the camera's frames looked at, how many took the file's time
    first_at: str  # UTC, the cluster's first file time
    visits: int  # the visits the cluster's frames are in


def shared_file_times(db: sqlite_utils.Database, frame_ids: Sequence[int], *,
                      window_s: float = SHARED_FILE_TIME_S,
                      at_least: int = SHARED_FILE_TIME_FRAMES) -> list[SharedFileTime]:
    """Per camera, the largest cluster of `frame_ids` whose capture time is their file's
    modification time (`time_source = 'mtime'`) and lies within `window_s` seconds, when it has
    `at_least` frames: files copied without keeping their times, one visit where there were many."""
    by_camera: dict[str, list[tuple[float, int | None]]] = defaultdict(list)
    for start in range(0, len(frame_ids), 500):
        chunk = list(frame_ids[start:start + 500])
        marks = ",".join("?" * len(chunk))
        for camera, mtime, event_id in db.conn.execute(
                f"""SELECT camera, mtime, event_id FROM frames
                    WHERE id IN ({marks}) AND time_source = 'mtime' AND mtime IS NOT NULL""", chunk):
            by_camera[camera].append((float(mtime), event_id))
    found = []
    for camera, times in sorted(by_camera.items()):
        times.sort(key=lambda t: t[0])
        best, best_start, low = 0, 0, 0
        for high in range(len(times)):  # the widest run of times within the window (two pointers)
            while times[high][0] - times[low][0] > window_s:
                low += 1
            if high - low + 1 > best:
                best, best_start = high - low + 1, low
        if best >= at_least:
            cluster = times[best_start:best_start + best]
            found.append(SharedFileTime(
                camera, best, len(times), format_utc(datetime.fromtimestamp(cluster[0][0], UTC)),
                len({event for _, event in cluster if event is not None})))
    return found
