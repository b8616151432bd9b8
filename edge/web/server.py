"""How `edge web` meets the network: uvicorn with the connection-level limits it lacks.

uvicorn's `timeout_keep_alive` closes a connection idle *between* requests, and is disarmed by
every byte that arrives, so a client that sends half a request line and then a byte now and
then (slowloris) holds its connection, and its file descriptor, for ever; `limit_concurrency`
answers 503 only once a request is complete, so such connections are never refused either
(uvicorn issue #157 lists the missing request-start timeout). At the default 1,024 open files a
thousand of them starve every real request and make the accept loop log "Too many open files"
without end. An ASGI middleware cannot help: it runs only after the headers are parsed.

So the HTTP protocol is uvicorn's own h11 one, subclassed (`GuardedH11Protocol`) to add:
- a request deadline: a request must be received whole, headers and body, within
  `[web] header_timeout_s` of its first byte (of the connection's opening for the first one),
  else the connection is closed; it never limits how long the app takes to answer;
- connection limits at accept time: beyond `[web] max_connections` open connections, or
  `max_connections_per_client` from one address, a new connection gets a 503 and is closed at
  once, so the process never runs out of file descriptors (`check_open_files` makes sure the
  open-file limit leaves room for them).
"""

from __future__ import annotations

import asyncio
import logging
import resource
import socket
from dataclasses import dataclass
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from edge.config.web import WebConfig
from edge.web.logs import limit_log_rate

log = logging.getLogger(__name__)

# Files the process needs beside its connections: the database (and its WAL and shm), the
# snapshots and frames being read, the secret, logs, the Python runtime's own.
FILE_RESERVE = 64
REFUSAL = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n"
           b"connection: close\r\ncontent-length: 21\r\n\r\ntoo many connections\n")


class OpenFileLimitError(Exception):
    """The open-file limit leaves no room for web.max_connections (the CLI exits 2)."""


@dataclass(frozen=True)
class ConnectionLimits:
    """What one connection may hold; from [web] (`of`)."""

    request_timeout_s: float
    max_connections: int
    max_per_client: int

    @classmethod
    def of(cls, web: WebConfig) -> ConnectionLimits:
        return cls(web.header_timeout_s, web.max_connections, web.max_connections_per_client)


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for receiving each request and connection limits
    (module docstring). `limits` is set on the subclass `protocol_class` makes."""

    limits: ConnectionLimits

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        peer = transport.get_extra_info("peername")
        address = peer[0] if isinstance(peer, tuple) and peer else None
        open_now = self.connections
        # uvicorn types its connection set as every protocol it ships, and one (AutoZttpProtocol)
        # has no `client`; here every connection is a GuardedH11Protocol, getattr keeps it honest.
        same = sum(1 for other in open_now if (client := getattr(other, "client", None)) is not None
                   and client[0] == address)
        if len(open_now) >= self.limits.max_connections or (address is not None and same >= self.limits.max_per_client):
            # Refused before it is counted or parsed: the descriptor is freed at once.
            self._refused = True
            self.transport = transport
            log.warning("connection from %s refused: %d open (%d from that address; web.max_connections = %d, "
                        "web.max_connections_per_client = %d)", address, len(open_now), same,
                        self.limits.max_connections, self.limits.max_per_client)
            transport.write(REFUSAL)
            transport.close()
            return
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._refused:
            return
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._deadline is None and self.conn.their_state is h11.IDLE:
            self._arm()  # the first byte of the next request on a kept-alive connection
        super().data_received(data)
        if self.conn.their_state not in (h11.IDLE, h11.SEND_BODY):
            self._disarm()  # received whole (or the connection is done): the app's time is its own

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.limits.request_timeout_s, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if self.transport is None or self.transport.is_closing():
            return
        log.info("connection from %s closed: no whole request within %.0f s (web.header_timeout_s)",
                 self.client[0] if self.client else "?", self.limits.request_timeout_s)
        self.transport.close()  # connection_lost tells a running request it is gone


def protocol_class(limits: ConnectionLimits) -> type[GuardedH11Protocol]:
    """A GuardedH11Protocol subclass bound to `limits` (uvicorn makes one instance per connection
    and passes only its own config)."""
    return type("ConfiguredH11Protocol", (GuardedH11Protocol,), {"limits": limits})


def check_open_files(max_connections: int) -> int:
    """Make sure the open-file limit leaves room for `max_connections` plus FILE_RESERVE, raising
    the soft limit up to the hard one when it must; returns the limit in force. Raises
    OpenFileLimitError when even the hard limit is too low."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = max_connections + FILE_RESERVE
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            raise OpenFileLimitError(
                f"web.max_connections = {max_connections} needs {needed} open files, the limit is {hard}: "
                "lower web.max_connections or raise LimitNOFILE= (trailcam-web.service)")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
        soft = needed
    return soft


def serve(app: Any, web: WebConfig, listening: socket.socket) -> None:
    """Run `app` on the already-listening socket until a signal stops it, with [web]'s limits:
    the request deadline and connection limits (GuardedH11Protocol), `keep_alive_s` between
    requests, and log lines rate-limited (a flood of refused connections or bad requests must
    not fill the disk)."""
    import uvicorn

    limit_log_rate()
    config = uvicorn.Config(app, host=web.host, port=web.port, log_config=None, access_log=False, lifespan="on",
                            server_header=False, http=protocol_class(ConnectionLimits.of(web)),
                            timeout_keep_alive=web.keep_alive_s, backlog=128)
    uvicorn.Server(config).run(sockets=[listening])
