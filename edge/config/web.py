"""[web] section: `edge web`, the operator's window (owned by the web area).

On 127.0.0.1 (the default) it may run without a login: only someone on the device reaches it.
Bound to any other address it refuses to start unless someone can log in: `users`, or the single
`password_hash` (user `admin`), or the systemd credential `web_password_hash`
($CREDENTIALS_DIRECTORY/web_password_hash, LoadCredential= in trailcam-web.service), read as
[mqtt] reads its password. Only password *hashes* are configured (`edge web hash-password`
writes one: `scrypt$<n>$<r>$<p>$<salt>$<hash>`), never passwords.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from edge.config.base import Section, TomlPath

CREDENTIAL_NAME = "web_password_hash"
DEFAULT_USER = "admin"


class WebUser(Section):
    name: str = Field(..., min_length=1, max_length=64, description="Login name (also recorded as the reviewer)")
    password_hash: str = Field(
        ..., description="The password's scrypt hash as `edge web hash-password` prints it "
                         "(`scrypt$n$r$p$salt$hash`), never the password itself")
    role: Literal["admin", "read"] = Field(
        "admin", description="admin: may review; read: sees every page, may not review")

    @field_validator("password_hash")
    @classmethod
    def _hash_format(cls, value: str) -> str:
        return _check_hash(value)


class WebConfig(Section):
    host: str = Field(
        "127.0.0.1", description="Address `edge web` binds. Any address but loopback needs a login "
                                 "(users, password_hash or the web_password_hash credential): the app "
                                 "refuses to start without one")
    port: int = Field(8470, ge=1, le=65535, description="TCP port of the web app")
    users: list[WebUser] = Field(
        default_factory=list, description="Who may log in: one table per user ([[web.users]] name, "
                                          "password_hash, role)")
    password_hash: str | None = Field(
        None, description="A single login `admin` (role admin) with this scrypt hash; unset: the "
                          "systemd credential web_password_hash is read when present")
    session_secret_file: TomlPath | None = Field(
        None, description="File holding the key that signs session cookies. Unset: "
                          "`web_session_secret` beside the database, generated (mode 0600) when absent")
    session_max_age_s: int = Field(
        7 * 86400, ge=60, description="A login lasts this long (seconds), then the cookie expires")
    secure_cookies: bool = Field(
        False, description="Mark cookies Secure (only sent over https): set it when a TLS proxy fronts the app")
    login_attempts: int = Field(
        5, ge=1, le=1000, description="Failed logins allowed per client address and user name within "
                                      "login_window_s; more are answered 429")
    login_window_s: float = Field(60.0, gt=0, description="The window of login_attempts, seconds")
    frame_images: bool = Field(
        True, description="Serve the recorded frames (with boxes) and detection crops by id; the event "
                          "snapshots are always served. Frames are read only inside a camera folder or "
                          "the archive")
    page_size: int = Field(50, ge=5, le=500, description="Rows per page of the events list and the review queue")
    allowed_hosts: list[str] | None = Field(
        None, description="Host names (or addresses) the app answers to, from the request's Host header; "
                          "anything else is answered 400 (DNS rebinding). Unset: localhost, 127.0.0.1, ::1 "
                          "and `host` when it is one address (not 0.0.0.0 or ::). Beyond loopback list the "
                          "names people type, e.g. [\"birdcam.local\", \"192.168.1.20\"]")
    max_body_bytes: int = Field(
        65536, ge=1024, le=16 * 1024 * 1024,
        description="Largest request body (bytes): a bigger one is answered 413 before it is read")
    password_checks: int = Field(
        2, ge=1, le=16, description="Password checks run at once (each scrypt check takes 16 MiB); more "
                                    "logins wait their turn")
    header_timeout_s: float = Field(
        10.0, gt=0, le=300, description="A request must arrive whole (headers and body) this many seconds "
                                        "after its first byte, or the connection is closed")
    keep_alive_s: int = Field(
        5, ge=1, le=300, description="An idle connection between requests is closed after this many seconds")
    max_connections: int = Field(
        256, ge=8, le=16384, description="Open connections at most; more are answered 503 and closed at once. "
                                         "The open-file limit must exceed it (trailcam-web.service: LimitNOFILE=)")
    max_connections_per_client: int = Field(
        64, ge=1, le=16384, description="Open connections at most from one client address (behind a reverse "
                                        "proxy: all of them)")

    @field_validator("password_hash")
    @classmethod
    def _hash_format(cls, value: str | None) -> str | None:
        return None if value is None else _check_hash(value)

    @field_validator("allowed_hosts")
    @classmethod
    def _host_names(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        names = []
        for entry in value:
            name = normal_host(entry)
            if name is None:
                raise ValueError(f"{entry!r} is not a host name or address (no scheme, port or path: "
                                 "e.g. \"birdcam.local\" or \"192.168.1.20\")")
            names.append(name)
        return names

    @model_validator(mode="after")
    def _checks(self) -> WebConfig:
        names = [user.name for user in self.users]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"users: duplicate user name(s): {', '.join(duplicates)}")
        if self.password_hash is not None and DEFAULT_USER in names:
            raise ValueError(f"password_hash is the login {DEFAULT_USER!r}, which users also defines: give it once")
        return self

    @property
    def loopback(self) -> bool:
        """Whether `host` is a loopback address (or `localhost`), reachable only from the device."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def host_names(self) -> frozenset[str]:
        """The Host names requests may carry: `allowed_hosts`, else the loopback names and `host`
        when it is a single address (a wildcard bind has no one name to add)."""
        if self.allowed_hosts is not None:
            return frozenset(self.allowed_hosts)
        names = set(LOOPBACK_NAMES)
        bound = normal_host(self.host)
        if bound is not None and bound not in ("0.0.0.0", "::"):
            names.add(bound)
        return frozenset(names)

    def resolved_users(self) -> list[WebUser]:
        """Everyone who may log in: `users`, plus `admin` from password_hash or the credential."""
        users = list(self.users)
        single = self.password_hash
        if single is None:
            credential = _credential_path()
            if credential is not None:
                text = credential.read_text(encoding="utf-8").strip()
                single = _check_hash(text) if text else None
        if single is not None and DEFAULT_USER not in {user.name for user in users}:
            users.append(WebUser(name=DEFAULT_USER, password_hash=single, role="admin"))
        return users


LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def normal_host(text: str) -> str | None:
    """A host name or address as Host headers are compared: lower case, IPv6 without brackets;
    None when `text` is not a bare name or address (a scheme, port, path or user in it)."""
    name = text.strip().lower()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    if not name:
        return None
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        pass
    allowed = set("abcdefghijklmnopqrstuvwxyz0123456789-.")
    return name.rstrip(".") if set(name) <= allowed and name.strip(".") else None


def _check_hash(value: str) -> str:
    parts = value.split("$")
    if len(parts) != 6 or parts[0] != "scrypt" or not all(p.isdigit() for p in parts[1:4]):
        raise ValueError("not a password hash of `edge web hash-password` (scrypt$n$r$p$salt$hash)")
    return value


def _credential_path() -> Path | None:
    creds = os.environ.get("CREDENTIALS_DIRECTORY")
    if creds and (Path(creds) / CREDENTIAL_NAME).is_file():
        return Path(creds) / CREDENTIAL_NAME
    return None
