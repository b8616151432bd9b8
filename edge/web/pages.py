"""The read-only pages of `edge web`: today, a species over a period, the species x hour heatmap,
the events list, one event, and the station's health.

Why its own module: these pages only read (one snapshot per request, Site.read) and render; they
change nothing and need no review store, so they are also what the fleet view (fleet/web.py)
serves over its own reader.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from edge.operate.status_reader import collect_status
from edge.store.db import StoreError
from edge.store.reviews import history
from edge.web import charts
from edge.web.health import health_view
from edge.web.queries import Reader
from edge.web.sessions import Context
from edge.web.site import Routes, parse_date, parse_int

MAX_PERIOD_DAYS = 366  # the species page's per-day bars: a year at most


class Pages(Routes):
    """The handlers of the read-only pages."""

    async def today(self, request: Request, ctx: Context) -> Response:
        """One local day's counts (`?day=YYYY-MM-DD`, default today) with links to the day before
        and after; today shows the latest visits, another day that day's visits."""
        def work(reader: Reader) -> Response:
            today = reader.today()
            day = parse_date(request.query_params.get("day")) or today
            if day == today:
                latest = reader.latest_events(12)
            else:
                latest = reader.events(first=day, last=day, limit=self.web.page_size)[:self.web.page_size]
            return self._render("today.html", ctx, page="today", day=day.isoformat(), today=today.isoformat(),
                                weekday=day.strftime("%A"), previous=(day - timedelta(days=1)).isoformat(),
                                following=(day + timedelta(days=1)).isoformat() if day < today else None,
                                counts=reader.day_counts(day), latest=latest, local=reader.local,
                                frame_images=self.web.frame_images)
        return self._read(request, ctx, work)

    async def species(self, request: Request, ctx: Context) -> Response:
        name = request.query_params.get("name", "")

        def work(reader: Reader) -> Response:
            names = reader.species_names()
            chosen = name or (names[0] if names else "")
            today = reader.today()
            first, last = self._period(request, reader, 30)
            clipped = (last - first).days + 1 > MAX_PERIOD_DAYS
            if clipped:
                first = last - timedelta(days=MAX_PERIOD_DAYS - 1)
            span = (last - first).days + 1
            days, visits, individuals = reader.species_days(chosen, last, span)
            hours = reader.hour_matrix(first, last, chosen).get(chosen, [0] * 24)
            shown = self.readable(chosen, ctx.taxa)
            # When it was seen at all (a station's own database; the fleet view has no such query):
            # an empty period then links to the days that have its visits.
            days_seen = reader.seen_days(chosen) if chosen and hasattr(reader, "seen_days") else None
            seen = None if days_seen is None else {
                "first": days_seen[0].isoformat(), "last": days_seen[1].isoformat(),
                "recent": (days_seen[1] - timedelta(days=29)).isoformat()}
            period = f"{first} to {last}"
            presets = [(label, (today - timedelta(days=n - 1)).isoformat(), today.isoformat())
                       for label, n in (("7 days", 7), ("30 days", 30), ("90 days", 90), ("1 year", 365))]
            return self._render(
                "species.html", ctx, page="species", names=names, chosen=chosen, first=first.isoformat(),
                last=last.isoformat(), span=span, clipped=clipped, presets=presets, seen=seen,
                days_chart=charts.day_bars(days, {"visits": visits, "individuals": individuals},
                                           f"{shown}: visits and individuals per day, {period}"),
                hours_chart=charts.hour_bars(hours, f"{shown}: visits by hour of day, {period}"),
                total_visits=sum(visits), total_individuals=sum(individuals))
        return self._read(request, ctx, work)

    def _readable_rows(self, matrix: dict[str, list[int]], taxa: dict[str, Any]) -> dict[str, list[int]]:
        """The heatmap's rows under the names people read (in the same order); two labels that
        read alike keep apart with the label beside."""
        rows: dict[str, list[int]] = {}
        for label, values in matrix.items():
            shown = self.readable(label, taxa) or label
            rows[shown if shown not in rows else f"{shown} ({label})"] = values
        return rows

    def _period(self, request: Request, reader: Reader, default_days: int) -> tuple[date, date]:
        last = parse_date(request.query_params.get("to")) or reader.today()
        first = parse_date(request.query_params.get("from")) or last - timedelta(days=default_days - 1)
        return (first, last) if first <= last else (last, first)

    async def heatmap(self, request: Request, ctx: Context) -> Response:
        def work(reader: Reader) -> Response:
            first, last = self._period(request, reader, 30)
            matrix = self._readable_rows(reader.hour_matrix(first, last), ctx.taxa)
            return self._render("heatmap.html", ctx, page="heatmap", first=first.isoformat(), last=last.isoformat(),
                                chart=charts.heatmap(matrix, f"visits per species and hour, {first} to {last}"))
        return self._read(request, ctx, work)

    async def events(self, request: Request, ctx: Context) -> Response:
        q = request.query_params
        page_number = max(1, parse_int(q.get("page")) or 1)
        reviewed = {"yes": True, "no": False}.get(q.get("reviewed", ""))
        size = self.web.page_size

        def work(reader: Reader) -> Response:
            rows = reader.events(camera=q.get("camera") or None, species=q.get("species") or None,
                                 first=parse_date(q.get("from")), last=parse_date(q.get("to")), reviewed=reviewed,
                                 limit=size, offset=(page_number - 1) * size)
            keep = {k: v for k, v in q.items() if k != "page" and v}
            return self._render("events.html", ctx, page="events", rows=rows[:size], more=len(rows) > size,
                                frame_images=self.web.frame_images,
                                number=page_number, filters=keep, cameras=reader.cameras(),
                                names=reader.species_names(), local=reader.local,
                                query=lambda n: "&".join([*(f"{quote(k)}={quote(v)}" for k, v in keep.items()),
                                                          f"page={n}"]))
        return self._read(request, ctx, work)

    async def event(self, request: Request, ctx: Context) -> Response:
        event_id = request.path_params["event_id"]

        def work(reader: Reader) -> Response:
            event = reader.event(event_id)
            if event is None:
                return self._error(request, ctx, 404, f"no event {event_id}")
            reviews = history(reader.conn, event_id) if reader.reviews else []
            return self._render("event.html", ctx, page="events", event=event,
                                frames=reader.event_frames(event_id, event),
                                reviews=reviews, local=reader.local, labels=self.labels,
                                frame_images=self.web.frame_images, clips=reader.event_clips(event_id))
        return self._read(request, ctx, work)

    async def health(self, request: Request, ctx: Context) -> Response:
        disk_paths = []
        if self.config.retention.after_processing == "archive" and self.config.retention.archive_dir is not None:
            disk_paths.append(self.config.retention.archive_dir)
        status = await run_in_threadpool(
            collect_status, self.database, disk_paths=disk_paths, rate_window_s=self.config.health.rate_window_s,
            stale_after_s=max(60.0, 6 * self.config.health.status_interval_s))
        zone = await run_in_threadpool(self._station_zone)
        return self._render("health.html", ctx, page="health", view=health_view(status, zone), facts=status,
                            rows=_flatten(status), zone=str(zone))

    def _station_zone(self) -> Any:
        """The station's zone as the database records it (`edge web --db` may run without the
        configuration), else the configured one."""
        try:
            reader = self._reader()
        except StoreError:
            return ZoneInfo(self.config.station.timezone)
        try:
            return reader.zone
        finally:
            reader.conn.close()


def _flatten(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested status facts as (dotted key, value) rows for the health table."""
    rows: list[tuple[str, Any]] = []
    if isinstance(data, dict):
        for key, value in data.items():
            rows += _flatten(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(data, list) and data and all(isinstance(item, dict) for item in data):
        for index, item in enumerate(data):
            rows += _flatten(item, f"{prefix}[{index}]")
    else:
        rows.append((prefix, data))
    return rows
