"""`edge web --db <central database>`: the read-only fleet view, on both engines.

A real edge database (the daemon's own writer and reviews, tests/fixtures/station.py) is exported
with `edge export events` and loaded through the collector's import (its MQTT message handler
and sink) into a real PostgreSQL (tests/fixtures/postgres.py) and a real central SQLite file,
with a second device in another zone; the fleet view is served by a real uvicorn. Its figures
must be `edge counts`' own, on the device's SQLite file.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest

from collector.importer import import_file
from collector.sink import Sink
from edge.cli.commands import main
from edge.web.app import WebStartError
from fleet.web import create_central_app
from tests.edge.web.conftest import Client, Served, Station
from tests.fixtures.station import DEVICE, build_station_db

OTHER = "other-7"
DAY = "2026-10-25"  # the station's DST day (Europe/Berlin), with visits on both cameras
PASSWORD = "pw-Secret-4711"
ROW = re.compile(r'<tr data-species="([^"]+)">.*?class="num events">(\d+)</td><td class="num individuals">(\d+)</td>'
                 r'<td class="num frames">(\d+)</td>', re.S)


@pytest.fixture(scope="module")
def device_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_station_db(tmp_path_factory.mktemp("device") / "trailcam.db", visits=60)


def _export(source: Path, out: Path, status: str) -> Path:
    assert main(["export", "events", "--db", str(source), "--out", str(out)]) == 0
    device = DEVICE if status == "online" else OTHER
    with open(out, "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"topic": f"trailcam/{device}/status", "payload": status}) + "\n")
    return out


@pytest.fixture(params=["postgresql", "sqlite"])
def central(request: pytest.FixtureRequest, tmp_path: Path, device_db: Path) -> str:
    """The central database: this device (online, just heard from) and another one in New York
    (stopped, last heard from three hours ago). The PostgreSQL URL carries a password (the
    test cluster trusts loopback, so any password works) that must never be shown."""
    if request.param == "postgresql":
        try:
            import psycopg  # noqa: F401
        except ImportError:
            pytest.skip("psycopg is not installed (the `collector` extra): the edge-only and lowest-versions venvs")
        url = request.getfixturevalue("postgres_db")
        scheme, rest = url.split("://", 1)
        user, host = rest.split("@", 1)
        db = f"{scheme}://{user}:{PASSWORD}@{host}"
    else:
        db = str(tmp_path / "central.sqlite")
    other = tmp_path / "other.db"
    shutil.copy(device_db, other)
    with sqlite3.connect(other) as conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'station_id'", (OTHER,))
        conn.execute("UPDATE meta SET value = 'America/New_York' WHERE key = 'timezone'")
    conn.close()
    now = datetime.now(UTC)
    for source, status, clock in ((device_db, "online", lambda: now),
                                  (other, "stopped", lambda: now - timedelta(hours=3))):
        sink = Sink(db, clock=clock)
        sink.open()
        try:
            stats = import_file(_export(source, tmp_path / f"{status}.jsonl", status), sink)
        finally:
            sink.close()
        assert stats.rejected == 0 and stats.events == 60, stats
    return db


@pytest.fixture
def config(tmp_path: Path):  # noqa: ANN201
    """A plain [web] config: loopback, nobody to log in (the local operator), as on a device."""
    return Station(tmp_path, tmp_path, tmp_path / "unused.db", "").config()


@pytest.fixture
def serve() -> Iterator:
    served: list[Served] = []

    def start(app) -> Client:  # noqa: ANN001
        served.append(Served(app))
        return Client(served[-1].port)
    yield start
    for server in served:
        server.stop()


def counts_json(capsys, *args: str) -> list[dict]:  # noqa: ANN001
    assert main(["counts", "--by", "total", "--since", DAY, "--until", DAY, "--format", "json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def expected(capsys, db: str, *device: str) -> list[tuple[str, int, int, int]]:  # noqa: ANN001
    """`edge counts` for DAY: (species, visits, individuals, frames), the dashboard's order."""
    merged: dict[str, dict[str, int]] = {}
    for flag, unit in (([], "events"), (["--individuals"], "individuals"), (["--frames"], "frames")):
        for row in counts_json(capsys, "--db", db, *device, *flag):
            merged.setdefault(row["species"], {"events": 0, "individuals": 0, "frames": 0})[unit] = row[unit]
    rows = [(name, v["events"], v["individuals"], v["frames"]) for name, v in merged.items()]
    return sorted(rows, key=lambda r: (-r[1], r[0]))


def dashboard(client: Client, query: str) -> list[tuple[str, int, int, int]]:
    page = client.get(f"/?{query}")
    assert page.status == 200, page.text
    return [(name, int(a), int(b), int(c)) for name, a, b, c in ROW.findall(page.text)]


