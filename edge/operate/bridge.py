"""A mosquitto bridge configuration for a site broker: store and forward to the central broker.

A site (a farm, a reserve's field station) runs one mosquitto that its devices publish to over
the local network; that broker forwards `<prefix>/#` to the central broker over whatever link
the site has, often a flaky cellular one. Why each line is there:

- `cleansession false` (and so `local_cleansession false`): the bridge's session survives a
  dropped link on both sides, so QoS 1 messages published while the link is down are queued
  for the bridge instead of dropped, and the central broker keeps what it owes back.
- `queue_qos0_messages true`: the snapshot topics the devices send with QoS 0 are queued too.
- `max_queued_messages`: mosquitto's per-client queue bound (default 1000, about an hour of
  one busy feeder). It is sized for days of outage; queued messages live in the broker's
  memory, so the bound is also a memory bound (about 1 KiB per message with its overhead).
- `persistence true` + `autosave_interval`: the in-memory store, the queue included, is written
  to `persistence_location/mosquitto.db` every autosave interval and at a clean exit, so a site
  broker restarted while the central one is away still forwards what it queued (measured in
  tests/end_to_end/test_bridge.py). A power cut loses at most the last interval's messages.
  `persistence_location` is written only when asked: Debian's /etc/mosquitto/mosquitto.conf
  sets it already and mosquitto refuses a second one ("Duplicate persistence_location").
- `bridge_protocol_version mqttv50` by default (any MQTT 5 broker centrally; `mqttv311` for an
  old one) and `try_private true`: the central broker learns it is a bridge (loop detection,
  retained flags forwarded as they are).
- `restart_timeout BASE CAP`: reconnect with mosquitto's decorrelated-jitter backoff, so a
  thousand sites whose central broker returns do not all reconnect in the same second.
- TLS verifies the central broker (`bridge_cafile`, or the system's CAs with `bridge_capath`;
  `bridge_insecure false`: its certificate must name the host). The password is read from a
  file the operator gives, never from the command line (visible in `ps` and shell history),
  and the written file is mode 0600, since mosquitto's bridge syntax has no password file.
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MAX_QUEUED_MESSAGES = 500_000
DEFAULT_AUTOSAVE_INTERVAL_S = 60
DEFAULT_RESTART_TIMEOUT = (10, 300)
SYSTEM_CA_PATH = "/etc/ssl/certs"
PROTOCOLS = ("mqttv50", "mqttv311")
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class BridgeError(ValueError):
    """A bad bridge option (the CLI exits 2, naming the option)."""


@dataclass(frozen=True)
class BridgeSettings:
    """What `edge bridge-config` writes; see the module docstring for why each default."""

    host: str
    port: int
    prefix: str = "trailcam"
    name: str = ""
    protocol: str = "mqttv50"
    tls: bool = False
    cafile: Path | None = None
    certfile: Path | None = None
    keyfile: Path | None = None
    username: str | None = None
    password: str | None = None
    max_queued_messages: int = DEFAULT_MAX_QUEUED_MESSAGES
    autosave_interval_s: int = DEFAULT_AUTOSAVE_INTERVAL_S
    persistence_location: Path | None = None
    restart_timeout: tuple[int, int] = DEFAULT_RESTART_TIMEOUT

    @property
    def connection(self) -> str:
        return self.name or default_name()

    @property
    def use_tls(self) -> bool:
        return self.tls or self.cafile is not None or self.certfile is not None


def default_name() -> str:
    """`trailcam-site-<host name>`: the bridge's client id at the central broker, unique per site."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "-", socket.gethostname())[:40] or "site"
    return f"trailcam-site-{cleaned}"


