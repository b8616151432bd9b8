"""The Starlette application of `edge web`: the composition root that builds the shared
context (edge/web/site.py: config, templates, render, read), the session gate every request
passes (edge/web/sessions.py) and the route modules, and lays out the route table
(docs/web.md, "Security model").

The routes, one module per concern: pages.py (the read-only pages), review_routes.py (the review
queue, reviews and undo, repeat places and their release: the app's only writes), image_routes.py
(pictures and clips by id), auth_routes.py (login, logout). The fleet view (fleet/web.py) builds
on this class with its own reader, pages and route table.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from edge.config import EdgeConfig
from edge.config.web import WebUser
from edge.store.db import user_name
from edge.web.auth import Revocations, SessionSigner, load_secret
from edge.web.auth_routes import LoginRoutes
from edge.web.guard import RequestGuard
from edge.web.image_routes import ImageRoutes
from edge.web.pages import Pages
from edge.web.review_routes import ReviewRoutes
from edge.web.sessions import SECRET_NAME, SessionGate, revocations_in
from edge.web.site import HERE, Site

log = logging.getLogger(__name__)


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


class WebApp(Site):
    """The device's app: the site, its session gate and route modules, and the route table."""

    def __init__(self, config: EdgeConfig, users: list[WebUser] | None = None, labels: list[dict[str, str]] | None = None,
                 outbox: Any = None) -> None:
        super().__init__(config, check_startup(config) if users is None else users, labels)
        signer = SessionSigner(self._secret(), self.web.session_max_age_s, revoked=self._revocations())
        self.gate = SessionGate(self.users, signer, self.web, user_name(), self.error)
        self.pages = Pages(self)
        self.reviews = ReviewRoutes(self, outbox)
        self.images = ImageRoutes(self)
        self.logins = LoginRoutes(self, self.gate)

    def _secret(self) -> bytes:
        """The session signing key: web.session_secret_file, else beside the database."""
        return load_secret(Path(self.web.session_secret_file or self.database.parent / SECRET_NAME))

    def _revocations(self) -> Revocations:
        """The sessions logout ended, in REVOKED_NAME beside the session secret (the list lasts
        as long as the key that signed the cookies). Unreadable or unwritable: kept in memory
        for this run, with a warning."""
        folder = Path(self.web.session_secret_file).parent if self.web.session_secret_file else self.database.parent
        return revocations_in(folder)

    def app(self) -> Starlette:
        page, write = self.gate.guard, self.gate.writer
        pages, reviews, images, logins = self.pages, self.reviews, self.images, self.logins
        routes = [
            Route("/", page(pages.today)),
            Route("/species", page(pages.species)),
            Route("/heatmap", page(pages.heatmap)),
            Route("/events", page(pages.events)),
            Route("/event/{event_id:int}", page(pages.event)),
            Route("/event/{event_id:int}/review", write(reviews.review_form), methods=["POST"]),
            Route("/review/{review_id:int}/undo", write(reviews.undo_form), methods=["POST"]),
            Route("/queue", page(reviews.queue)),
            Route("/health", page(pages.health)),
            Route("/img/snapshot/{event_id:int}", page(images.img_snapshot)),
            Route("/img/frame/{frame_id:int}", page(images.img_frame)),
            Route("/img/crop/{detection_id:int}", page(images.img_crop)),
            Route("/clip/{clip_id:int}", page(images.clip_file)),
            Route("/repeats", page(reviews.repeats)),
            Route("/repeats/{place_id:int}/release", write(reviews.release_form), methods=["POST"]),
            Route("/img/repeat/{place_id:int}", page(images.img_repeat)),
            Route("/api/review", write(reviews.api_review), methods=["POST"]),
            Route("/api/undo", write(reviews.api_undo), methods=["POST"]),
            Route("/login", page(logins.login, login=False), methods=["GET", "POST"]),
            Route("/logout", page(logins.logout, login=False), methods=["POST"]),
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
        """At shutdown (the lifespan's end): the review store, when a review opened it."""
        self.reviews.close()


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
    web.images.report_pictures()
    return web.app()