def test_dashboard_counts_equal_edge_counts_on_the_device(central: str, device_db: Path, config, serve,  # noqa: ANN001
                                                          capsys) -> None:  # noqa: ANN001
    own = expected(capsys, str(device_db))
    assert len(own) >= 2 and all(visits > 0 for _, visits, _, _ in own)
    one = serve(create_central_app(config, central, device=DEVICE))
    assert dashboard(one, f"day={DAY}") == own
    # The whole fleet: each device's own local day, summed: `edge counts` on the central database.
    fleet = serve(create_central_app(config, central))
    assert dashboard(fleet, f"day={DAY}") == expected(capsys, central)
    assert dashboard(fleet, f"day={DAY}&device={DEVICE}") == own
    assert dashboard(fleet, f"day={DAY}") != own  # the other device (New York days) is in it


def test_pages_of_the_fleet_view(central: str, device_db: Path, config, serve, capsys) -> None:  # noqa: ANN001
    client = serve(create_central_app(config, central))
    events = client.get("/events?from=2026-10-24&to=2026-10-27")
    assert events.status == 200
    assert f'<td data-label="device">{DEVICE}</td>' in events.text and f'<td data-label="device">{OTHER}</td>' in events.text
    assert "/event/" not in events.text and "/queue" not in events.text and "/img/" not in events.text
    species = counts_json(capsys, "--db", str(device_db))[0]["species"]
    page = client.get(f"/species?name={quote(species)}&device={DEVICE}")
    assert page.status == 200 and "<svg" in page.text
    heat = client.get("/heatmap?from=2026-10-24&to=2026-10-27")
    assert heat.status == 200 and "<svg" in heat.text
    assert client.get("/?device=nope").status == 404


def test_devices_page_lists_state_and_silence(central: str, config, serve) -> None:  # noqa: ANN001
    client = serve(create_central_app(config, central))
    page = client.get("/devices")
    assert page.status == 200
    rows = dict(re.findall(r'<tr data-device="([^"]+)" data-state="([^"]+)"', page.text))
    assert rows == {DEVICE: "online", OTHER: "stopped"}
    assert re.search(rf'data-device="{OTHER}" data-state="stopped" class="silent"', page.text)
    assert not re.search(rf'data-device="{DEVICE}"[^>]*class="silent"', page.text)
    assert "2 devices, 1 silent" in page.text


def test_device_only_routes_answer_404_and_nothing_is_written(central: str, config, serve) -> None:  # noqa: ANN001
    client = serve(create_central_app(config, central, device=DEVICE))
    for path in ("/event/1", "/queue", "/health", "/img/snapshot/1", "/img/frame/1", "/img/crop/1"):
        reply = client.get(path)
        assert reply.status == 404, path
        assert "central view" in reply.text and "edge web" in reply.text, path
    token = client.csrf()
    for path in ("/event/1/review", "/review/1/undo"):
        assert client.form(path, {"csrf": token, "action": "confirm"}).status == 404, path
    for path in ("/api/review", "/api/undo"):
        reply = client.post_json(path, {"event_id": 1, "action": "confirm", "review_id": 1}, token)
        assert reply.status == 404 and "central view" in reply.json()["error"], path
    home = client.get("/")
    assert home.status == 200 and 'href="/queue"' not in home.text and 'href="/health"' not in home.text
    assert 'href="/devices"' in home.text


def test_the_password_never_shows(central: str, config, serve, caplog) -> None:  # noqa: ANN001
    caplog.set_level(logging.DEBUG)
    client = serve(create_central_app(config, central))
    pages = [client.get(path).text for path in ("/", "/events", "/devices", "/species", "/heatmap", "/queue",
                                                 "/?device=nope")]
    if central.startswith("postgresql"):
        assert PASSWORD in central and "***" in pages[0]
    assert all(PASSWORD not in text for text in pages)
    assert PASSWORD not in caplog.text


def test_refusals(central: str, config, tmp_path: Path, device_db: Path) -> None:  # noqa: ANN001
    with pytest.raises(WebStartError, match="no device 'nope'"):
        create_central_app(config, central, device="nope")
    plain = tmp_path / "plain.sqlite"
    sqlite3.connect(plain).close()
    with pytest.raises(WebStartError, match="not a trailcam central database"):
        create_central_app(config, str(plain))