def parse_address(text: str) -> tuple[str, int]:
    """`HOST:PORT` (`[v6::addr]:PORT` for an IPv6 address); the port is required."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise BridgeError(f"{text!r} is not HOST:PORT (e.g. mqtt.example.org:8883)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if any(c.isspace() for c in host):
        raise BridgeError(f"{text!r}: the host name has white space")
    return host, int(port)


def read_password_file(path: Path) -> str:
    """The password on the file's first line (as [mqtt] password_file is read)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise BridgeError(f"{path}: {error.strerror or error}") from None
    password = text.splitlines()[0] if text else ""
    if not password:
        raise BridgeError(f"{path}: the file is empty")
    if any(c in password for c in "\r\n\0"):
        raise BridgeError(f"{path}: the password has a control character")
    return password


def _check(settings: BridgeSettings) -> None:
    if not settings.prefix or any(c in settings.prefix for c in "+#\0 ") or settings.prefix.strip("/") != settings.prefix:
        raise BridgeError(f"prefix {settings.prefix!r}: a topic without wildcards, spaces or leading/trailing '/'")
    if not _NAME.match(settings.connection):
        raise BridgeError(f"name {settings.connection!r}: 1-64 letters, digits, '.', '_' or '-'")
    if settings.protocol not in PROTOCOLS:
        raise BridgeError(f"protocol {settings.protocol!r}: one of {', '.join(PROTOCOLS)}")
    if (settings.certfile is None) != (settings.keyfile is None):
        raise BridgeError("certfile and keyfile go together (a client certificate)")
    if settings.password is not None and settings.username is None:
        raise BridgeError("a password needs a user name (mosquitto sends none without one)")
    base, cap = settings.restart_timeout
    if not 1 <= base <= cap:
        raise BridgeError(f"restart timeout {base} {cap}: 1 <= base <= cap seconds")
    if settings.max_queued_messages < 1000:
        raise BridgeError(f"max queued messages {settings.max_queued_messages}: at least 1000 (mosquitto's default)")
    if settings.autosave_interval_s < 1:
        raise BridgeError("autosave interval: at least 1 second")


def render_bridge(settings: BridgeSettings) -> str:
    """The mosquitto.conf fragment (for /etc/mosquitto/conf.d/)."""
    _check(settings)
    s = settings
    lines = [
        "# trailcam site bridge: forwards the devices' topics to the central broker, storing them",
        "# while the link is down. Written by `edge bridge-config` (docs/sites.md); rewrite it with",
        "# the same command rather than editing it. It holds the bridge password: keep it mode 0600.",
        "",
        "# Global: keep what is queued for the central broker across a link outage and a restart.",
        "persistence true",
    ]
    if s.persistence_location is not None:
        lines.append(f"persistence_location {str(s.persistence_location).rstrip('/')}/")
    else:
        lines.append("# persistence_location: as set in mosquitto.conf (Debian: /var/lib/mosquitto/); "
                     "mosquitto refuses a second one")
    lines += [
        f"autosave_interval {s.autosave_interval_s}",
        f"max_queued_messages {s.max_queued_messages}",
        "queue_qos0_messages true",
        "",
        f"connection {s.connection}",
        f"address {s.host}:{s.port}",
        f"remote_clientid {s.connection}",
        f"topic {s.prefix}/# out 1",
        f"bridge_protocol_version {s.protocol}",
        "try_private true",
        "cleansession false",
        "local_cleansession false",
        "start_type automatic",
        f"restart_timeout {s.restart_timeout[0]} {s.restart_timeout[1]}",
        "keepalive_interval 60",
        "notifications true",
    ]
    if s.use_tls:
        if s.cafile is not None:
            lines.append(f"bridge_cafile {s.cafile}")
        else:
            lines.append(f"bridge_capath {SYSTEM_CA_PATH}")
        if s.certfile is not None:
            lines += [f"bridge_certfile {s.certfile}", f"bridge_keyfile {s.keyfile}"]
        lines.append("bridge_insecure false")
    if s.username is not None:
        lines.append(f"remote_username {s.username}")
        if s.password is not None:
            lines.append(f"remote_password {s.password}")
    return "\n".join(lines) + "\n"


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` with mode 0600 from the first byte (a temporary file in the same
    folder, renamed over the target), so the password is never readable by others, not even
    for a moment, and a reader never sees half a file."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o600)  # whatever the umask
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
