"""`edge web --db <central database>`: the read-only fleet view (docs/web.md, "The fleet view").

The same app as on a device (edge/web/app.py: its security checks, sessions, login, [web]
config and charts), with a second reader, fleet.web_queries.FleetReader, over the central
PostgreSQL or SQLite database, for one device (`--device`) or the whole fleet (then pages take
`?device=` to narrow down, and the events list has a device column).

Read-only by construction: no review store is ever created and no POST route but login and
logout exists. What never leaves a device (frames, per-bird detections, pictures, the review
queue, the device's health facts) answers 404 with a page saying so: reviews are made on the
device's own `edge web`, and reach the center as the device's event messages.

The database URL's password never reaches a page or a log line (fleet.db.redact).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from contextvars import ContextVar
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from edge.config import EdgeConfig
from edge.config.web import WebUser
from edge.store.queries import ReportError
from edge.web.app import WebApp, WebStartError, check_startup
from edge.web.auth import Revocations, load_secret
from edge.web.sessions import COOKIE, SECRET_NAME, Context, revocations_in
from edge.web.site import HERE, parse_date, parse_int
from fleet.db import CentralDbError, engine_of, redact
from fleet.devices import format_silence
from fleet.web_queries import FleetReader

log = logging.getLogger(__name__)

# The device the request being served looks at (None: the whole fleet), for the pages WebApp
# renders itself (edge/web/pages.py: species, heatmap): their forms and links keep it.
_VIEWING: ContextVar[str | None] = ContextVar("viewing", default=None)

# What only a device holds: every method answers 404 (POST included: nothing here writes).
DEVICE_ONLY = ("/event/{rest:path}", "/queue", "/health", "/img/{rest:path}", "/review/{rest:path}",
               "/api/{rest:path}")


class CentralWebApp(WebApp):
    """The fleet view: WebApp's plumbing and charts over a FleetReader, nothing that writes."""

    def __init__(self, config: EdgeConfig, db: str, *, device: str | None = None,
                 silent_after: timedelta = timedelta(hours=2), users: list[WebUser] | None = None) -> None:
        self.central_db = db
        self.central_name = redact(db)
        self.fixed_device = device
        self.silent_after = silent_after
        super().__init__(config, users)
        self.templates.filters["silence"] = format_silence

    def _secret(self) -> bytes:
        """web.session_secret_file, else beside a central SQLite file; for PostgreSQL (no folder
        of ours) a key for this run only: logins end with a restart unless the file is set."""
        if self.web.session_secret_file:
            return load_secret(Path(self.web.session_secret_file))
        if engine_of(self.central_db) == "sqlite":
            try:
                return load_secret(Path(self.central_db).parent / SECRET_NAME)
            except OSError as error:
                log.warning("session key: cannot keep it beside %s (%s): logins last until a restart",
                            self.central_db, error)
        return secrets.token_hex(32).encode("ascii")

    def _revocations(self) -> Revocations:
        """Beside the session key's file; for a key of this run only, in memory (it ends with the run)."""
        if self.web.session_secret_file:
            return revocations_in(Path(self.web.session_secret_file).parent)
        if engine_of(self.central_db) == "sqlite":
            return revocations_in(Path(self.central_db).parent)
        return Revocations()

    def app(self) -> Starlette:
        page = self.gate.guard
        routes = [
            Route("/", page(self.dashboard)),
            Route("/species", page(self.pages.species)),
            Route("/heatmap", page(self.pages.heatmap)),
            Route("/events", page(self.fleet_events)),
            Route("/devices", page(self.devices_page)),
            *(Route(path, self.device_only, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]) for path in DEVICE_ONLY),
            Route("/login", page(self.logins.login, login=False), methods=["GET", "POST"]),
            Route("/logout", page(self.logins.logout, login=False), methods=["POST"]),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ]
        return self._starlette(routes)

    def render(self, name: str, ctx: Context, status: int = 200, **values: Any) -> HTMLResponse:
        values.setdefault("device", _VIEWING.get())
        html = self.templates.get_template(name).render(
            csrf=ctx.session.csrf, user=ctx.user, role=ctx.role, open_access=self.open_access,
            station=self.fixed_device or "fleet", central=True, database=self.central_name, **values)
        return HTMLResponse(html, status)

    def _chosen_device(self, request: Request) -> str | None:
        return self.fixed_device or request.query_params.get("device") or None

    def read(self, request: Request, ctx: Context, work: Callable[[Any], Response]) -> Response:
        try:
            reader = FleetReader(self.central_db, self._chosen_device(request),
                                 busy_timeout_s=self.config.storage.busy_timeout_s)
        except ReportError as error:
            return self.error(request, ctx, 404, str(error))
        except CentralDbError as error:  # its message names the database redacted
            return self.render("error.html", ctx, status=503, message=str(error), code=503)
        token = _VIEWING.set(reader.device)
        try:
            return work(reader)
        finally:
            _VIEWING.reset(token)
            reader.close()

    def _choices(self, reader: FleetReader) -> list[str]:
        return [] if self.fixed_device else reader.devices(None)

    # ----- pages ---------------------------------------------------------------------------
    async def dashboard(self, request: Request, ctx: Context) -> Response:
        def work(reader: FleetReader) -> Response:
            day = parse_date(request.query_params.get("day")) or reader.today()
            return self.render("central_today.html", ctx, page="today", day=day.isoformat(),
                               counts=reader.day_counts(day), latest=reader.latest_events(12),
                               device=reader.device, choices=self._choices(reader))
        return self.read(request, ctx, work)

    async def fleet_events(self, request: Request, ctx: Context) -> Response:
        q = request.query_params
        page_number = max(1, parse_int(q.get("page")) or 1)
        size = self.web.page_size

        def work(reader: FleetReader) -> Response:
            rows = reader.event_page(camera=q.get("camera") or None, species=q.get("species") or None,
                                     first=parse_date(q.get("from")), last=parse_date(q.get("to")), limit=size,
                                     offset=(page_number - 1) * size)
            keep = {k: v for k, v in q.items() if k != "page" and v}
            return self.render("central_events.html", ctx, page="events", rows=rows[:size], more=len(rows) > size,
                               number=page_number, filters=keep, cameras=reader.cameras(),
                               names=reader.species_names(), device=reader.device, choices=self._choices(reader),
                               query=lambda n: "&".join([*(f"{quote(k)}={quote(v)}" for k, v in keep.items()),
                                                          f"page={n}"]))
        return self.read(request, ctx, work)

    async def devices_page(self, request: Request, ctx: Context) -> Response:
        def work(reader: FleetReader) -> Response:
            rows = reader.device_rows(self.silent_after)
            return self.render("central_devices.html", ctx, page="devices", rows=rows,
                               silent=sum(1 for r in rows if r["silent"]),
                               threshold=format_silence(self.silent_after.total_seconds()))
        return self.read(request, ctx, work)

    async def device_only(self, request: Request) -> Response:
        """404 for what only a device holds, whoever asks and however (no CSRF or login
        check first: there is nothing behind it to protect, and nothing is written)."""
        session = self.gate.signer.load(request.cookies.get(COOKIE))
        ctx = Context(session or self.gate.signer.new(), None, None, session is None)
        ctx.user, ctx.role = self.gate.who(ctx.session)
        message = ("This is the central view of the fleet database: frames, pictures, per-bird detections "
                   "and the review queue stay on each device. Review on the device's own `edge web`; its "
                   "reviews reach the center as event messages.")
        if request.url.path.startswith("/api/") or request.headers.get("content-type", "").startswith("application/json"):
            return self.gate.finish(ctx, JSONResponse({"error": message}, 404))
        return self.gate.finish(ctx, self.render("error.html", ctx, status=404, message=message, code=404))


def create_central_app(config: EdgeConfig, db: str, *, device: str | None = None,
                       silent_after: timedelta = timedelta(hours=2)) -> Starlette:
    """The fleet view's ASGI app. Raises WebStartError (before anything is created) when it must
    not start, and for a database that is not a central one or a device it never heard of;
    CentralDbError when the database cannot be reached."""
    users = check_startup(config)
    try:
        FleetReader(db, device, busy_timeout_s=config.storage.busy_timeout_s).close()
    except ReportError as error:
        raise WebStartError(str(error)) from None
    except CentralDbError as error:
        if "not a trailcam central database" in str(error):
            raise WebStartError(str(error)) from None
        raise
    return CentralWebApp(config, db, device=device, silent_after=silent_after, users=users).app()

