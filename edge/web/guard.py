"""The checks a request passes before any page code sees it (docs/web.md, "Security model"):
its Host must be one the app was configured to answer to, a POST's Origin must be the app's own,
and its body must fit `[web] max_body_bytes`.

Why Host: a page on another site can have its own DNS name re-pointed at 127.0.0.1 (DNS
rebinding); the browser then sends that name as Host and treats the answers as the other site's,
CSRF token included. Answering only the configured names shuts that door; the Origin check is
the second lock for every request that changes something.

Why here: a pure ASGI middleware inside Starlette's error handling, so the body limit applies
before the app reads anything (a declared Content-Length is refused unread; a chunked body is
counted as it arrives and refused when it passes the limit), for the device app and the fleet
view alike.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from edge.config.web import normal_host

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class BodyTooLarge(Exception):
    """A chunked body passed the limit while the app read it."""


def host_of(header: str | None) -> str | None:
    """The host name of a Host header (`name`, `name:port`, `[v6]:port`), normalised; None when it
    is missing or malformed."""
    if not header:
        return None
    try:
        parts = urlsplit(f"//{header}")
        parts.port  # noqa: B018 -- raises on a port that is not a number
        name = parts.hostname
    except ValueError:
        return None
    if name is None or parts.username is not None or parts.path or parts.query or parts.fragment:
        return None
    return normal_host(name)


def same_origin(origin: str, host_header: str) -> bool:
    """Whether an Origin header names this very site: http(s)://<the request's Host>."""
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and not parts.path.strip("/") and \
        parts.netloc.lower() == host_header.strip().lower()


class RequestGuard:
    """Host allow-list, same-origin POSTs and the body limit, in front of the app."""

    def __init__(self, app: ASGIApp, *, hosts: frozenset[str], max_body_bytes: int) -> None:
        self.app = app
        self.hosts = hosts
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        host_header = headers.get("host", "")
        if host_of(host_header) not in self.hosts:
            await _plain(send, 400, "unknown host: this app answers only to the names in web.allowed_hosts")
            return
        if scope["method"] not in SAFE_METHODS:
            origin = headers.get("origin")
            if origin is not None and not same_origin(origin, host_header):
                await _plain(send, 403, "cross-origin request refused (Origin is not this site)")
                return
            if headers.get("sec-fetch-site") == "cross-site":
                await _plain(send, 403, "cross-site request refused")
                return
        length = headers.get("content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                await _plain(send, 400, "bad Content-Length")
                return
            if declared > self.max_body_bytes:
                await _plain(send, 413, f"request body over {self.max_body_bytes} bytes (web.max_body_bytes)")
                return
        started = False
        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLarge:
            if not started:
                await _plain(send, 413, f"request body over {self.max_body_bytes} bytes (web.max_body_bytes)")


def _headers(scope: Scope) -> dict[str, str]:
    """The request's headers by lower-case name (the first of repeated ones)."""
    found: dict[str, str] = {}
    for name, value in scope.get("headers", []):
        found.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
    return found


async def _plain(send: Send, status: int, text: str) -> None:
    """A short plain-text refusal that also closes the connection (what is left of the request
    is never read)."""
    body = (text + "\n").encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close"), (b"x-content-type-options", b"nosniff")]})
    await send({"type": "http.response.body", "body": body})
