"""`edge web` safe beyond loopback (issue 22, items 5-10): each attack as a real `edge web`
process over real sockets on 127.0.0.1, with what it costs the server measured from /proc
(peak RSS = VmHWM, open descriptors, CPU seconds) and bounded by what the fix must keep.

5 parallel guesses cannot pass the login limit; 6 the memory of parallel password checks and of a
huge body stays under the unit's MemoryMax; 7 slow connections neither starve real requests nor
flood the log; 8 logout ends the session; 9 an unknown name costs what a wrong password costs;
10 a rebound DNS name gets nothing (Host and Origin checks)."""

from __future__ import annotations

import http.client
import os
import resource
import socket
import sqlite3
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.edge.web.conftest import PASSWORDS, Client, Station, users_toml
from tests.fixtures.broker import free_port, wait_until

UNIT_MEMORY_MAX = 300 * 1024 * 1024  # trailcam-web.service MemoryMax=300M
SCRYPT_MEMORY = 16 * 1024 * 1024  # one check at n=2**14, r=8


@dataclass
class WebProcess:
    """`python -m edge web` on a free loopback port; its stderr in `log`."""

    proc: subprocess.Popen
    port: int
    log: Path

    def status(self, field: str) -> int:
        """A /proc/PID/status size in bytes (VmRSS, VmHWM)."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise KeyError(field)

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def cpu_s(self) -> float:
        """CPU seconds (user + system) the server has used, all threads."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()


@pytest.fixture
def start_web(station: Station, cli_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., WebProcess]]:
    started: list[WebProcess] = []

    def start(web: str = "", users: list[dict[str, str]] | None = None, open_files: int | None = None) -> WebProcess:
        config = tmp_path / f"edge-{len(started)}.toml"
        config.write_text(station.config_text + "\n[web]\n" + web + "\n" + users_toml(users or []))
        port = free_port()
        log = tmp_path / f"web-{len(started)}.log"

        def limit_files() -> None:  # systemd's default for a unit that sets no LimitNOFILE=
            if open_files is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

        with log.open("wb") as sink:
            proc = subprocess.Popen([sys.executable, "-m", "edge", "web", "--config", str(config), "--port", str(port)],
                                    env=cli_env, stdout=sink, stderr=subprocess.STDOUT, preexec_fn=limit_files)
        web_process = WebProcess(proc, port, log)
        started.append(web_process)
        wait_until(lambda: proc.poll() is not None or "serving the trailcam web app" in log.read_text(), 60,
                   "edge web listening")
        assert proc.poll() is None, log.read_text()
        return web_process

    yield start
    for web_process in started:
        web_process.proc.terminate()
        try:
            web_process.proc.wait(30)
        except subprocess.TimeoutExpired:
            web_process.proc.kill()
            web_process.proc.wait(10)


def _parallel(count: int, work: Callable[[int], int]) -> list[int]:
    """`work(i)` for i in range(count), each in its own thread, all released at once."""
    barrier = threading.Barrier(count)
    results: list[int | BaseException] = [0] * count

    def run(i: int) -> None:
        try:
            barrier.wait(30)
            results[i] = work(i)
        except BaseException as error:  # noqa: BLE001 -- reported below
            results[i] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    failures = [r for r in results if isinstance(r, BaseException)]
    assert not failures, failures[:3]
    return [int(r) for r in results]  # type: ignore[arg-type]


