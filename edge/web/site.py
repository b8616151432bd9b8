"""What every route module of `edge web` shares: the configuration, the templates with their
name filters, rendering a page, and reading the database in one snapshot per request.

Why its own module: the pages, the review and picture routes and the login form (pages.py,
review_routes.py, image_routes.py, auth_routes.py) each serve one concern but render and read
alike; the fleet view (fleet/web.py) changes how a page is rendered and what it reads from by
overriding `Site.render` and `Site.read`, and every route module follows, because it goes
through the site.

The database is read over a fresh read-only connection per request (one consistent snapshot).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from edge.classify.names import station_namer
from edge.config import EdgeConfig
from edge.config.web import WebUser
from edge.store.db import StoreError, open_readonly
from edge.web.queries import Reader
from edge.web.sessions import Context

HERE = Path(__file__).resolve().parent


class Site:
    """The shared context of the route modules: config, users, labels, templates; render and read."""

    def __init__(self, config: EdgeConfig, users: list[WebUser], labels: list[dict[str, str]] | None = None) -> None:
        self.config = config
        self.web = config.web
        self.database = Path(config.storage.database)
        self.users = {user.name: user for user in users}
        self.open_access = not self.users  # loopback only (edge.web.app.check_startup)
        self.labels = labels or []
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

    # ----- answers ---------------------------------------------------------------------------
    def error(self, request: Request, ctx: Context, status: int, message: str) -> Response:
        """An error as JSON for the API (or a JSON request), else as the error page."""
        if request.url.path.startswith("/api/") or request.headers.get("content-type", "").startswith("application/json"):
            return JSONResponse({"error": message}, status)
        return self.render("error.html", ctx, status=status, message=message, code=status)

    def render(self, name: str, ctx: Context, status: int = 200, **values: Any) -> HTMLResponse:
        """Template `name` with what every page shows (CSRF token, who, the station)."""
        html = self.templates.get_template(name).render(
            csrf=ctx.session.csrf, user=ctx.user, role=ctx.role, open_access=self.open_access,
            station=self.config.station.device_id, taxa=ctx.taxa, **values)
        return HTMLResponse(html, status)

    # ----- reading ---------------------------------------------------------------------------
    def reader(self) -> Reader:
        """A fresh read-only Reader (raises StoreError when the database cannot be opened)."""
        return Reader(open_readonly(self.database, self.config.storage.busy_timeout_s).conn)

    def read(self, request: Request, ctx: Context, work: Callable[[Reader], Response]) -> Response:
        """`work` over one read snapshot, with the page's taxa in `ctx`; 503 when the database
        cannot be opened."""
        try:
            reader = self.reader()
        except StoreError as error:
            return self.render("error.html", ctx, status=503, message=str(error), code=503)
        try:
            reader.conn.execute("BEGIN")
            ctx.taxa = reader.taxa()
            return work(reader)
        finally:
            reader.conn.close()


class Routes:
    """The base of a route module: the site's config and its render/read, under the names the
    handlers used when they were WebApp's methods (so a moved handler reads as it did)."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.config = site.config
        self.web = site.web
        self.database = site.database
        self.labels = site.labels

    def readable(self, label: str | None, taxa: dict[str, Any] | None = None) -> str | None:
        return self.site.readable(label, taxa)

    def _render(self, name: str, ctx: Context, status: int = 200, **values: Any) -> HTMLResponse:
        return self.site.render(name, ctx, status, **values)

    def _error(self, request: Request, ctx: Context, status: int, message: str) -> Response:
        return self.site.error(request, ctx, status, message)

    def _reader(self) -> Reader:
        return self.site.reader()

    def _read(self, request: Request, ctx: Context, work: Callable[[Reader], Response]) -> Response:
        return self.site.read(request, ctx, work)


def parse_date(text: str | None) -> date | None:
    """A query's `YYYY-MM-DD`, or None when absent or malformed (the page uses its default)."""
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def parse_int(value: Any) -> int | None:
    """A query's or a form's whole number, or None when absent or malformed."""
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None
