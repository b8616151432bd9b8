"""`edge counts` / `edge events` from the central database equal the device's own answers.

A real edge database (the daemon's Store writer and reviews, tests/fixtures/station.py) is exported
with `edge export events` and loaded by the collector's own import (collector/importer.py: the
MQTT message handler and sink) into a real PostgreSQL (tests/fixtures/postgres.py) and a real
central SQLite file; every report must print exactly what the device's SQLite file prints.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from collector.importer import import_file
from collector.sink import Sink
from edge.cli.commands import main
from tests.fixtures.station import DEVICE, build_station_db


@pytest.fixture(scope="module")
def device_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_station_db(tmp_path_factory.mktemp("device") / "trailcam.db", visits=60)


def other_device(device_db: Path, tmp_path: Path) -> Path:
    """The same visits on another device in another zone, so that --device has something to leave out."""
    other = tmp_path / "other.db"
    shutil.copy(device_db, other)
    with sqlite3.connect(other) as conn:
        conn.execute("UPDATE meta SET value = 'other-7' WHERE key = 'station_id'")
        conn.execute("UPDATE meta SET value = 'America/New_York' WHERE key = 'timezone'")
    conn.close()
    return other


@pytest.fixture(params=["postgresql", "sqlite"])
def central(request: pytest.FixtureRequest, tmp_path: Path, device_db: Path) -> str:
    """The central database holding this device's messages (and a second device's)."""
    db = request.getfixturevalue("postgres_db") if request.param == "postgresql" else str(tmp_path / "central.sqlite")
    exports = []
    for n, source in enumerate([device_db, other_device(device_db, tmp_path)]):
        out = tmp_path / f"export-{n}.jsonl"
        assert main(["export", "events", "--db", str(source), "--out", str(out)]) == 0
        exports.append(out)
    sink = Sink(db)
    sink.open()
    try:
        first = import_file(exports[0], sink)
        import_file(exports[0], sink)  # idempotent: importing twice changes nothing (the reports below)
        import_file(exports[1], sink)
    finally:
        sink.close()
    assert first.rejected == 0 and first.events == 60 and first.infos == 1, first
    return db


def report(capsys, *args: str) -> str:  # noqa: ANN001
    assert main(list(args)) == 0
    return capsys.readouterr().out


REPORTS = [
    ["counts", "--by", "day"], ["counts", "--by", "hour"], ["counts", "--by", "total"],
    ["counts", "--by", "day", "--individuals"], ["counts", "--by", "hour", "--individuals"],
    ["counts", "--by", "total", "--individuals"], ["counts", "--by", "day", "--frames"],
    ["counts", "--by", "total", "--frames", "--since", "2026-10-25", "--until", "2026-10-25"],
    ["counts", "--by", "hour", "--since", "2026-10-25T01:00", "--until", "2026-10-25T05:00"],
    ["counts", "--by", "day", "--camera", "cam2"], ["counts", "--by", "day", "--species", "Parus major"],
    ["counts", "--by", "day", "--timezone", "Asia/Tokyo"],
    ["events", "--limit", "0"], ["events", "--limit", "7"], ["events", "--since", "2026-10-25", "--camera", "cam1"],
    ["events", "--species", "Cyanistes caeruleus", "--limit", "0"],
]


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_same_answers_from_the_device_and_the_central_database(central: str, device_db: Path, capsys,  # noqa: ANN001
                                                               fmt: str) -> None:
    for args in REPORTS:
        own = report(capsys, *args, "--format", fmt, "--db", str(device_db))
        fleet = report(capsys, *args, "--format", fmt, "--db", central, "--device", DEVICE)
        assert fleet == own, args
        assert own.strip() not in ("", "[]") and "(no rows)" not in own, args  # every report has rows to compare


def test_whole_fleet_and_device_filter(central: str, device_db: Path, capsys) -> None:  # noqa: ANN001
    own = json.loads(report(capsys, "counts", "--by", "total", "--format", "json", "--db", str(device_db)))
    fleet = json.loads(report(capsys, "counts", "--by", "total", "--format", "json", "--db", central))
    # Two devices with the same visits: twice the totals.
    assert [(r["species"], r["events"] * 2) for r in own] == [(r["species"], r["events"]) for r in fleet]
    other = json.loads(report(capsys, "events", "--limit", "0", "--format", "json", "--db", central,
                              "--device", "other-7"))
    mine = json.loads(report(capsys, "events", "--limit", "0", "--format", "json", "--db", str(device_db)))
    assert {e["uid"] for e in other} == {e["uid"] for e in mine}
    assert all(e["start_local"].endswith(("-04:00", "-05:00")) for e in other)  # its own zone, New York
    both = json.loads(report(capsys, "events", "--limit", "0", "--format", "json", "--db", central))
    assert {e["device"] for e in both} == {DEVICE, "other-7"} and len(both) == 2 * len(mine)


def test_usage_errors(central: str, device_db: Path, capsys) -> None:  # noqa: ANN001
    assert main(["counts", "--db", central, "--device", "nope"]) == 2
    assert "no device 'nope'" in capsys.readouterr().err
    assert main(["counts", "--db", central, "--device", DEVICE, "--by", "hour", "--frames"]) == 2
    assert "--frames" in capsys.readouterr().err
    assert main(["counts", "--db", str(device_db), "--device", "other-7"]) == 2
    assert f"device {DEVICE!r}" in capsys.readouterr().err


def test_without_psycopg_the_error_says_what_to_install(edge_venv_python: Path, cli_env: dict[str, str],
                                                        repo_root: Path) -> None:
    """The edge-only environment (a Pi's: no psycopg) reads device databases and says how to read a central one."""
    import subprocess

    probe = subprocess.run([str(edge_venv_python), "-c", "import psycopg"], capture_output=True, env=cli_env)
    if probe.returncode == 0:
        pytest.skip("psycopg is installed in the edge-only environment")
    result = subprocess.run([str(edge_venv_python), "-m", "edge", "counts", "--db", "postgresql://u@127.0.0.1:1/x",
                             "--device", DEVICE], capture_output=True, text=True, env=cli_env, cwd=repo_root)
    assert result.returncode == 2
    assert "pip install 'trailcam[collector]'" in result.stderr
