"""Who is asking: password hashes, signed session cookies, CSRF tokens and the login rate limit.

Everything here is the standard library (hashlib.scrypt, hmac, secrets), so the web app needs no
crypto package on a Pi.

Password hash format (what `edge web hash-password` prints and [web] users take):
`scrypt$<n>$<r>$<p>$<salt, base64>$<hash, base64>` with n=2**14, r=8, p=1 by default
(16 MiB and well under a second on a Pi 4), a 16-byte random salt and a 32-byte hash.

The session is a cookie `<payload base64>.<HMAC-SHA256 hex>` signed with the session secret:
payload = JSON {user, role, csrf, exp}. Every visitor gets one (an anonymous one holds only the
CSRF token), so every state-changing request can be checked against its session's token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
SECRET_BYTES = 32


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """A new salted scrypt hash of `password` in the documented format."""
    if not password:
        raise ValueError("an empty password cannot be hashed")
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=32, maxmem=128 * 1024 * 1024)
    return "$".join(["scrypt", str(n), str(r), str(p), _b64(salt), _b64(digest)])


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches `stored`; a malformed hash matches nothing."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt), n=int(n), r=int(r),
                                p=int(p), dklen=len(expected), maxmem=128 * 1024 * 1024)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def load_secret(path: Path) -> bytes:
    """The session signing key at `path`, created (0600, atomically) when absent, so a restart
    keeps everyone logged in and nobody needs to configure one."""
    try:
        data = path.read_bytes().strip()
        if len(data) >= 32:
            return data
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh = secrets.token_hex(SECRET_BYTES).encode("ascii")
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, fresh + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
    return fresh


@dataclass(frozen=True)
class Session:
    """One visitor: `user` None = not logged in; `csrf` = the token its forms and fetches carry."""

    user: str | None
    role: str | None
    csrf: str
    expires: float


class SessionSigner:
    """Signs and checks session cookies with one secret; a bad signature or an expired cookie reads as none."""

    def __init__(self, secret: bytes, max_age_s: int, clock: Callable[[], float] = time.time) -> None:
        self._secret = secret
        self.max_age_s = max_age_s
        self._clock = clock

    def new(self, user: str | None = None, role: str | None = None) -> Session:
        return Session(user, role, secrets.token_urlsafe(24), self._clock() + self.max_age_s)

    def dump(self, session: Session) -> str:
        payload = base64.urlsafe_b64encode(json.dumps(
            {"u": session.user, "r": session.role, "c": session.csrf, "e": int(session.expires)},
            separators=(",", ":")).encode("utf-8")).decode("ascii").rstrip("=")  # no '=': no quoted cookie
        return f"{payload}.{self._sign(payload)}"

    def load(self, cookie: str | None) -> Session | None:
        if not cookie or "." not in cookie:
            return None
        payload, signature = cookie.rsplit(".", 1)
        if not hmac.compare_digest(signature, self._sign(payload)):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            session = Session(data["u"], data["r"], str(data["c"]), float(data["e"]))
        except (ValueError, KeyError, TypeError):
            return None
        return session if session.expires > self._clock() else None

    def _sign(self, payload: str) -> str:
        return hmac.new(self._secret, payload.encode("ascii"), hashlib.sha256).hexdigest()


def csrf_ok(session: Session | None, token: str | None) -> bool:
    """The token a request carries equals its session's (constant time); missing = refused."""
    return bool(session and token) and hmac.compare_digest(session.csrf.encode(), str(token).encode())


class LoginLimiter:
    """At most `attempts` failed logins per (client address, user name) in `window_s` seconds."""

    def __init__(self, attempts: int, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.attempts = attempts
        self.window_s = window_s
        self._clock = clock
        self._failures: dict[tuple[str, str], deque[float]] = {}

    def _recent(self, key: tuple[str, str]) -> deque[float]:
        now = self._clock()
        failures = self._failures.setdefault(key, deque())
        while failures and failures[0] <= now - self.window_s:
            failures.popleft()
        return failures

    def blocked(self, client: str, user: str) -> bool:
        return len(self._recent((client, user))) >= self.attempts

    def failed(self, client: str, user: str) -> None:
        self._recent((client, user)).append(self._clock())
        if len(self._failures) > 10_000:  # bounded: forget the quiet ones
            for key in [k for k, v in self._failures.items() if not v][:5000]:
                del self._failures[key]

    def succeeded(self, client: str, user: str) -> None:
        self._failures.pop((client, user), None)
