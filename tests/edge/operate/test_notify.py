"""sd_notify over a real AF_UNIX datagram socket bound by the test (path and abstract namespace)."""

from __future__ import annotations

import os
import socket
import time
import uuid

import pytest

import edge.operate.notify
from edge.operate.notify import Notifier, watchdog_usec_from_env


@pytest.fixture
def path_socket(tmp_path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    address = str(tmp_path / "notify.sock")
    sock.bind(address)
    sock.settimeout(5)
    yield address, sock
    sock.close()


@pytest.fixture
def notifier_factory():
    """Notifier(...) that is closed after the test (no socket left to the garbage collector)."""
    made: list[Notifier] = []

    def make(*args, **kwargs) -> Notifier:
        made.append(Notifier(*args, **kwargs))
        return made[-1]

    yield make
    for notifier in made:
        notifier.close()


def receive(sock: socket.socket) -> list[str]:
    return sock.recv(4096).decode().split("\n")


def test_ready_status_watchdog_stopping_arrive_as_datagrams(path_socket, notifier_factory):
    address, sock = path_socket
    notifier = notifier_factory(notify_socket=address)
    assert notifier.ready("model loaded")
    assert receive(sock) == ["READY=1", f"MAINPID={os.getpid()}", "STATUS=model loaded"]
    assert notifier.status("12 frames\n(0 errors)")
    assert receive(sock) == ["STATUS=12 frames (0 errors)"]  # a newline would start a new assignment
    assert notifier.watchdog()
    assert receive(sock) == ["WATCHDOG=1"]
    assert notifier.stopping("SIGTERM")
    assert receive(sock) == ["STOPPING=1", "STATUS=SIGTERM"]
    assert notifier.sent == 4


def test_abstract_namespace_socket(notifier_factory):
    name = f"trailcam-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    sock.settimeout(5)
    try:
        assert notifier_factory(notify_socket="@" + name).ready()
        assert receive(sock)[0] == "READY=1"
    finally:
        sock.close()


def test_without_notify_socket_everything_is_a_quiet_no_op(monkeypatch, notifier_factory):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = notifier_factory()
    assert not notifier.enabled
    assert notifier.ready() is False and notifier.watchdog() is False and notifier.stopping() is False


def test_a_vanished_socket_never_raises(tmp_path, notifier_factory):
    notifier = notifier_factory(notify_socket=str(tmp_path / "gone.sock"))
    assert notifier.status("hello") is False


def test_watchdog_interval_is_half_of_watchdog_usec_and_pings_are_rate_limited(path_socket, notifier_factory):
    address, sock = path_socket
    now = [100.0]
    notifier = notifier_factory(notify_socket=address, watchdog_usec=4_000_000, clock=lambda: now[0])
    assert notifier.watchdog_interval == 2.0
    assert notifier.poll_timeout(30.0) == 1.0  # the loop wakes often enough to ping in time
    assert notifier.watchdog_tick()            # first turn pings
    assert receive(sock) == ["WATCHDOG=1"]
    now[0] += 1.9
    assert not notifier.watchdog_tick()        # not yet due
    now[0] += 0.2
    assert notifier.watchdog_tick()
    assert receive(sock) == ["WATCHDOG=1"]
    sock.setblocking(False)
    with pytest.raises(BlockingIOError):
        sock.recv(4096)                        # exactly two pings went out


def test_watchdog_env_is_ignored_when_meant_for_another_pid():
    assert watchdog_usec_from_env({"WATCHDOG_USEC": "6000000"}) == 6_000_000
    assert watchdog_usec_from_env({"WATCHDOG_USEC": "6000000", "WATCHDOG_PID": str(os.getpid())}) == 6_000_000
    assert watchdog_usec_from_env({"WATCHDOG_USEC": "6000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_usec_from_env({"WATCHDOG_USEC": "junk"}) is None
    assert watchdog_usec_from_env({}) is None


def test_a_manager_that_stops_reading_never_blocks_the_daemon_for_long(path_socket, monkeypatch, notifier_factory):
    monkeypatch.setattr(edge.operate.notify, "SEND_TIMEOUT_S", 0.2)
    address, _sock = path_socket  # bound, never read: its queue fills (net.unix.max_dgram_qlen)
    notifier = notifier_factory(notify_socket=address)
    for sent in range(10_000):
        started = time.monotonic()
        if not notifier.status(f"n{sent}"):
            break
    else:
        pytest.fail("the receive queue never filled")
    assert sent >= 1 and time.monotonic() - started < 1.0  # dropped after the timeout, not stuck