def test_edge_web_on_the_central_database(central: str, device_db: Path, config, tmp_path: Path,  # noqa: ANN001
                                          cli_env: dict[str, str]) -> None:
    """The command itself: serves the fleet view, logs the URL and the database without its password."""
    import subprocess
    import sys

    from tests.fixtures.broker import free_port

    toml = tmp_path / "edge.toml"  # the empty config the `config` fixture wrote: defaults, loopback
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "edge", "web", "--config", str(toml), "--db", central,
                             "--device", DEVICE, "--port", str(port), "--silent-after", "1h"],
                            env=cli_env, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        for line in proc.stderr:
            lines.append(line)
            if "Application startup complete" in line:
                break
        assert any(f"on http://127.0.0.1:{port}/ (the fleet view of" in line for line in lines), lines
        page = Client(port).get("/devices")
        assert page.status == 200 and f'data-device="{DEVICE}"' in page.text and OTHER not in page.text
    finally:
        proc.terminate()
        rest = proc.communicate(timeout=30)[1]
    assert PASSWORD not in "".join(lines) + rest

    def usage(*args: str) -> str:
        run = subprocess.run([sys.executable, "-m", "edge", "web", "--config", str(toml), *args], env=cli_env,
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 2, run.stderr
        assert PASSWORD not in run.stderr
        return run.stderr

    assert "--device needs --db naming a central database" in usage("--db", str(device_db), "--device", DEVICE)
    assert "no device 'nope'" in usage("--db", central, "--device", "nope")
    assert "--silent-after" in usage("--db", central, "--silent-after", "soon")


def test_login_required_off_loopback(central: str, tmp_path: Path, serve, user_hashes) -> None:  # noqa: ANN001
    """The device's [web] rules, unchanged: off loopback nobody gets in without a login, and
    without users configured it does not start."""
    from tests.edge.web.conftest import PASSWORDS

    station = Station(tmp_path, tmp_path, tmp_path / "unused.db", "")
    with pytest.raises(WebStartError, match="not a loopback address"):
        create_central_app(station.config(web={"host": "0.0.0.0"}), central)
    client = serve(create_central_app(station.config(web={"host": "0.0.0.0", "users": user_hashes}), central))
    for path in ("/", "/devices", "/events"):
        reply = client.get(path)
        assert reply.status == 303 and reply.headers["location"].startswith("/login"), path
    assert client.login("bob", PASSWORDS["bob"]).status == 303
    page = client.get(f"/species?device={DEVICE}")
    assert page.status == 200 and f'name="device" value="{DEVICE}"' in page.text  # the form keeps the device


def test_database_away_answers_503_without_the_password(central: str, config, serve,  # noqa: ANN001
                                                        request: pytest.FixtureRequest) -> None:
    if not central.startswith("postgresql"):
        pytest.skip("a server to stop: PostgreSQL only")
    server = request.getfixturevalue("postgres_server")
    client = serve(create_central_app(config, central))
    assert client.get("/devices").status == 200
    server.stop()
    try:
        reply = client.get("/devices")
        assert reply.status == 503 and "postgresql://" in reply.text and PASSWORD not in reply.text
    finally:
        server.start()
    assert client.get("/devices").status == 200


def test_heatmap_stays_small_whatever_species_a_device_sent(config, serve, tmp_path: Path) -> None:  # noqa: ANN001
    """Issue 22, item 4: a 10 MB species made the fleet heatmap page 251 MB. The collector now
    rejects it (a label is at most 200 characters), and the page of a label at the bound stays small."""
    from collector.messages import MAX_LABEL, Rejected, parse
    from collector.sink import Message
    from edge.publish.messages import event_message
    from tests.collector.helpers import context, event_history, event_row

    db = str(tmp_path / "central.sqlite")
    longest = "L" * MAX_LABEL
    huge = json.loads(event_history("cam-h", 1)[0][1])
    huge["species"] = "S" * (10 * 1024 * 1024)
    ok = event_message(event_row("cam-h", 2, 1, species=longest), "new", context("cam-h"))
    messages = [Message("trailcam/cam-h/events", parse("trailcam/cam-h/events", raw), raw)
                for raw in (json.dumps(huge).encode(), ok.payload.encode())]
    assert isinstance(messages[0].parsed, Rejected) and not isinstance(messages[1].parsed, Rejected)
    sink = Sink(db)
    try:
        sink.write(messages)
    finally:
        sink.close()
    page = serve(create_central_app(config, db)).get("/heatmap?from=2026-11-28&to=2026-11-30")
    assert page.status == 200 and longest in page.text and "SSSS" not in page.text
    assert len(page.text.encode()) < 100_000, len(page.text.encode())


def test_the_cli_default_for_silence_is_the_fleets() -> None:
    """`edge web --silent-after` names its default as text (registering the flag must not load
    the fleet's server code on a device); it is the fleet's own default."""
    from edge.cli.web import SILENT_AFTER_DEFAULT
    from fleet.devices import DEFAULT_SILENT_AFTER

    assert SILENT_AFTER_DEFAULT == DEFAULT_SILENT_AFTER
