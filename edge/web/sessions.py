"""Who is asking, per request: the session cookie, the CSRF check of every POST, the login and
role checks, and the headers every answer carries (docs/web.md, "Security model").

Why its own module: this is the one gate every route passes, for the device's pages and the
fleet view alike; the routes behind it only read the `Context` it hands them. The primitives
(hashes, signed cookies, revocation, the login limit) are edge/web/auth.py's; this is where a
request meets them.

Every request gets a signed session cookie (HttpOnly, SameSite=Strict, Secure when configured)
carrying its CSRF token; a POST without the right token (form field `csrf` or header
`X-CSRF-Token`) is refused with 403, a review by a `read` user with 403. With users configured
every page needs a login; without users the app runs only on loopback and whoever reaches it is
the local operator.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from edge.config.web import WebConfig, WebUser
from edge.web.auth import Revocations, Session, SessionSigner, credential_key, csrf_ok

log = logging.getLogger(__name__)

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
        """Who writes: the logged-in user, for a handler behind login (SessionGate.guard answers
        401 to anyone else before the handler runs, so this never raises there)."""
        if self.user is None:
            raise RuntimeError("no logged-in user: the handler is not guarded with login")
        return self.user


Handler = Callable[[Request, Context], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]
ErrorPage = Callable[[Request, Context, int, str], Response]


def revocations_in(folder: Path) -> Revocations:
    """Revocations kept in `folder`/REVOKED_NAME, or in memory when that cannot be read or made."""
    path = folder / REVOKED_NAME
    try:
        return Revocations(path)
    except OSError as error:
        log.warning("ended sessions cannot be kept in %s (%s): a logout holds until a restart", path, error)
        return Revocations()


class SessionGate:
    """Turns a handler `(request, Context)` into a Starlette endpoint behind the session, CSRF,
    login and role checks; answers refused requests with `error` (the app's error page, so the
    fleet view's own rendering applies)."""

    def __init__(self, users: dict[str, WebUser], signer: SessionSigner, web: WebConfig, local_user: str,
                 error: ErrorPage) -> None:
        self.users = users
        self.open_access = not users  # loopback only (edge.web.app.check_startup)
        self.signer = signer
        self.web = web
        self.local_user = local_user
        self._error = error

    def who(self, session: Session) -> tuple[str | None, str | None]:
        """The session's user and role; (None, None) for nobody or a password changed since."""
        if self.open_access:
            return self.local_user, "admin"
        user = self.users.get(session.user or "")
        if user is None or session.key != credential_key(user.password_hash):
            return (None, None)  # unknown, or logged in with a password that has changed since
        return (user.name, user.role)

    def guard(self, handler: Handler, *, login: bool = True, write: bool = False) -> Endpoint:
        """`handler` behind the checks: a POST's CSRF token, a login (`login`), the admin role (`write`)."""
        async def endpoint(request: Request) -> Response:
            session = self.signer.load(request.cookies.get(COOKIE))
            fresh = session is None
            if session is None:
                session = self.signer.new()
            user, role = self.who(session)
            ctx = Context(session, user, role, fresh)
            if request.method == "POST":
                raw = await request.body()
                kind = request.headers.get("content-type", "")
                token = request.headers.get("x-csrf-token")
                if kind.startswith("application/json"):
                    try:
                        ctx.body = json.loads(raw or b"null")
                    except ValueError:
                        return self.finish(ctx, JSONResponse({"error": "not JSON"}, 400))
                else:
                    ctx.form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
                    token = token or ctx.form.get("csrf")
                if not csrf_ok(session, token):
                    return self.finish(ctx, self._error(request, ctx, 403, "missing or wrong CSRF token"))
            if login and user is None:
                if request.method == "GET" and not request.url.path.startswith(("/img/", "/api/")):
                    return self.finish(ctx, RedirectResponse(f"/login?next={quote(request.url.path)}", 303))
                return self.finish(ctx, self._error(request, ctx, 401, "log in first"))
            if write and role != "admin":
                return self.finish(ctx, self._error(request, ctx, 403, f"{user} may read, not review"))
            return self.finish(ctx, await handler(request, ctx))
        return endpoint

    def writer(self, handler: Handler) -> Endpoint:
        """`handler` for the admin role only (a review, a release)."""
        return self.guard(handler, write=True)

    def finish(self, ctx: Context, response: Response) -> Response:
        """The answer with a fresh session's cookie and the security headers."""
        if ctx.fresh:
            self.set_cookie(response, ctx.session)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    def set_cookie(self, response: Response, session: Session) -> None:
        response.set_cookie(COOKIE, self.signer.dump(session), max_age=self.web.session_max_age_s, path="/",
                            httponly=True, samesite="strict", secure=self.web.secure_cookies)