def _login_post(port: int, cookie: str, token: str, name: str, password: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("POST", "/login", urlencode({"csrf": token, "name": name, "password": password}),
                     {"Content-Type": "application/x-www-form-urlencoded", "Cookie": f"trailcam_session={cookie}"})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def _session(port: int) -> tuple[Client, str]:
    client = Client(port)
    token = client.csrf()
    assert client.cookie
    return client, token


# ----- item 5 ---------------------------------------------------------------------------------
def test_parallel_guesses_cannot_pass_the_login_limit(start_web, user_hashes) -> None:
    web = start_web("login_attempts = 5", user_hashes)
    client, token = _session(web.port)
    statuses = _parallel(40, lambda i: _login_post(web.port, client.cookie, token, "alice", f"guess-{i}"))
    # Each attempt is recorded before its password is checked: exactly 5 were checked.
    assert Counter(statuses) == {401: 5, 429: 35}, Counter(statuses)
    assert client.login("alice", PASSWORDS["alice"]).status == 429  # the right one, too late


# ----- item 6 ---------------------------------------------------------------------------------
def test_parallel_password_checks_stay_within_the_unit_memory(start_web, user_hashes) -> None:
    web = start_web("login_attempts = 1000", user_hashes)
    client, token = _session(web.port)
    assert client.get("/login").status == 200
    before = web.status("VmRSS")
    statuses = _parallel(40, lambda i: _login_post(web.port, client.cookie, token, "alice", f"guess-{i}"))
    assert Counter(statuses) == {401: 40}
    peak = web.status("VmHWM")
    print(f"40 parallel wrong logins: RSS before {before / 2**20:.0f} MiB, peak {peak / 2**20:.0f} MiB")
    # Two checks at once (web.password_checks): a few scrypt buffers, never forty.
    assert peak - before < 6 * SCRYPT_MEMORY, (before, peak)
    assert peak < UNIT_MEMORY_MAX


def test_a_large_body_is_refused_before_it_is_read(start_web, user_hashes) -> None:
    web = start_web("", user_hashes)
    _, token = _session(web.port)
    # Declared: refused on the headers alone (nothing of the body is sent before the answer).
    with socket.create_connection(("127.0.0.1", web.port), timeout=30) as sock:
        sock.sendall(f"POST /login HTTP/1.1\r\nHost: 127.0.0.1:{web.port}\r\n"
                     "Content-Type: application/x-www-form-urlencoded\r\n"
                     f"Content-Length: {200 * 2**20}\r\n\r\n".encode())
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    # Chunked (no length to judge by): 200 MB offered, the server stops reading at the limit.
    before = web.status("VmRSS")
    sent = _send_chunked(web.port, 200 * 2**20)
    peak = web.status("VmHWM")
    print(f"200 MB chunked POST /login: sent {sent / 2**20:.1f} MiB before the server closed; "
          f"RSS before {before / 2**20:.0f} MiB, peak {peak / 2**20:.0f} MiB")
    assert sent < 200 * 2**20  # the connection was closed long before the end
    assert peak - before < 32 * 2**20 and peak < UNIT_MEMORY_MAX, (before, peak)
    assert Client(web.port).get("/login").status == 200  # and it still serves


def _read_all(sock: socket.socket) -> bytes:
    """Everything until the server closes (a reset counts as closed); the socket's timeout bounds it."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def _send_chunked(port: int, total: int) -> int:
    """POST /login with a chunked body of up to `total` bytes; returns how much got sent before
    the server shut the connection."""
    chunk = b"a" * 2**20
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(f"POST /login HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                     "Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
        try:
            while sent < total:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
            sock.sendall(b"0\r\n\r\n")
            _read_all(sock)
        except (BrokenPipeError, ConnectionResetError):
            pass
    return sent


# ----- item 7 ---------------------------------------------------------------------------------
def test_slow_connections_neither_starve_requests_nor_flood_the_log(start_web) -> None:
    web = start_web("header_timeout_s = 2", open_files=1024)
    lines_before = len(web.lines())
    attackers: list[socket.socket] = []
    try:
        for _ in range(1100):  # half a request each, never finished, from 127.0.0.1
            sock = socket.socket()
            sock.settimeout(30)
            sock.connect(("127.0.0.1", web.port))
            try:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass  # refused at once: fine
            attackers.append(sock)
        # Someone else (another address) is served meanwhile.
        normal = http.client.HTTPConnection("127.0.0.1", web.port, timeout=30, source_address=("127.0.0.2", 0))
        normal.request("GET", "/")
        response = normal.getresponse()
        assert response.status == 200 and b"today" in response.read().lower()
        normal.close()
        fds = web.fds()
        print(f"1100 slow connections: the server holds {fds} descriptors")
        assert fds < 256 + 64  # web.max_connections + FILE_RESERVE, far below the 1024 limit
        # Every one of them is closed by the server: refused at once, or at the request deadline.
        for sock in attackers:
            try:
                sock.settimeout(30)
                rest = _read_all(sock)
            except TimeoutError:
                pytest.fail("a slow connection was still open 30 s after the request deadline")
            assert rest in (b"",) or rest.startswith(b"HTTP/1.1 503"), rest[:100]
    finally:
        for sock in attackers:
            sock.close()
    new_lines = web.lines()[lines_before:]
    print(f"log lines during the attack: {len(new_lines)}")
    assert not any("Too many open files" in line for line in new_lines)
    assert len(new_lines) < 100, new_lines[-20:]


def test_a_trickled_request_and_an_idle_connection_are_closed(start_web) -> None:
    """A byte every half second does not keep a request alive past the deadline (uvicorn's own
    keep-alive timer restarts on every byte); an idle kept-alive connection ends after keep_alive_s."""
    web = start_web("header_timeout_s = 2\nkeep_alive_s = 1")
    with socket.create_connection(("127.0.0.1", web.port), timeout=30) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\n")
        sock.settimeout(0.5)
        closed_after = None
        for tick in range(60):  # at most 30 s of trickling
            try:
                sock.sendall(b"X")
                if sock.recv(1024) == b"":
                    closed_after = tick
                    break
            except TimeoutError:
                continue  # still open: trickle on
            except (BrokenPipeError, ConnectionResetError):
                closed_after = tick
                break
        assert closed_after is not None, "the trickled request was never cut off"
    with socket.create_connection(("127.0.0.1", web.port), timeout=30) as sock:
        sock.sendall(f"GET /login HTTP/1.1\r\nHost: 127.0.0.1:{web.port}\r\n\r\n".encode())
        answer = _read_all(sock)  # the answer, then the server closes the idle connection
    assert answer.startswith(b"HTTP/1.1 200")


# ----- item 8 ---------------------------------------------------------------------------------
def test_logout_ends_the_session_for_good(start_web, user_hashes) -> None:
    web = start_web("", user_hashes)
    client = Client(web.port)
    assert client.login("alice", PASSWORDS["alice"]).status == 303
    assert client.get("/events").status == 200
    kept = client.cookie  # what a thief (or another tab) holds
    assert client.form("/logout", {"csrf": client.csrf()}).status == 303
    old = Client(web.port, cookie=kept)
    assert old.get("/events").status == 303  # back to the login page
    assert old.post_json("/api/review", {"event_id": 1, "action": "confirm"}, None).status in (401, 403)
    # And after a restart (same secret, so the cookie's signature is still good).
    web.proc.terminate()
    web.proc.wait(30)
    again = start_web("", user_hashes)
    assert Client(again.port, cookie=kept).get("/events").status == 303
    other = Client(again.port)
    assert other.login("alice", PASSWORDS["alice"]).status == 303 and other.get("/events").status == 200


def test_a_changed_password_ends_the_sessions(start_web, user_hashes) -> None:
    web = start_web("", user_hashes)
    client = Client(web.port)
    assert client.login("alice", PASSWORDS["alice"]).status == 303
    web.proc.terminate()
    web.proc.wait(30)
    from edge.web.auth import hash_password

    changed = [{**user_hashes[0], "password_hash": hash_password("alice-new-pass")}, user_hashes[1]]
    again = start_web("", changed)
    assert Client(again.port, cookie=client.cookie).get("/events").status == 303


# ----- item 9 ---------------------------------------------------------------------------------
def test_an_unknown_name_costs_what_a_wrong_password_costs(start_web, user_hashes) -> None:
    """Measured in the server's CPU seconds (what the response time follows, without the noise of
    a shared machine): an unknown name must run the same scrypt check as a wrong password."""
    web = start_web("login_attempts = 1000", user_hashes)
    client, token = _session(web.port)

    def cost(name: str) -> float:
        start = web.cpu_s()
        for i in range(10):
            assert _login_post(web.port, client.cookie, token, name, f"guess-{i}") == 401
        return web.cpu_s() - start

    known, unknown = cost("alice"), cost("nobody-here")
    print(f"10 logins: wrong password {known:.2f} CPU s, unknown user {unknown:.2f} CPU s")
    assert unknown > 0.6 * known, (known, unknown)


# ----- item 10 --------------------------------------------------------------------------------
def _raw(port: int, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            conn.putheader(name, value)
        conn.endheaders(body)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _reviews(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT COUNT(*) FROM reviews").fetchone()[0]
    except sqlite3.OperationalError:  # no review yet: the table comes with the first
        return 0
    finally:
        conn.close()


def test_a_rebound_dns_name_gets_nothing(start_web, station: Station) -> None:
    web = start_web("")  # loopback, no login: the case DNS rebinding aims at
    evil = "rebind.attacker.example"
    status, body = _raw(web.port, "GET", "/queue", {"Host": f"{evil}:{web.port}"})
    assert status == 400 and b"csrf" not in body.lower()
    # Even with a token taken honestly, a POST under the foreign name, or from a foreign page, is refused.
    client, token = _session(web.port)
    event_id = sqlite3.connect(station.database).execute("SELECT MIN(id) FROM events").fetchone()[0]
    review = f'{{"event_id": {event_id}, "action": "confirm"}}'.encode()
    headers = {"Content-Type": "application/json", "X-CSRF-Token": token, "Cookie": f"trailcam_session={client.cookie}"}
    assert _raw(web.port, "POST", "/api/review", {**headers, "Host": evil, "Origin": f"http://{evil}"}, review)[0] == 400
    assert _raw(web.port, "POST", "/api/review", {**headers, "Host": f"127.0.0.1:{web.port}",
                                                   "Origin": f"http://{evil}"}, review)[0] == 403
    assert _raw(web.port, "POST", "/api/review", {**headers, "Host": f"127.0.0.1:{web.port}",
                                                   "Origin": "null"}, review)[0] == 403
    assert _reviews(station.database) == 0
    # The app's own names still work: localhost, and a same-origin POST.
    assert _raw(web.port, "GET", "/queue", {"Host": f"localhost:{web.port}"})[0] == 200
    assert _raw(web.port, "POST", "/api/review", {**headers, "Host": f"127.0.0.1:{web.port}",
                                                   "Origin": f"http://127.0.0.1:{web.port}"}, review)[0] == 200
    assert _reviews(station.database) == 1


def test_allowed_hosts_names_what_the_app_answers_to(start_web) -> None:
    web = start_web('allowed_hosts = ["birdcam.local", "192.168.1.20"]')
    assert _raw(web.port, "GET", "/", {"Host": f"BirdCam.local:{web.port}"})[0] == 200
    assert _raw(web.port, "GET", "/", {"Host": "192.168.1.20"})[0] == 200
    assert _raw(web.port, "GET", "/", {"Host": f"127.0.0.1:{web.port}"})[0] == 400  # replaced, not added to
    assert _raw(web.port, "GET", "/", {})[0] == 400  # no Host at all


def test_allowed_hosts_are_checked_in_the_configuration(station: Station) -> None:
    from edge.config import ConfigError

    with pytest.raises(ConfigError, match="web.allowed_hosts"):
        station.config({"allowed_hosts": ["http://birdcam.local/"]})
    assert station.config({"host": "0.0.0.0"}).web.host_names() == {"localhost", "127.0.0.1", "::1"}
    assert "192.168.1.20" in station.config({"host": "192.168.1.20"}).web.host_names()
    assert station.config({"allowed_hosts": ["[::1]", "Birdcam.Local."]}).web.host_names() == {"::1", "birdcam.local"}


def test_log_lines_are_rate_limited() -> None:
    import logging

    from edge.web.logs import RateLimit

    now = [0.0]
    limit = RateLimit(burst=10, window_s=60, clock=lambda: now[0])
    records = [logging.LogRecord("asyncio", logging.ERROR, __file__, 1, "socket.accept() out of system resource",
                                 None, None) for _ in range(10_000)]
    kept = [r for r in records if limit.filter(r)]
    assert len(kept) == 10
    now[0] = 61.0
    later = logging.LogRecord("asyncio", logging.ERROR, __file__, 1, "socket.accept() out of system resource", None, None)
    assert limit.filter(later) and "9990 similar lines suppressed" in later.getMessage()
    other = logging.LogRecord("edge.web", logging.WARNING, __file__, 1, "something else", None, None)
    assert limit.filter(other)


def test_too_few_open_files_for_max_connections_is_a_usage_error(station: Station, cli_env, tmp_path: Path) -> None:
    config = tmp_path / "edge.toml"
    config.write_text(station.config_text + "\n[web]\nmax_connections = 2000\n")

    def limit_files() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))

    run = subprocess.run([sys.executable, "-m", "edge", "web", "--config", str(config), "--port", str(free_port())],
                         env=cli_env, capture_output=True, text=True, timeout=60, preexec_fn=limit_files)
    assert run.returncode == 2 and "web.max_connections" in run.stderr and "LimitNOFILE" in run.stderr, run.stderr

