"""Who is asking: password hashes, signed session cookies, CSRF tokens and the login rate limit.

Everything here is the standard library (hashlib.scrypt, hmac, secrets), so the web app needs no
crypto package on a Pi.

Password hash format (what `edge web hash-password` prints and [web] users take):
`scrypt$<n>$<r>$<p>$<salt, base64>$<hash, base64>` with n=2**14, r=8, p=1 by default
(16 MiB and well under a second on a Pi 4), a 16-byte random salt and a 32-byte hash.

The session is a cookie `<payload base64>.<HMAC-SHA256 hex>` signed with the session secret:
payload = JSON {user, role, csrf, exp, sid, key}. Every visitor gets one (an anonymous one holds
only the CSRF token), so every state-changing request can be checked against its session's token.
A signed cookie alone cannot be taken back, so two things end one early: `sid` is a random session
id that logout puts on a revocation list (`Revocations`, kept in a file beside the secret until
the cookie would have expired anyway), and `key` fingerprints the user's password hash, so a
changed password ends every session of that user.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

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


def dummy_hash(like: str | None = None) -> str:
    """A well-formed hash that no password matches, with the scrypt parameters of `like` (a
    configured user's hash): checking it costs what checking a real user's costs, so an unknown
    user name takes as long to refuse as a wrong password (names cannot be found by timing).
    Nothing is computed here: the salt and the digest are random bytes."""
    n, r, p = SCRYPT_N, SCRYPT_R, SCRYPT_P
    if like:
        try:
            _, n_text, r_text, p_text, _, _ = like.split("$")
            n, r, p = int(n_text), int(r_text), int(p_text)
        except ValueError:
            pass
    return "$".join(["scrypt", str(n), str(r), str(p), _b64(secrets.token_bytes(16)), _b64(secrets.token_bytes(32))])


def credential_key(password_hash: str) -> str:
    """What a session remembers of its user's password hash: a changed password ends the session.
    A truncated SHA-256 of the hash (the cookie is signed, not encrypted: it reveals nothing a
    guess could use)."""
    return hashlib.sha256(password_hash.encode("utf-8")).hexdigest()[:16]


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
    """One visitor: `user` None = not logged in; `csrf` = the token its forms and fetches carry;
    `sid` = the id logout revokes; `key` = credential_key of the user's hash at login ("" anonymous)."""

    user: str | None
    role: str | None
    csrf: str
    expires: float
    sid: str = ""
    key: str = ""


class Revocations:
    """Session ids ended before their cookie expires (logout), each kept until that expiry.

    With a `path` the list survives a restart (the secret does too, so the cookies would): one
    line `<sid> <expiry, unix seconds>` per revocation, appended (mode 0600), rewritten without
    the expired ones when it loads. Without one (a session key for this run only) memory is enough.
    """

    def __init__(self, path: Path | None = None, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._clock = clock
        self._lock = threading.Lock()
        self._ended: dict[str, float] = {}
        if path is not None:
            self._load(path)

    def _load(self, path: Path) -> None:
        try:
            text = path.read_text(encoding="ascii", errors="replace")
        except FileNotFoundError:
            return
        now = self._clock()
        for line in text.splitlines():
            sid, _, expiry = line.partition(" ")
            try:
                if sid and float(expiry) > now:
                    self._ended[sid] = float(expiry)
            except ValueError:
                continue
        try:
            self._rewrite(path)
        except OSError as error:  # read-only: the entries read still hold
            log.warning("cannot rewrite %s (%s)", path, error)

    def _rewrite(self, path: Path) -> None:
        temporary = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, "".join(f"{sid} {int(expiry)}\n" for sid, expiry in self._ended.items()).encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)

    def revoke(self, sid: str, expires: float) -> None:
        """End session `sid` now (its cookie would have lasted until `expires`); written to the
        file before it returns, so a logout the user saw also holds after a crash."""
        if not sid or expires <= self._clock():
            return
        with self._lock:
            now = self._clock()
            self._ended = {k: v for k, v in self._ended.items() if v > now}
            self._ended[sid] = expires
            if self.path is not None:
                try:
                    self._append(self.path, sid, expires)
                except OSError as error:
                    log.warning("logout recorded for this run only: cannot write %s (%s)", self.path, error)

    @staticmethod
    def _append(path: Path, sid: str, expires: float) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, f"{sid} {int(expires)}\n".encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)

    def __contains__(self, sid: object) -> bool:
        return sid in self._ended

    def __len__(self) -> int:
        return len(self._ended)


