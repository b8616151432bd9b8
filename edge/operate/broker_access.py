"""Who may publish what on a trailcam broker: per-device users, a password file and a topic ACL.

Why: the collector stores what arrives on `<prefix>/<device>/...` as that device's. Without
broker-side access control any client can publish on another device's topics (issue 22, item
3: a second client overwrote dev1's event and marked dev1 offline). The collector checks that a
payload's `device` equals its topic's, but only the broker can check that the topic is the
client's own. So each device logs in as a user named by its `[station] device_id`, and
mosquitto's ACL lets a user write only below `<prefix>/<its user name>/` (`pattern write
<prefix>/%u/#`); the will (`status` → `offline`) is checked the same way.

- The password file is mosquitto's own format (`user:$7$<iterations>$<salt>$<hash>`,
  PBKDF2-HMAC-SHA512 with a 12-byte salt, what `mosquitto_passwd` writes), made here so that
  no mosquitto tools are needed where the file is generated. 101 iterations as mosquitto_passwd's
  default: the passwords are 32 random bytes, so the iteration count adds nothing against a
  guess and would cost the broker CPU at every connect.
- Re-running keeps the users already in the file (their passwords do not change) and adds the
  new ones; each new password is written once, to `<credentials dir>/<user>.password` (mode
  0600), for the device's `[mqtt] password_file` (or its `mqtt_password` credential).
- The ACL also gives each device its Home Assistant discovery topics (`<discovery
  prefix>/+/trailcam_<device>/#`, write; `<discovery prefix>/status`, read), the collector user
  read access to `<prefix>/#`, and a site bridge's user (its remote login) write access to its
  own devices' topics only.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from edge.publish.discovery import node_id

HASH_ITERATIONS = 101
SALT_BYTES = 12
_USER = re.compile(r"[A-Za-z0-9_-]{1,64}")  # as [station] device_id: a safe topic level, a safe user name


class AccessError(ValueError):
    """A bad access option (the CLI exits 2, naming the option)."""


@dataclass(frozen=True)
class BrokerAccess:
    """The users and topics of one broker's access control."""

    devices: tuple[str, ...]
    prefix: str = "trailcam"
    discovery_prefix: str = "homeassistant"
    collector_user: str | None = "collector"
    bridge_user: str | None = None  # a site bridge's login at this broker: writes for `devices`

    def users(self) -> list[str]:
        """Every user the password file holds: the devices, then the collector."""
        return [*self.devices, *([self.collector_user] if self.collector_user else [])]


def check(access: BrokerAccess) -> None:
    if not access.devices:
        raise AccessError("no device: name each with --device ID")
    for name in (*access.devices, *(u for u in (access.collector_user, access.bridge_user) if u)):
        if not _USER.fullmatch(name):
            raise AccessError(f"{name!r}: a user is 1-64 letters, digits, '-' or '_' (as [station] device_id)")
    if len(set(access.users())) != len(access.users()):
        raise AccessError("a device has the collector's user name, or a device is named twice")
    for label, prefix in (("prefix", access.prefix), ("discovery prefix", access.discovery_prefix)):
        if not prefix or any(c in prefix for c in "+#\0 %") or prefix.strip("/") != prefix:
            raise AccessError(f"{label} {prefix!r}: a topic without wildcards, spaces, '%' or leading/trailing '/'")


def render_acl(access: BrokerAccess) -> str:
    """The mosquitto `acl_file`."""
    check(access)
    p = access.prefix
    lines = [
        "# trailcam broker access: written by `edge bridge-config --acl-out` (docs/fleet.md, \"Broker access\").",
        "# With an acl_file, mosquitto denies every topic not granted here. Anonymous clients get nothing.",
        "",
        "# Each device logs in as its [station] device_id and writes only its own topics (the will too).",
        f"pattern write {p}/%u/#",
    ]
    if access.collector_user:
        lines += ["", "# The collector reads every device's topics.", f"user {access.collector_user}", f"topic read {p}/#"]
    if access.bridge_user:
        lines += ["", "# A site bridge forwards its own devices' topics, and only theirs.", f"user {access.bridge_user}"]
        lines += [f"topic write {p}/{device}/#" for device in access.devices]
    lines += ["", "# Home Assistant discovery: each device its own entities, and Home Assistant's birth message."]
    for device in access.devices:
        lines += [f"user {device}", f"topic write {access.discovery_prefix}/+/{node_id(device)}/#",
                  f"topic read {access.discovery_prefix}/status"]
    return "\n".join(lines) + "\n"


def password_line(user: str, password: str, salt: bytes | None = None) -> str:
    """One line of mosquitto's password file for `user` (the format mosquitto_passwd writes)."""
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, HASH_ITERATIONS)
    return (f"{user}:$7${HASH_ITERATIONS}${base64.b64encode(salt).decode('ascii')}$"
            f"{base64.b64encode(digest).decode('ascii')}")


def read_password_file(path: Path) -> dict[str, str]:
    """user → its line, from an existing password file (none: empty)."""
    if not path.exists():
        return {}
    lines: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            user, sep, _ = line.partition(":")
            if not sep:
                raise AccessError(f"{path}: {line[:40]!r} is not a `user:hash` line")
            lines[user] = line
    return lines


def new_passwords(access: BrokerAccess, existing: dict[str, str]) -> dict[str, str]:
    """A fresh random password for each user the file lacks."""
    return {user: secrets.token_urlsafe(32) for user in access.users() if user not in existing}


def render_password_file(access: BrokerAccess, existing: dict[str, str], passwords: dict[str, str]) -> str:
    """The password file: the lines already there (other users too), then the new users'."""
    check(access)
    lines = dict(existing)
    for user, password in passwords.items():
        lines[user] = password_line(user, password)
    return "\n".join(lines.values()) + "\n"
