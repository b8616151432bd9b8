"""`edge counts` and `edge events` against the central database: the same rows as a device's own.

The central schema (edge/fleet/schema.py) keeps one row per event per device, as the device
last published it (species and individuals after its review), and each device's own day
tallies (`day_counts`). These readers give exactly the rows edge/store/queries.py gives from
the device's SQLite file, with the same columns and the same period rules:

- hours and days are each device's own station zone: `devices.timezone` (from its `info`
  message), else the zone its latest event carries; `--timezone` overrides it as on the device;
- `--since`/`--until` are local to that zone too, so a fleet-wide report (no `--device`) asks
  every device about its own local day;
- events and individuals are counted from each event's per-species rows (`event_species`: a
  visit counts once for every species it counts, with that species' MaxN; each visit on its
  start's local day, rejected visits not at all, corrections under the corrected species), which
  is what the device's `daily_tallies` hold; a central database of schema 1 (not yet migrated by
  a collector) counts each event's own species; frames exist centrally only as the devices' day tallies, so
  `--frames` works by day or in total over whole days, and not with `--camera` (the tallies
  are per device).

One difference that cannot be helped: events that start at the same instant on one device
are ordered by uid here, by insertion there.

psycopg is imported only to open a PostgreSQL URL (edge/fleet/db.py), so this module imports
on a Pi without it.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from edge.store.queries import ReportError, ReportRows, TimeBound, parse_bound, period_key
from edge.store.times import format_utc, parse_utc
from fleet.db import CentralDbError, Engine, connect, engine_of, redact
from fleet.schema import schema_version


def is_central(db: str | Path) -> bool:
    """A postgresql:// URL, or a SQLite file holding the central schema (its `central_meta`
    table); a device's own database has `meta` instead."""
    if engine_of(db) == "postgresql":
        return True
    path = Path(db)
    if not path.is_file():
        return False
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'central_meta'").fetchone() is not None
        finally:
            conn.close()
    except sqlite3.Error:
        return False


