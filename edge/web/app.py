"""The Starlette application of `edge web`: pages, pictures by id, review endpoints, and the
security checks every request passes (docs/web.md, "Security model").

Every request gets a signed session cookie (HttpOnly, SameSite=Strict, Secure when configured)
carrying its CSRF token; a POST without the right token (form field `csrf` or header
`X-CSRF-Token`) is refused with 403, a review by a `read` user with 403. With users
configured every page needs a login; without users the app runs only on loopback (see
`check_startup`) and whoever reaches it is the local operator.

The database is read over a fresh read-only connection per request (one consistent snapshot);
reviews go through one edge.store.reviews.ReviewStore (the second writer beside the daemon),
with the daemon's OutboxWriter when [mqtt] is enabled so that the retained counts follow.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from edge.classify.names import station_namer
from edge.config import EdgeConfig
from edge.config.cameras import CameraConfig
from edge.config.web import WebUser
from edge.operate.snapshots import snapshot_folder
from edge.operate.status_reader import collect_status
from edge.store import repeat_release
from edge.store import repeats as repeat_places
from edge.store.db import StoreError, open_readonly, user_name
from edge.store.known_taxa import KnownTaxa
from edge.store.reviews import (
    ACTIONS,
    Review,
    ReviewError,
    ReviewStore,
    history,
    review_queue,
)
from edge.web import charts, images
from edge.web.auth import (
    LoginLimiter,
    Revocations,
    Session,
    SessionSigner,
    credential_key,
    csrf_ok,
    dummy_hash,
    load_secret,
    verify_password,
)
from edge.web.guard import RequestGuard
from edge.web.health import health_view
from edge.web.queries import Reader

MAX_ROW_ID = 2**63 - 1  # SQLite's largest rowid
MAX_PERIOD_DAYS = 366  # the species page's per-day bars: a year at most
log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
COOKIE = "trailcam_session"
SECRET_NAME = "web_session_secret"
REVOKED_NAME = "web_sessions_revoked"  # beside the secret: the sessions logout ended (auth.Revocations)
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; "
                               "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


class WebStartError(Exception):
    """A configuration the web app refuses to start with (the CLI exits 2)."""


def check_startup(config: EdgeConfig) -> list[WebUser]:
    """Refuse to serve beyond loopback with nobody to log in; returns who may log in.
    Called before anything is created (no secret file, no database connection)."""
    users = config.web.resolved_users()
    if not users and not config.web.loopback:
        raise WebStartError(
            f"web.host = {config.web.host!r} is not a loopback address and no login is configured: set "
            "web.users (or web.password_hash, or the systemd credential web_password_hash; "
            "`edge web hash-password` makes a hash), or keep web.host = \"127.0.0.1\"")
    return users


def model_spec(config: EdgeConfig) -> Any:
    """The configured model's ModelSpec (labels, id, scientific names: no interpreter), read once
    at start; None without a model or when it cannot be read (the species field then takes free
    text: a broken model must not keep the window shut)."""
    if config.model.path is None:
        return None
    from edge.classify.labels import LabelError
    from edge.classify.model import ModelError, resolve_model

    try:
        return resolve_model(config.model.path, config.model.labels, config.model.no_bird_label)
    except (ModelError, LabelError, OSError) as error:
        log.warning("species names unavailable (%s): the species field takes free text", error)
        return None


def model_labels(spec: Any) -> list[dict[str, str]]:
    """The labels for the species search: name (what the database stores), common, scientific;
    the no-bird label left out (not a species to correct to: that is "not a bird")."""
    if spec is None:
        return []
    return [{"name": label.name, "common": label.common_name or "", "scientific": label.scientific_name or ""}
            for label in spec.labels if label.name != spec.no_bird_label]


@dataclass
class Context:
    """One request: its session (maybe fresh), who it is, what it posted."""

    session: Session
    user: str | None
    role: str | None
    fresh: bool
    form: dict[str, str] = field(default_factory=dict)
    body: Any = None
    taxa: dict[str, Any] = field(default_factory=dict)  # label → edge.store.taxa.Taxon, read with the page

    @property
    def reviewer(self) -> str:
        """Who writes: the logged-in user, for a handler behind login (_guard answers 401 to
        anyone else before the handler runs, so this never raises there)."""
        if self.user is None:
            raise RuntimeError("no logged-in user: the handler is not guarded with login")
        return self.user


Handler = Callable[[Request, Context], Awaitable[Response]]


def camera_folder(camera: CameraConfig) -> Path:
    """The folder of a configured camera: EdgeConfig's validation gives a live camera without
    `path` its default one, so every camera of a loaded config has a folder."""
    assert camera.path is not None  # filled in by EdgeConfig (edge/config/__init__.py)
    return Path(camera.path)


class WebApp:
    """The app's state (config, signer, limiter, labels, the review store) and its endpoints."""

    def __init__(self, config: EdgeConfig, users: list[WebUser] | None = None, labels: list[dict[str, str]] | None = None,
                 outbox: Any = None) -> None:
        self.config = config
        self.web = config.web
        self.database = Path(config.storage.database)
        self.users = {user.name: user for user in (check_startup(config) if users is None else users)}
        self.open_access = not self.users  # loopback only (check_startup)
        self.local_user = user_name()
        self.signer = SessionSigner(self._secret(), self.web.session_max_age_s, revoked=self._revocations())
        self.limiter = LoginLimiter(self.web.login_attempts, self.web.login_window_s)
        # At most web.password_checks scrypt checks (16 MiB each) at once; the rest wait here,
        # costing a coroutine each (their number is bounded by web.max_connections).
        self._password_slots = asyncio.Semaphore(self.web.password_checks)
        # An unknown name is checked against this (same scrypt parameters): as slow as a wrong password.
        self._dummy_hash = dummy_hash(next((u.password_hash for u in self.users.values()), None))
        self.labels = labels or []
        self.snapshots = snapshot_folder(self.database)
        folders = [camera_folder(camera) for camera in config.cameras]
        if config.retention.archive_dir is not None:
            folders.append(Path(config.retention.archive_dir))
        self.frame_folders = folders
        self._unserved: set[str] = set()  # cameras whose missing pictures were logged
        self.outbox = outbox
        self._reviews: ReviewStore | None = None
        self._review_lock = threading.Lock()
        self.templates = Environment(loader=FileSystemLoader(HERE / "templates"),
                                     autoescape=select_autoescape(default=True, default_for_string=True))
        self.templates.filters["pct"] = lambda v: "" if v is None else f"{100 * v:.0f} %"
        # Names people read (docs/taxonomy.md): `label|readable` is the label's display name in
        # [station] language, `label|scientific` its scientific name where that differs. Links,
        # data-species, form values and filters keep the label: it is what the database stores.
        self.namer = station_namer(config)
        self.templates.filters["readable"] = pass_context(lambda page, label: self.readable(label, page.get("taxa")))
        self.templates.filters["scientific"] = pass_context(lambda page, label: self.scientific(label, page.get("taxa")))

    # ----- names -----------------------------------------------------------------------------
    def readable(self, label: str | None, taxa: dict[str, Any] | None = None) -> str | None:
        """A stored label as people read it: its names from the database's `taxa` table (what
        the models that used it called it) through the station's Namer; None stays None."""
        if not label:
            return label
        taxon = (taxa or {}).get(label)
        if taxon is None:
            return self.namer.display(label)
        return self.namer.display(label, taxon.scientific_name, taxon.common_name)

    def scientific(self, label: str | None, taxa: dict[str, Any] | None = None) -> str:
        """The label's scientific name when the page shows another name, else "" (kept beside)."""
        taxon = (taxa or {}).get(label) if label else None
        if taxon is None or not taxon.scientific_name:
            return ""
        return "" if taxon.scientific_name == self.readable(label, taxa) else taxon.scientific_name

    # ----- plumbing ------------------------------------------------------------------------
    def _secret(self) -> bytes:
        """The session signing key: web.session_secret_file, else beside the database."""
        return load_secret(Path(self.web.session_secret_file or self.database.parent / SECRET_NAME))

    def _revocations(self) -> Revocations:
        """The sessions logout ended, in REVOKED_NAME beside the session secret (the list lasts
        as long as the key that signed the cookies). Unreadable or unwritable: kept in memory
        for this run, with a warning."""
        folder = Path(self.web.session_secret_file).parent if self.web.session_secret_file else self.database.parent
        return _revocations_in(folder)

    def app(self) -> Starlette:
        page, write = self._guard, self._writer
        routes = [
            Route("/", page(self.today)),
            Route("/species", page(self.species)),
            Route("/heatmap", page(self.heatmap)),
            Route("/events", page(self.events)),
            Route("/event/{event_id:int}", page(self.event)),
            Route("/event/{event_id:int}/review", write(self.review_form), methods=["POST"]),
            Route("/review/{review_id:int}/undo", write(self.undo_form), methods=["POST"]),
            Route("/queue", page(self.queue)),
            Route("/health", page(self.health)),
            Route("/img/snapshot/{event_id:int}", page(self.img_snapshot)),
            Route("/img/frame/{frame_id:int}", page(self.img_frame)),
            Route("/img/crop/{detection_id:int}", page(self.img_crop)),
            Route("/clip/{clip_id:int}", page(self.clip_file)),
            Route("/repeats", page(self.repeats)),
            Route("/repeats/{place_id:int}/release", write(self.release_form), methods=["POST"]),
            Route("/img/repeat/{place_id:int}", page(self.img_repeat)),
            Route("/api/review", write(self.api_review), methods=["POST"]),
            Route("/api/undo", write(self.api_undo), methods=["POST"]),
            Route("/login", self._guard(self.login, login=False), methods=["GET", "POST"]),
            Route("/logout", self._guard(self.logout, login=False), methods=["POST"]),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ]
        return self._starlette(routes)

    def _starlette(self, routes: list[Any]) -> Starlette:
        """The app around `routes`, behind the RequestGuard (allowed hosts, same-origin POSTs,
        the body limit: edge/web/guard.py)."""
        guard = Middleware(RequestGuard, hosts=self.web.host_names(), max_body_bytes=self.web.max_body_bytes)
        return Starlette(routes=routes, lifespan=self._lifespan, middleware=[guard])

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        yield
        self.close()

    def close(self) -> None:
        if self._reviews is not None:
            self._reviews.close()
            self._reviews = None

    def _who(self, session: Session) -> tuple[str | None, str | None]:
        if self.open_access:
            return self.local_user, "admin"
        user = self.users.get(session.user or "")
        if user is None or session.key != credential_key(user.password_hash):
            return (None, None)  # unknown, or logged in with a password that has changed since
        return (user.name, user.role)

    def _guard(self, handler: Handler, *, login: bool = True, write: bool = False) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            session = self.signer.load(request.cookies.get(COOKIE))
            fresh = session is None
            if session is None:
                session = self.signer.new()
            user, role = self._who(session)
            ctx = Context(session, user, role, fresh)
            if request.method == "POST":
                raw = await request.body()
                kind = request.headers.get("content-type", "")
                token = request.headers.get("x-csrf-token")
                if kind.startswith("application/json"):
                    try:
                        ctx.body = json.loads(raw or b"null")
                    except ValueError:
                        return self._finish(ctx, JSONResponse({"error": "not JSON"}, 400))
                else:
                    ctx.form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
                    token = token or ctx.form.get("csrf")
                if not csrf_ok(session, token):
                    return self._finish(ctx, self._error(request, ctx, 403, "missing or wrong CSRF token"))
            if login and user is None:
                if request.method == "GET" and not request.url.path.startswith(("/img/", "/api/")):
                    return self._finish(ctx, RedirectResponse(f"/login?next={quote(request.url.path)}", 303))
                return self._finish(ctx, self._error(request, ctx, 401, "log in first"))
            if write and role != "admin":
                return self._finish(ctx, self._error(request, ctx, 403, f"{user} may read, not review"))
            return self._finish(ctx, await handler(request, ctx))
        return endpoint

    def _writer(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        return self._guard(handler, write=True)

    def _finish(self, ctx: Context, response: Response) -> Response:
        if ctx.fresh:
            self._set_cookie(response, ctx.session)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    def _set_cookie(self, response: Response, session: Session) -> None:
        response.set_cookie(COOKIE, self.signer.dump(session), max_age=self.web.session_max_age_s, path="/",
                            httponly=True, samesite="strict", secure=self.web.secure_cookies)

    def _error(self, request: Request, ctx: Context, status: int, message: str) -> Response:
        if request.url.path.startswith("/api/") or request.headers.get("content-type", "").startswith("application/json"):
            return JSONResponse({"error": message}, status)
        return self._render("error.html", ctx, status=status, message=message, code=status)

    def _render(self, name: str, ctx: Context, status: int = 200, **values: Any) -> HTMLResponse:
        html = self.templates.get_template(name).render(
            csrf=ctx.session.csrf, user=ctx.user, role=ctx.role, open_access=self.open_access,
            station=self.config.station.device_id, taxa=ctx.taxa, **values)
        return HTMLResponse(html, status)

    def _reader(self) -> Reader:
        return Reader(open_readonly(self.database, self.config.storage.busy_timeout_s).conn)

    def _read(self, request: Request, ctx: Context, work: Callable[[Reader], Response]) -> Response:
        try:
            reader = self._reader()
        except StoreError as error:
            return self._render("error.html", ctx, status=503, message=str(error), code=503)
        try:
            reader.conn.execute("BEGIN")
            ctx.taxa = reader.taxa()
            return work(reader)
        finally:
            reader.conn.close()

    # ----- pages ---------------------------------------------------------------------------
    async def today(self, request: Request, ctx: Context) -> Response:
        """One local day's counts (`?day=YYYY-MM-DD`, default today) with links to the day before
        and after; today shows the latest visits, another day that day's visits."""
        def work(reader: Reader) -> Response:
            today = reader.today()
            day = _date(request.query_params.get("day")) or today
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
        last = _date(request.query_params.get("to")) or reader.today()
        first = _date(request.query_params.get("from")) or last - timedelta(days=default_days - 1)
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
        page_number = max(1, _int(q.get("page")) or 1)
        reviewed = {"yes": True, "no": False}.get(q.get("reviewed", ""))
        size = self.web.page_size

        def work(reader: Reader) -> Response:
            rows = reader.events(camera=q.get("camera") or None, species=q.get("species") or None,
                                 first=_date(q.get("from")), last=_date(q.get("to")), reviewed=reviewed,
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

    async def queue(self, request: Request, ctx: Context) -> Response:
        chosen = request.query_params.get("species") or None

        def work(reader: Reader) -> Response:
            ids = [row["id"] for row in review_queue(reader.conn, species=chosen, limit=self.web.page_size)]
            rows = [reader.event(i) for i in ids]
            return self._render("queue.html", ctx, page="queue", rows=rows, chosen=chosen or "",
                                names=reader.species_names(), labels=self.labels, local=reader.local)
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

    # ----- login ---------------------------------------------------------------------------
    async def login(self, request: Request, ctx: Context) -> Response:
        target = request.query_params.get("next") or ctx.form.get("next") or "/"
        if not target.startswith("/") or target.startswith("//"):
            target = "/"
        if request.method == "GET":
            return self._render("login.html", ctx, page="login", next=target, message=None)
        name = ctx.form.get("name", "")
        client = request.client.host if request.client else "?"
        if not self.limiter.attempt(client, name):  # recorded before the check: parallel guesses count
            return self._render("login.html", ctx, status=429, page="login", next=target,
                                message="too many failed logins: wait a minute")
        user = self.users.get(name)
        stored = user.password_hash if user is not None else self._dummy_hash
        async with self._password_slots:
            ok = await run_in_threadpool(verify_password, ctx.form.get("password", ""), stored)
        if not ok or user is None:
            log.warning("failed web login for %r from %s", name, client)
            return self._render("login.html", ctx, status=401, page="login", next=target,
                                message="wrong name or password")
        self.limiter.succeeded(client, name)
        # A new session (no fixation), tied to the password it was opened with.
        session = self.signer.new(user.name, user.role, credential_key(user.password_hash))
        response = RedirectResponse(target, 303)
        self._set_cookie(response, session)
        return response

    async def logout(self, request: Request, ctx: Context) -> Response:
        if not ctx.fresh and ctx.session.user is not None:
            await run_in_threadpool(self.signer.revoke, ctx.session)  # the old cookie is dead, wherever it is kept
        response = RedirectResponse("/login", 303)
        self._set_cookie(response, self.signer.new())
        return response

    # ----- pictures ------------------------------------------------------------------------
    async def img_snapshot(self, request: Request, ctx: Context) -> Response:
        def work(reader: Reader) -> Response:
            if self.config.privacy.hide_people and reader.snapshot_has_person(request.path_params["event_id"]):
                return self._private()
            path = images.snapshot_path(self.snapshots, reader.snapshot_name(request.path_params["event_id"]))
            if path is None:
                return Response("not found", 404)
            return Response(path.read_bytes(), media_type="image/jpeg", headers={"Cache-Control": "private, max-age=300"})
        return self._read(request, ctx, work)

    async def img_frame(self, request: Request, ctx: Context) -> Response:
        if not self.web.frame_images:
            return Response("not found", 404)
        frame_id = request.path_params["frame_id"]
        if frame_id > MAX_ROW_ID:  # no such row, and past what SQLite binds (an OverflowError, a 500)
            return Response("not found", 404)
        boxes = request.query_params.get("boxes") == "1"

        def locate(reader: Reader) -> Any:
            if self.config.privacy.hide_people and reader.frame_has_person(frame_id):
                return self._private()
            row = reader.frame(frame_id)
            path = self._frame_path(row, reader)
            offset = row.get("clip_offset_s") if row else None
            if not boxes:
                return (path, [], [], offset)
            drawn = reader.frame_boxes(frame_id)
            return (path, drawn, [self._box_caption(box, ctx.taxa) for box in drawn], offset)
        found = self._read(request, ctx, locate)
        if isinstance(found, Response) or found[0] is None:
            return found if isinstance(found, Response) else Response("not found", 404)
        data = await run_in_threadpool(images.frame_jpeg, *found)
        return Response(data, media_type="image/jpeg") if data else Response("not found", 404)

    async def img_crop(self, request: Request, ctx: Context) -> Response:
        if not self.web.frame_images:
            return Response("not found", 404)

        def locate(reader: Reader) -> Any:
            detection = reader.detection(request.path_params["detection_id"])
            if detection is None:
                return (None, None)
            if self.config.privacy.hide_people and reader.frame_has_person(detection["frame_id"]):
                return self._private()
            frame = reader.frame(detection["frame_id"])
            return (self._frame_path(frame, reader), detection, frame.get("clip_offset_s") if frame else None)
        found = self._read(request, ctx, locate)
        if isinstance(found, Response) or found[0] is None:
            return found if isinstance(found, Response) else Response("not found", 404)
        data = await run_in_threadpool(images.crop_jpeg, *found)
        return Response(data, media_type="image/jpeg") if data else Response("not found", 404)

    async def clip_file(self, request: Request, ctx: Context) -> Response:
        """A video clip as its camera wrote it, for the event page's <video> (the browser plays
        what it can: H.264 MP4 everywhere, H.265 or MJPEG AVI seldom; the sampled frames above it
        are shown either way). By id, inside the camera folders or the archive, like a frame;
        never a clip with a person in it under [privacy] hide_people."""
        if not self.web.frame_images:
            return Response("not found", 404)
        clip_id = request.path_params["clip_id"]
        if clip_id > MAX_ROW_ID:
            return Response("not found", 404)

        def locate(reader: Reader) -> Any:
            row = reader.clip(clip_id)
            if row is None or (self.config.privacy.hide_people and row["has_person"]):
                return None
            path = self._frame_path(row, reader)
            return (path, row["media_type"]) if path is not None else None
        found = self._read(request, ctx, locate)
        if isinstance(found, Response):
            return found
        if found is None:
            return Response("not found", 404)
        return FileResponse(found[0], media_type=found[1], headers={"Cache-Control": "private, max-age=300"})

    @staticmethod
    def _private() -> Response:
        """A frame with a person, [privacy] hide_people: a placeholder, never the picture."""
        return Response(images.private_placeholder(), media_type="image/jpeg",
                        headers={"Cache-Control": "private, max-age=300", "X-Trailcam-Private": "person"})

    def _frame_path(self, row: dict | None, reader: Reader) -> Path | None:
        """The frame's file, when it lies inside a folder the station owns: a configured camera
        folder or archive, or one the database records (edge/store/folders.py: `edge web --db`
        alone). A frame whose file cannot be served is logged, once per camera, saying why."""
        if row is None:
            return None
        folders = [*self.frame_folders, *(f.path for f in reader.picture_folders())]
        for candidate in (row.get("stored_path"), row.get("path")):
            if candidate:
                found = images.inside(candidate, folders)
                if found is not None:
                    return found
        camera = str(row.get("camera"))
        if camera not in self._unserved:
            self._unserved.add(camera)
            log.warning("pictures of camera %s cannot be served: frame %s's file %s is gone or outside the "
                        "known picture folders (%s); the pages show a placeholder", camera, row.get("id"),
                        row.get("stored_path") or row.get("path"), ", ".join(map(str, folders)) or "none")
        return None

    def _box_caption(self, box: dict, taxa: dict[str, Any]) -> str:
        """A box's caption on the frame: its rank and the name it counts under in its visit (as
        the visit's title and the frame's caption name it), with the classifier's confidence."""
        counted = box.get("counted")
        name = self.readable(counted, taxa) if counted else box.get("reason") or "not counted"
        confidence = f" {100 * box['confidence']:.0f} %" if counted and box.get("confidence") is not None else ""
        return f"{box['rank']}: {name}{confidence}"

    def report_pictures(self) -> None:
        """Say at start where pictures are served from and which cameras' pictures cannot be
        (no folder known to the configuration or the database, or a folder that is missing):
        those show a placeholder instead of a picture."""
        try:
            reader = self._reader()
        except StoreError as error:
            log.info("pictures: the database cannot be read yet (%s)", error)
            return
        try:
            recorded = reader.picture_folders()
            cameras = reader.cameras()
        finally:
            reader.conn.close()
        known = {camera.name: camera_folder(camera) for camera in self.config.cameras}
        for folder in recorded:
            if folder.kind == "camera" and folder.name is not None:
                known.setdefault(folder.name, folder.path)
        archive = self.frame_folders[len(self.config.cameras):] + [f.path for f in recorded if f.kind == "archive"]
        log.info("pictures are served from: %s", ", ".join(
            [f"{name} {path}" for name, path in sorted(known.items())] + [f"archive {path}" for path in archive]) or "nowhere")
        for camera in cameras:
            if camera not in known:
                log.warning("pictures of camera %s cannot be served: its folder is not in the database or the "
                            "configuration (the daemon records it when it starts; or give --config with its "
                            "[[cameras]]); its pages show a placeholder", camera)
            elif not known[camera].is_dir():
                log.warning("pictures of camera %s cannot be served: its folder %s is missing; its pages show a "
                            "placeholder", camera, known[camera])

    # ----- repeat detections (edge/store/repeats.py) ---------------------------------------------
    async def repeats(self, request: Request, ctx: Context) -> Response:
        """The places suppressed as repeats (a rock, a stump), then the released ones, each with its
        picture and a Release button; the candidates closest to being suppressed below."""
        def work(reader: Reader) -> Response:
            places = repeat_places.list_places(reader.conn, limit=self.web.page_size)
            candidates = repeat_places.list_places(reader.conn, states=("candidate",), min_repeats=2,
                                                   limit=self.web.page_size)
            return self._render("repeats.html", ctx, page="repeats", places=places, candidates=candidates,
                                rules=self.config.repeats, pictures=self.web.frame_images)
        return self._read(request, ctx, work)

    async def img_repeat(self, request: Request, ctx: Context) -> Response:
        """A place's picture: its box cut from the frame of its latest detection (ids only, the
        frame read inside a camera folder or the archive, as every picture)."""
        if not self.web.frame_images:
            return Response("not found", 404)

        def locate(reader: Reader) -> Any:
            place = repeat_places.get_place(reader.conn, request.path_params["place_id"])
            detection = reader.detection(place["detection_id"]) if place and place["detection_id"] else None
            if detection is None:
                return (None, None)
            return (self._frame_path(reader.frame(detection["frame_id"]), reader), place)
        found = self._read(request, ctx, locate)
        if isinstance(found, Response) or found[0] is None:
            return found if isinstance(found, Response) else Response("not found", 404)
        data = await run_in_threadpool(images.crop_jpeg, *found)
        return Response(data, media_type="image/jpeg") if data else Response("not found", 404)

    def _release(self, reviewer: str, place_id: int) -> repeat_release.Release:
        with self._review_lock:  # the app's writes, one at a time
            conn = repeat_release.open_writer(self.database, self.config.storage.busy_timeout_s)
            try:
                return repeat_release.release(conn, place_id, reviewer, datetime.now(UTC))
            finally:
                conn.close()

    async def release_form(self, request: Request, ctx: Context) -> Response:
        try:
            done = await run_in_threadpool(self._release, ctx.reviewer, request.path_params["place_id"])
        except repeat_places.RepeatError as error:
            return self._error(request, ctx, 404, str(error))
        except StoreError as error:
            return self._error(request, ctx, 503, str(error))
        log.info("repeat place %d released by %s", done.place["id"], ctx.user)
        return RedirectResponse("/repeats", 303)

    # ----- reviews -------------------------------------------------------------------------
    def _store(self) -> ReviewStore:
        if self._reviews is None:
            labels = self.labels
            self._reviews = ReviewStore(self.database, outbox=self.outbox, station_tz=self.config.station.timezone,
                                        busy_timeout_s=self.config.storage.busy_timeout_s,
                                        known=lambda conn: KnownTaxa.of_station(conn, labels))
        return self._reviews

    def _review(self, reviewer: str, body: dict[str, Any]) -> Review:
        action = str(body.get("action", ""))
        if action not in ACTIONS:
            raise ReviewError(f"action must be one of {', '.join(ACTIONS)}")
        species = (str(body["species"]).strip() or None) if body.get("species") is not None else None
        individuals = _int(body.get("individuals"))
        # The explicit "new species" step: a correction to a name the station does not know.
        new_species = str(body.get("new_species", "")).lower() in ("1", "true", "on", "yes")
        with self._review_lock:
            store = self._store()
            if body.get("detection_id") not in (None, ""):
                return store.review_detection(int(body["detection_id"]), action, reviewer=reviewer, species=species,
                                              new_species=new_species)
            return store.review_event(int(body.get("event_id") or 0), action, reviewer=reviewer, species=species,
                                      individuals=individuals, new_species=new_species)

    def _undo(self, reviewer: str, review_id: int) -> Review:
        with self._review_lock:
            return self._store().undo(review_id, reviewer=reviewer)

    async def api_review(self, request: Request, ctx: Context) -> Response:
        if not isinstance(ctx.body, dict):
            return JSONResponse({"error": "a JSON object is expected"}, 400)
        try:
            review = await run_in_threadpool(self._review, ctx.reviewer, ctx.body)
        except (ReviewError, ValueError, TypeError) as error:
            return JSONResponse({"error": str(error)}, 400)
        except StoreError as error:
            return JSONResponse({"error": str(error)}, 503)
        log.info("review %d by %s: event %d %s %s", review.id, ctx.user, review.event_id, review.action,
                 review.species or review.individuals or "")
        return JSONResponse({"review": review.__dict__})

    async def api_undo(self, request: Request, ctx: Context) -> Response:
        review_id = _int((ctx.body or {}).get("review_id")) if isinstance(ctx.body, dict) else None
        if review_id is None:
            return JSONResponse({"error": "review_id is needed"}, 400)
        try:
            review = await run_in_threadpool(self._undo, ctx.reviewer, review_id)
        except ReviewError as error:
            return JSONResponse({"error": str(error)}, 400)
        return JSONResponse({"review": review.__dict__})

    async def review_form(self, request: Request, ctx: Context) -> Response:
        event_id = request.path_params["event_id"]
        body = {"event_id": event_id, **{k: v for k, v in ctx.form.items() if k != "csrf"}}
        try:
            await run_in_threadpool(self._review, ctx.reviewer, body)
        except (ReviewError, ValueError, TypeError) as error:
            return self._error(request, ctx, 400, str(error))
        return RedirectResponse(f"/event/{event_id}", 303)

    async def undo_form(self, request: Request, ctx: Context) -> Response:
        try:
            review = await run_in_threadpool(self._undo, ctx.reviewer, request.path_params["review_id"])
        except ReviewError as error:
            return self._error(request, ctx, 400, str(error))
        return RedirectResponse(f"/event/{review.event_id}", 303)


def _revocations_in(folder: Path) -> Revocations:
    """Revocations kept in `folder`/REVOKED_NAME, or in memory when that cannot be read or made."""
    path = folder / REVOKED_NAME
    try:
        return Revocations(path)
    except OSError as error:
        log.warning("ended sessions cannot be kept in %s (%s): a logout holds until a restart", path, error)
        return Revocations()


def _date(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def _int(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


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


def outbox_for(config: EdgeConfig, spec: Any = None, namer: Any = None) -> Any:
    """The daemon's OutboxWriter when [mqtt] is enabled (so a review queues the retained counts
    and an events update that the daemon's publisher sends, naming the model and the species'
    common names as the daemon's messages do), else None."""
    if not config.mqtt.enabled:
        return None
    from edge.publish.outbox_writer import OutboxWriter, common_names

    if spec is None:
        return OutboxWriter(config.station.device_id, config.station.timezone, None, {}, config.mqtt.outbox_max_rows,
                            namer=namer)
    return OutboxWriter(config.station.device_id, config.station.timezone, spec.model_id, spec.scientific_names,
                        config.mqtt.outbox_max_rows, spec.model_version, namer=namer,
                        common_names=common_names(spec.labels, namer))


def create_app(config: EdgeConfig) -> Starlette:
    """The ASGI app for `config` (raises WebStartError first, before anything is created, when
    it must not start)."""
    users = check_startup(config)
    spec = model_spec(config)
    web = WebApp(config, users, model_labels(spec), outbox_for(config, spec))
    web.report_pictures()
    return web.app()
