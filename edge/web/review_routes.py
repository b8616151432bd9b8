"""What a person changes from `edge web`: the review queue, a visit's or a bird's review
(confirm, relabel, count, not a bird) and its undo, by form or JSON, and the repeat places
(edge/store/repeats.py) with their release.

Why its own module: these are the app's only writes. They go through one
edge.store.reviews.ReviewStore (the second writer beside the daemon, opened at the first review),
with the daemon's OutboxWriter when [mqtt] is enabled so that the retained counts follow, and one
lock keeps the app's writes one at a time. Every route here is behind the admin role
(SessionGate.writer) but the two pages.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from edge.store import repeat_release
from edge.store import repeats as repeat_places
from edge.store.db import StoreError
from edge.store.known_taxa import KnownTaxa
from edge.store.reviews import ACTIONS, Review, ReviewError, ReviewStore, review_queue
from edge.web.queries import Reader
from edge.web.sessions import Context
from edge.web.site import Routes, Site, parse_int

log = logging.getLogger(__name__)


class ReviewRoutes(Routes):
    """The review queue, reviews and their undo, the repeat places and their release."""

    def __init__(self, site: Site, outbox: Any = None) -> None:
        super().__init__(site)
        self.outbox = outbox
        self._reviews: ReviewStore | None = None
        self._review_lock = threading.Lock()

    def close(self) -> None:
        """Close the review store, when a review opened it."""
        if self._reviews is not None:
            self._reviews.close()
            self._reviews = None

    # ----- pages ---------------------------------------------------------------------------
    async def queue(self, request: Request, ctx: Context) -> Response:
        chosen = request.query_params.get("species") or None

        def work(reader: Reader) -> Response:
            ids = [row["id"] for row in review_queue(reader.conn, species=chosen, limit=self.web.page_size)]
            rows = [reader.event(i) for i in ids]
            return self._render("queue.html", ctx, page="queue", rows=rows, chosen=chosen or "",
                                names=reader.species_names(), labels=self.labels, local=reader.local)
        return self._read(request, ctx, work)

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

    # ----- repeat detections (edge/store/repeats.py) ---------------------------------------------
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
        individuals = parse_int(body.get("individuals"))
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
        review_id = parse_int((ctx.body or {}).get("review_id")) if isinstance(ctx.body, dict) else None
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
