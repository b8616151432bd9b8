"""The collector speaks systemd's notify protocol like the edge daemon (Type=notify, WatchdogSec=):
READY once running, the watchdog fed by the writer loop itself, STOPPING on SIGTERM. A real
collector process, a real mosquitto, a real SQLite central database, and a real Unix datagram
socket standing in for systemd's $NOTIFY_SOCKET."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.collector.helpers import CollectorProcess, Device, count, event_history
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.broker


class FakeManager:
    """The socket systemd listens on: collects the datagrams the service sends."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.lines: list[str] = []

    def drain(self) -> list[str]:
        while True:
            try:
                self.lines += self.sock.recv(4096).decode().split("\n")
            except TimeoutError:
                return self.lines

    def count(self, line: str) -> int:
        return sum(1 for seen in self.drain() if seen == line)


def test_ready_watchdog_and_stopping_reach_systemd(broker_factory, tmp_path: Path) -> None:
    manager = FakeManager(tmp_path / "notify.sock")
    broker = broker_factory()
    db = str(tmp_path / "central.sqlite")
    # WATCHDOG_USEC 0.4 s: a ping at least every 0.2 s while the loop turns.
    collector = CollectorProcess(broker, db, tmp_path, env={"NOTIFY_SOCKET": str(tmp_path / "notify.sock"),
                                                             "WATCHDOG_USEC": "400000"}).start()
    wait_for(lambda: manager.count("READY=1") == 1, 20, what="READY=1")
    assert any(line.startswith("STATUS=connected to 127.0.0.1:") for line in manager.drain())
    # The writer loop keeps pinging while idle, and while it commits a stream.
    pings = manager.count("WATCHDOG=1")
    wait_for(lambda: manager.count("WATCHDOG=1") >= pings + 3, 20, what="watchdog pings while idle")
    device = Device(broker, "cam-w")
    device.publish_many(event_history("cam-w", 0, frames=3))
    wait_for(lambda: count(db, "events") == 1, 30, what="the event committed")
    pings = manager.count("WATCHDOG=1")
    wait_for(lambda: manager.count("WATCHDOG=1") > pings, 20, what="watchdog pings after a commit")
    assert collector.stop() == 0
    assert manager.count("STOPPING=1") == 1
    assert manager.count("READY=1") == 1
    device.close()


def test_the_watchdog_is_fed_while_the_database_is_away(broker_factory, tmp_path: Path) -> None:
    """A database that cannot be opened is waited for with backoff: the waiting loop is alive and
    says so (STATUS), so systemd does not kill a collector that is doing the right thing."""
    manager = FakeManager(tmp_path / "notify.sock")
    broker = broker_factory()
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the database's folder should be")
    db = str(blocked / "central.sqlite")
    collector = CollectorProcess(broker, db, tmp_path, env={"NOTIFY_SOCKET": str(tmp_path / "notify.sock"),
                                                             "WATCHDOG_USEC": "400000"}).start()
    device = Device(broker, "cam-d")
    device.publish_many(event_history("cam-d", 0, frames=2))
    wait_for(lambda: any(line.startswith("STATUS=database unavailable") for line in manager.drain()), 30,
             what="the database-away status")
    pings = manager.count("WATCHDOG=1")
    wait_for(lambda: manager.count("WATCHDOG=1") >= pings + 3, 20, what="watchdog pings while waiting")
    assert collector.proc is not None and collector.proc.poll() is None
    assert collector.stop() == 0
    device.close()