class CentralReader:
    """A read-only session on the central database (either engine)."""

    def __init__(self, db: str | Path, *, busy_timeout_s: float = 30.0) -> None:
        self.engine: Engine = engine_of(db)
        self.name = redact(db)
        self.conn = connect(db, busy_timeout_s=busy_timeout_s)
        if schema_version(self.conn, self.engine) is None:
            self.close()
            raise CentralDbError(f"{self.name}: not a trailcam central database (no central_meta)")
        self.mark = "%s" if self.engine == "postgresql" else "?"
        # Schema 2 keeps what each event counts per species; schema 1 only the event's species.
        self.per_species = (schema_version(self.conn, self.engine) or 0) >= 2

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> CentralReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers ------------------------------------------------------------------------------

    def _read(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        cursor = self.conn.execute(sql.replace("?", self.mark), tuple(params))
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]

    def _moment(self, value: datetime) -> Any:
        """A UTC bound as the engine compares it: timestamptz, or the stored text format."""
        return value if self.engine == "postgresql" else format_utc(value)

    def _day(self, text: str) -> Any:
        return date.fromisoformat(text) if self.engine == "postgresql" else text

    def devices(self, device: str | None) -> list[str]:
        """The devices a report covers: the one asked for (it must exist), else all with events
        or day counts."""
        if device is not None:
            found = self._read("SELECT 1 AS x FROM devices WHERE device = ? UNION SELECT 1 AS x FROM events "
                               "WHERE device = ?", [device, device])
            if not found:
                raise ReportError(f"--device: no device {device!r} in {self.name}")
            return [device]
        rows = self._read("SELECT device FROM devices UNION SELECT DISTINCT device FROM events "
                          "UNION SELECT DISTINCT device FROM day_counts", [])
        return sorted({r["device"] for r in rows})

    def zone(self, device: str) -> ZoneInfo:
        """The device's station zone: its info's, else its latest event's, else UTC."""
        rows = self._read("SELECT timezone FROM devices WHERE device = ?", [device])
        name = rows[0]["timezone"] if rows else None
        if not name:
            rows = self._read("SELECT timezone FROM events WHERE device = ? AND timezone IS NOT NULL "
                              "ORDER BY started_at DESC LIMIT 1", [device])
            name = rows[0]["timezone"] if rows else None
        try:
            return ZoneInfo(name) if name else ZoneInfo("UTC")
        except (ZoneInfoNotFoundError, ValueError):
            return ZoneInfo("UTC")

    def _bounds(self, since: str | None, until: str | None, zone: ZoneInfo) -> tuple[TimeBound | None, TimeBound | None]:
        return (parse_bound(since, zone, end=False) if since else None,
                parse_bound(until, zone, end=True) if until else None)

    def _event_where(self, device: str, lower: TimeBound | None, upper: TimeBound | None, camera: str | None,
                     species: str | None, species_clause: str = "species = ?") -> tuple[str, list[Any]]:
        clauses, params = ["device = ?"], [device]
        for clause, value in (("started_at >= ?", self._moment(lower.moment) if lower else None),
                              ("started_at < ?", self._moment(upper.moment) if upper else None),
                              ("camera = ?", camera), (species_clause, species)):
            if value:
                clauses.append(clause)
                params.append(value)
        return " WHERE " + " AND ".join(clauses), params

    # -- reports ------------------------------------------------------------------------------

    def counts(self, *, device: str | None = None, by: Literal["hour", "day", "total"] = "day",
               unit: Literal["events", "frames", "individuals"] = "events", since: str | None = None,
               until: str | None = None, camera: str | None = None, species: str | None = None,
               zone: ZoneInfo | None = None) -> list[dict[str, Any]]:
        """Rows {period, species, <unit>} as edge.store.queries.counts gives them, summed over
        the devices covered (each in its own zone)."""
        totals: dict[tuple[str, str], int] = defaultdict(int)
        for name in self.devices(device):
            station = self.zone(name)
            report_zone = zone or station
            lower, upper = self._bounds(since, until, report_zone)
            if unit == "frames":
                self._frames(name, by, lower, upper, camera, species, report_zone, station, totals)
                continue
            where, params = self._event_where(name, lower, upper, camera, species)
            weight = "individuals" if unit == "individuals" else "1"
            for row in self._read(f"SELECT started_at AS at, species, {weight} AS n FROM {self._visits()}{where} "
                                  "AND species IS NOT NULL", params):
                totals[(period_key(_utc(row["at"]).astimezone(report_zone), by), row["species"])] += int(row["n"])
        return [{"period": p, "species": s, unit: n} for (p, s), n in sorted(totals.items()) if n > 0]

    def _visits(self) -> str:
        """One row per (event, species it counts): the event's device, time and camera with that
        species and its individuals (MaxN); schema 1: the events themselves."""
        if not self.per_species:
            return "events"
        return ("(SELECT e.device AS device, e.started_at AS started_at, e.camera AS camera, s.species AS species, "
                "s.individuals AS individuals FROM event_species s JOIN events e ON e.device = s.device "
                "AND e.uid = s.uid) AS visits")

    def species_counts(self, device: str, uids: list[str]) -> dict[str, list[dict[str, Any]]]:
        """uid → what the event counts per species ({species, individuals, frames}), most individuals
        first, as edge.store.queries.species_counts_of gives them on the device."""
        found: dict[str, list[dict[str, Any]]] = defaultdict(list)
        if not self.per_species:
            return found
        for start in range(0, len(uids), 500):
            chunk = uids[start:start + 500]
            for row in self._read(
                    f"SELECT uid, species, individuals, frames FROM event_species WHERE device = ? AND uid IN "
                    f"({', '.join('?' * len(chunk))}) ORDER BY uid, individuals DESC, frames DESC, species",
                    [device, *chunk]):
                found[row["uid"]].append({"species": row["species"], "individuals": int(row["individuals"]),
                                          "frames": int(row["frames"])})
        return found

    def _frames(self, device: str, by: str, lower: TimeBound | None, upper: TimeBound | None, camera: str | None,
                species: str | None, zone: ZoneInfo, station: ZoneInfo,
                totals: dict[tuple[str, str], int]) -> None:
        """Frames from the device's own day tallies: whole station-local days only."""
        whole_days = (lower is None or lower.date_only) and (upper is None or upper.date_only)
        if by == "hour" or not whole_days or zone.key != station.key or camera:
            raise ReportError("--frames: the central database keeps each device's frames as day totals only: "
                              "use --by day or total, whole-day --since/--until, the station's zone and no --camera "
                              "(or ask the device's own database)")
        clauses, params = ["device = ?"], [device]
        for clause, value in (("day >= ?", self._day(lower.day) if lower else None),
                              ("day <= ?", self._day(upper.day) if upper else None), ("species = ?", species)):
            if value:
                clauses.append(clause)
                params.append(value)
        for row in self._read(f"SELECT day, species, frames FROM day_counts WHERE {' AND '.join(clauses)}", params):
            key = str(row["day"]) if by == "day" else "total"
            totals[(key, row["species"])] += int(row["frames"])

    def events(self, *, device: str | None = None, since: str | None = None, until: str | None = None,
               camera: str | None = None, species: str | None = None, limit: int | None = 100,
               zone: ZoneInfo | None = None) -> ReportRows:
        """The newest `limit` events first, rows as edge.store.queries.events gives them (plus
        `device`), each device's times in its own zone."""
        rows: list[dict[str, Any]] = []
        total = 0
        limited = limit is not None and limit > 0
        for name in self.devices(device):
            report_zone = zone or self.zone(name)
            lower, upper = self._bounds(since, until, report_zone)
            # --species: the events that count that species (any of their species, schema 2).
            where, params = self._event_where(
                name, lower, upper, camera, species,
                "uid IN (SELECT uid FROM event_species WHERE device = events.device AND species = ?)"
                if self.per_species else "species = ?")
            # Each device's newest `limit` (the merge below keeps the newest overall), and its count.
            tail = " ORDER BY started_at DESC, uid DESC LIMIT ?" if limited else ""
            found = self._read(
                "SELECT device, uid, camera, species, individuals, confidence, started_at, ended_at, frame_count, "
                f"change, model_id, review, model_species FROM events{where}{tail}",
                params + ([limit] if limited else []))
            per_event = self.species_counts(name, [row["uid"] for row in found])
            total += (int(self._read(f"SELECT COUNT(*) AS n FROM events{where}", params)[0]["n"])
                      if limited and len(found) == limit else len(found))
            for row in found:
                started, ended = _utc(row["started_at"]), _utc(row["ended_at"])
                row.update(started_at=format_utc(started), ended_at=format_utc(ended),
                           state="closed" if row.pop("change") == "end" else "open", snapshot=None,
                           start_local=started.astimezone(report_zone).isoformat(timespec="seconds"),
                           end_local=ended.astimezone(report_zone).isoformat(timespec="seconds"),
                           confidence=None if row["confidence"] is None else round(float(row["confidence"]), 4))
                if self.per_species:
                    row["species_counts"] = per_event.get(row["uid"], [])
                rows.append(row)
        rows.sort(key=lambda r: (r["started_at"], r["device"], r["uid"]), reverse=True)
        return ReportRows(rows[:limit] if limited else rows, total)


def _utc(value: Any) -> datetime:
    """A stored time (timestamptz from PostgreSQL, ISO text from SQLite) as an aware UTC datetime."""
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return parse_utc(str(value))
