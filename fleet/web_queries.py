"""The page queries of `edge web` over the central database: the fleet view (docs/web.md,
"The fleet view").

Every figure is one of edge/fleet/reports.py's CentralReader answers (the same rows `edge
counts` / `edge events` print), so the dashboard of one device equals `edge counts` on that
device's own SQLite file. The time-zone rule is CentralReader's: each device in its own
station zone. For one device that is simply its zone. For the whole fleet:

- a day (the dashboard's, a period's bounds, the species page's per-day bars) is each device's
  own local day of that date, summed over the devices;
- an hour of day (heatmap, hour-of-day bars) is each device's own local hour: 06:00 means dawn
  at every feeder, which is what a fleet-wide "when are they active" asks;
- "today" (the default day) is today in UTC; times in the events list carry their device's
  offset.

Only what reaches the center exists here: events (as their device last published them, reviews
applied), the devices' day tallies and the devices table. Frames, detections, pictures and the
review queue never leave a device, so nothing here offers them.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fleet.devices import read_devices
from fleet.reports import CentralReader


class FleetReader(CentralReader):
    """One read-only session on the central database for one device (`device`) or the fleet."""

    def __init__(self, db: str | Path, device: str | None = None, *, busy_timeout_s: float = 30.0) -> None:
        super().__init__(db, busy_timeout_s=busy_timeout_s)
        try:
            self.covered = self.devices(device)  # ReportError for a device the database never heard of
        except BaseException:
            self.close()
            raise
        self.device = device
        self.zone_of_view: ZoneInfo = self.zone(device) if device else ZoneInfo("UTC")

    # ----- days --------------------------------------------------------------------------------
    def today(self) -> date:
        """Today in the device's zone; for the fleet, today in UTC."""
        return datetime.now(self.zone_of_view).date()

    def _counts(self, **query: Any) -> list[dict[str, Any]]:
        return self.counts(device=self.device, **query)

    # ----- pages ---------------------------------------------------------------------------------
    def day_counts(self, day: date) -> list[dict[str, Any]]:
        """Per species: visits, individuals, frames on one (each device's local) day, as
        `edge counts --by total --since DAY --until DAY` (and `--individuals`, `--frames`)."""
        text = day.isoformat()
        merged: dict[str, dict[str, int]] = defaultdict(lambda: {"events": 0, "individuals": 0, "frames": 0})
        for unit in ("events", "individuals", "frames"):
            for row in self._counts(by="total", unit=unit, since=text, until=text):
                merged[row["species"]][unit] += int(row[unit])
        rows = [{"species": name, **values} for name, values in merged.items()]
        return sorted(rows, key=lambda r: (-r["events"], r["species"]))

    def species_names(self) -> list[str]:
        """Every species an event counts (each of a mixed visit's species), by name."""
        where, params = self._covering()
        table = "event_species" if self.per_species else "events"
        return [r["species"] for r in self._read(
            f"SELECT DISTINCT species FROM {table} WHERE species IS NOT NULL{where} ORDER BY species", params)]

    def cameras(self) -> list[str]:
        where, params = self._covering()
        return [r["camera"] for r in self._read(f"SELECT DISTINCT camera FROM events WHERE 1 = 1{where} "
                                                "ORDER BY camera", params)]

    def _covering(self) -> tuple[str, list[Any]]:
        return (" AND device = ?", [self.device]) if self.device else ("", [])

    def latest_events(self, limit: int = 12) -> list[dict[str, Any]]:
        return list(self.events(device=self.device, limit=limit))

    def event_page(self, *, camera: str | None = None, species: str | None = None, first: date | None = None,
                   last: date | None = None, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        """The events list, newest first, filtered; `limit + 1` rows tell whether there is a next page."""
        found = self.events(device=self.device, camera=camera, species=species,
                            since=first.isoformat() if first else None, until=last.isoformat() if last else None,
                            limit=offset + limit + 1)
        return list(found)[offset:offset + limit + 1]

    def species_days(self, species: str, last: date, days: int = 30) -> tuple[list[str], list[int], list[int]]:
        """(days, visits, individuals) for the `days` local days ending with `last`, zeros included."""
        first = last - timedelta(days=days - 1)
        labels = [(first + timedelta(days=i)).isoformat() for i in range(days)]
        totals: dict[str, list[int]] = {"events": [0] * days, "individuals": [0] * days}
        if not species:
            return labels, totals["events"], totals["individuals"]
        for unit in totals:
            for row in self._counts(by="day", unit=unit, since=first.isoformat(), until=last.isoformat(),
                                    species=species):
                if row["period"] in labels:
                    totals[unit][labels.index(row["period"])] += int(row[unit])
        return labels, totals["events"], totals["individuals"]

    def hour_matrix(self, first: date, last: date, species: str | None = None) -> dict[str, list[int]]:
        """Species → 24 visit counts by each device's own local hour of the visit's start."""
        matrix: dict[str, list[int]] = defaultdict(lambda: [0] * 24)
        for row in self._counts(by="hour", unit="events", since=first.isoformat(), until=last.isoformat(),
                                species=species or None):
            matrix[row["species"]][int(row["period"][11:13])] += int(row["events"])
        return dict(sorted(matrix.items(), key=lambda item: (-sum(item[1]), item[0])))

    def device_rows(self, silent_after: timedelta, now: datetime | None = None) -> list[dict[str, Any]]:
        """The devices table (edge/fleet/devices.py), narrowed to the view's device, with each
        device's event count."""
        rows = read_devices(self.conn, silent_after=silent_after, now=now or datetime.now(UTC))
        events = {r["device"]: int(r["n"]) for r in self._read(
            "SELECT device, COUNT(*) AS n FROM events GROUP BY device", [])}
        for row in rows:
            row["events"] = events.get(row["device"], 0)
        return [r for r in rows if self.device is None or r["device"] == self.device]
