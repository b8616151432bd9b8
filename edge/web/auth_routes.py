"""The login form and logout of `edge web` (device and fleet view alike).

Why its own module, beside edge/web/auth.py: logging in is the one place a password is checked,
and it must stay cheap to refuse and hard to guess at: the login limit is counted before the
password is checked, at most [web] password_checks scrypt checks run at once, and an unknown name
costs what a wrong password costs. A login opens a new session (no fixation) tied to the
password it was opened with; logout revokes the old one wherever its cookie is kept.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from edge.web.auth import LoginLimiter, credential_key, dummy_hash, verify_password
from edge.web.sessions import Context, SessionGate
from edge.web.site import Routes, Site

log = logging.getLogger(__name__)


class LoginRoutes(Routes):
    """GET/POST /login and POST /logout."""

    def __init__(self, site: Site, gate: SessionGate) -> None:
        super().__init__(site)
        self.users = site.users
        self.gate = gate
        self.signer = gate.signer
        self.limiter = LoginLimiter(self.web.login_attempts, self.web.login_window_s)
        # At most web.password_checks scrypt checks (16 MiB each) at once; the rest wait here,
        # costing a coroutine each (their number is bounded by web.max_connections).
        self._password_slots = asyncio.Semaphore(self.web.password_checks)
        # An unknown name is checked against this (same scrypt parameters): as slow as a wrong password.
        self._dummy_hash = dummy_hash(next((u.password_hash for u in self.users.values()), None))

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
        self.gate.set_cookie(response, session)
        return response

    async def logout(self, request: Request, ctx: Context) -> Response:
        if not ctx.fresh and ctx.session.user is not None:
            await run_in_threadpool(self.signer.revoke, ctx.session)  # the old cookie is dead, wherever it is kept
        response = RedirectResponse("/login", 303)
        self.gate.set_cookie(response, self.signer.new())
        return response
