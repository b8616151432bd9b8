"""A real HTTP receiver on 127.0.0.1 for Apprise's json:// target, and frames of two cardinal visits."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.edge.conftest import aiy_model, bird_photo, jpeg_bytes, make_config  # noqa: F401 - fixtures shared with tests/edge/conftest.py


class Receiver:
    """Records every JSON POST it is sent; `stop()` closes the port (a target that is down),
    `start()` opens the same port again."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.received: list[dict] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    receiver.received.append({"path": self.path, **json.loads(body)})
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def messages(self) -> list[dict]:
        with self._lock:
            return list(self.received)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.stop()


def yesterday_noon() -> datetime:
    """Noon UTC yesterday: in the past whenever the test runs, within a day or two of now, and
    far from midnight, so both visits fall on one station day (UTC)."""
    today = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    return (today - timedelta(days=1)).replace(tzinfo=None)


def two_visits(camera: Path, bird_photo, start: datetime | None = None, species: str = "NORTHERN CARDINAL") -> None:
    """Two visits of one species 10 minutes apart (two frames each, 3 s apart), EXIF times in UTC."""
    start = start or yesterday_noon()
    camera.mkdir(parents=True, exist_ok=True)
    for visit in range(2):
        for shot in range(2):
            taken = start + timedelta(minutes=10 * visit, seconds=3 * shot)
            (camera / f"V{visit}_{shot}.jpg").write_bytes(jpeg_bytes(bird_photo(species, 1 + shot), taken, "+00:00"))