class SessionSigner:
    """Signs and checks session cookies with one secret; a bad signature, an expired cookie or a
    revoked session id reads as none."""

    def __init__(self, secret: bytes, max_age_s: int, clock: Callable[[], float] = time.time,
                 revoked: Revocations | None = None) -> None:
        self._secret = secret
        self.max_age_s = max_age_s
        self._clock = clock
        self.revoked = revoked if revoked is not None else Revocations(clock=clock)

    def new(self, user: str | None = None, role: str | None = None, key: str = "") -> Session:
        return Session(user, role, secrets.token_urlsafe(24), self._clock() + self.max_age_s,
                       secrets.token_urlsafe(16), key)

    def dump(self, session: Session) -> str:
        payload = base64.urlsafe_b64encode(json.dumps(
            {"u": session.user, "r": session.role, "c": session.csrf, "e": int(session.expires),
             "s": session.sid, "k": session.key},
            separators=(",", ":")).encode("utf-8")).decode("ascii").rstrip("=")  # no '=': no quoted cookie
        return f"{payload}.{self._sign(payload)}"

    def revoke(self, session: Session) -> None:
        """End `session` now: its cookie reads as none from here on."""
        self.revoked.revoke(session.sid, session.expires)

    def load(self, cookie: str | None) -> Session | None:
        if not cookie or "." not in cookie:
            return None
        payload, signature = cookie.rsplit(".", 1)
        if not hmac.compare_digest(signature, self._sign(payload)):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            session = Session(data["u"], data["r"], str(data["c"]), float(data["e"]), str(data["s"]), str(data["k"]))
        except (ValueError, KeyError, TypeError):
            return None
        if session.expires <= self._clock() or session.sid in self.revoked:
            return None
        return session

    def _sign(self, payload: str) -> str:
        return hmac.new(self._secret, payload.encode("ascii"), hashlib.sha256).hexdigest()


def csrf_ok(session: Session | None, token: str | None) -> bool:
    """The token a request carries equals its session's (constant time); missing = refused."""
    if not session or not token:
        return False
    return hmac.compare_digest(session.csrf.encode(), token.encode())


class LoginLimiter:
    """At most `attempts` logins per (client address, user name) in `window_s` seconds that did
    not succeed. An attempt is recorded *before* its password is checked, in one step with the
    check of the limit (`attempt`), so parallel requests cannot all pass the check while the slow
    password checks run; a success forgets the client's attempts."""

    def __init__(self, attempts: int, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.attempts = attempts
        self.window_s = window_s
        self._clock = clock
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str]) -> deque[float]:
        now = self._clock()
        failures = self._failures.setdefault(key, deque())
        while failures and failures[0] <= now - self.window_s:
            failures.popleft()
        return failures

    def attempt(self, client: str, user: str) -> bool:
        """Record one login attempt and say whether it may go on: False (nothing recorded) once
        `attempts` are in the window."""
        with self._lock:
            recent = self._recent((client, user))
            if len(recent) >= self.attempts:
                return False
            recent.append(self._clock())
            if len(self._failures) > 10_000:  # bounded: forget the quiet ones
                for key in [k for k, v in self._failures.items() if not v][:5000]:
                    del self._failures[key]
            return True

    def succeeded(self, client: str, user: str) -> None:
        with self._lock:
            self._failures.pop((client, user), None)
