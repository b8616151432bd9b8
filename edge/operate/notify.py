"""sd_notify spoken directly over $NOTIFY_SOCKET: READY, STATUS, WATCHDOG, STOPPING.

Why not libsystemd or the `sdnotify`/`systemd-python` packages: the protocol is one datagram
of newline-separated KEY=VALUE pairs to a Unix socket, and a Raspberry Pi install should not
need a compiled binding for that. Outside systemd ($NOTIFY_SOCKET unset) every call is a
cheap no-op, so the daemon calls the notifier unconditionally.

The watchdog must be fed by the *processing loop itself* (not a side thread): a hung
interpreter or a stuck loop then stops the pings and systemd restarts the service.
`Notifier.watchdog_due()` tells the loop whether half the watchdog interval has passed, as
sd_watchdog_enabled(3) recommends (WATCHDOG_USEC / 2).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

log = logging.getLogger(__name__)

SEND_TIMEOUT_S = 2.0


def _socket_address(raw: str) -> str | bytes:
    """Map $NOTIFY_SOCKET to a connectable address; '@name' is the abstract namespace."""
    if raw.startswith("@"):
        return b"\0" + raw[1:].encode()
    return raw


def watchdog_usec_from_env(environ: dict[str, str] | os._Environ | None = None) -> int | None:
    """WATCHDOG_USEC when it is meant for this process (WATCHDOG_PID unset or ours), else None."""
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC")
    if not usec:
        return None
    pid = env.get("WATCHDOG_PID")
    if pid and pid.strip() != str(os.getpid()):
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    return value if value > 0 else None


class Notifier:
    """One process's channel to systemd; thread-safe, never raises into the daemon."""

    def __init__(self, notify_socket: str | None = None, watchdog_usec: int | None = None,
                 clock=time.monotonic) -> None:
        raw = notify_socket if notify_socket is not None else os.environ.get("NOTIFY_SOCKET")
        self._address = _socket_address(raw) if raw else None
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._clock = clock
        usec = watchdog_usec if watchdog_usec is not None else watchdog_usec_from_env()
        #: seconds between pings (half the systemd timeout); None = no watchdog configured
        self.watchdog_interval: float | None = (usec / 2_000_000) if usec else None
        self._last_ping = float("-inf")
        self.sent: int = 0

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def send(self, *assignments: str) -> bool:
        """Send KEY=VALUE lines as one datagram; False (and a debug log) if it did not go out."""
        if self._address is None:
            return False
        message = "\n".join(assignments).encode()
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                    # A Unix datagram send blocks while the receiver's queue is full
                    # (net.unix.max_dgram_qlen): never let a stalled manager stall counting.
                    self._sock.settimeout(SEND_TIMEOUT_S)
                self._sock.sendto(message, self._address)
            except OSError as exc:  # systemd gone or socket path wrong: never fatal for counting
                log.debug("sd_notify to %r failed: %s", self._address, exc)
                return False
            self.sent += 1
            return True

    def ready(self, status: str | None = None) -> bool:
        lines = ["READY=1", f"MAINPID={os.getpid()}"]
        if status:
            lines.append(f"STATUS={_one_line(status)}")
        return self.send(*lines)

    def status(self, text: str) -> bool:
        return self.send(f"STATUS={_one_line(text)}")

    def stopping(self, status: str | None = None) -> bool:
        lines = ["STOPPING=1"]
        if status:
            lines.append(f"STATUS={_one_line(status)}")
        return self.send(*lines)

    def watchdog(self) -> bool:
        """Ping unconditionally (the loop proved it is alive)."""
        self._last_ping = self._clock()
        return self.send("WATCHDOG=1")

    def watchdog_due(self) -> bool:
        if self.watchdog_interval is None or self._address is None:
            return False
        return self._clock() - self._last_ping >= self.watchdog_interval

    def watchdog_tick(self) -> bool:
        """Called from the processing loop on every turn: pings only when half the interval passed."""
        if self.watchdog_due():
            return self.watchdog()
        return False

    def poll_timeout(self, default: float) -> float:
        """How long the loop may block waiting for a frame and still ping in time."""
        if self.watchdog_interval is None or self._address is None:
            return default
        return max(0.05, min(default, self.watchdog_interval / 2))

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None


def _one_line(text: str) -> str:
    return " ".join(str(text).split())
