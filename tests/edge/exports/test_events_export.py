"""`edge export events`: the device's MQTT messages as JSON Lines, from a real edge database."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

import edge
from edge.cli.commands import main
from edge.store import queries
from edge.store.db import open_readonly
from tests.fixtures.station import DEVICE, ZONE, build_station_db


@pytest.fixture(scope="module")
def station_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_station_db(tmp_path_factory.mktemp("station") / "trailcam.db")


def export(tmp_path: Path, db: Path, *args: str) -> list[dict]:
    out = tmp_path / "export.jsonl"
    assert main(["export", "events", "--db", str(db), "--out", str(out), *args]) == 0
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def query(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return conn.execute(sql, params).fetchall()


def test_every_event_once_with_its_review_and_individuals(tmp_path: Path, station_db: Path) -> None:
    lines = export(tmp_path, station_db)
    assert {tuple(line) for line in lines} == {("topic", "payload")}
    info = lines[0]
    assert info["topic"] == f"trailcam/{DEVICE}/info"
    assert info["payload"]["timezone"] == ZONE and info["payload"]["cameras"] == ["cam1", "cam2"]
    assert info["payload"]["software_version"] == edge.__version__
    events = [line["payload"] for line in lines if line["topic"] == f"trailcam/{DEVICE}/events"]
    # What the device's own `edge events` says each visit counts: the headline species and its
    # MaxN, every species with its own (a rejected visit: nothing, 0).
    reader = open_readonly(station_db)
    try:
        own = queries.events(reader, limit=0)
    finally:
        reader.conn.close()
    def listed(counts: list[dict]) -> list[tuple]:
        return [(c["species"], c["individuals"], c["frames"]) for c in counts]

    expected = {row["uid"]: (row["species"], row["individuals"], "end" if row["state"] == "closed" else "update",
                             row["review"], listed(row["species_counts"])) for row in own}
    assert len(events) == len(expected) == 36
    assert {e["event_id"]: (e["species"], e["individuals"], e["change"], e["review"], listed(e["species_counts"]))
            for e in events} == expected
    assert any(len(e["species_counts"]) > 1 for e in events)  # mixed visits
    assert [e["individuals"] for e in events if e["review"] == "rejected"] == [0]
    assert sum(e["change"] == "update" for e in events) == 2  # the last visit of each camera is open
    assert [e["start"] for e in events] == sorted(e["start"] for e in events)
    reviewed = {e["review"]: e for e in events if e["review"]}
    assert reviewed["rejected"]["species"] is None and reviewed["corrected"]["species"] == "Cyanistes caeruleus"
    assert reviewed["corrected"]["id"].endswith(":reviewed:" + reviewed["corrected"]["id"].split(":reviewed:")[1])
    # Each message id is the one the daemon's builder gives: importing twice dedupes.
    assert len({e["id"] for e in events}) == len(events)


def test_day_counts_lines_equal_the_daily_tallies(tmp_path: Path, station_db: Path) -> None:
    lines = export(tmp_path, station_db)
    summaries = {line["payload"]["day"]: line["payload"] for line in lines if line["topic"].endswith("/counts")}
    tallies = query(station_db, "SELECT day, species, SUM(events), SUM(frames), SUM(individuals) FROM daily_tallies "
                                "GROUP BY day, species HAVING SUM(events) > 0 OR SUM(frames) > 0")
    assert sorted(summaries) == ["2026-10-24", "2026-10-25", "2026-10-26"]
    assert {(day, species, v["events"], v["frames"], v["individuals"])
            for day, s in summaries.items() for species, v in s["species"].items()} == set(tallies)
    per_species = [line for line in lines if "/counts/" in line["topic"]]
    assert len(per_species) == len(tallies)
    assert all(line["payload"]["timezone"] == ZONE for line in per_species)


def test_since_until_and_camera_filters(tmp_path: Path, station_db: Path) -> None:
    lines = export(tmp_path, station_db, "--since", "2026-10-25", "--until", "2026-10-25")
    events = [line["payload"] for line in lines if line["topic"].endswith("/events")]
    local_days = {e["start_local"][:10] for e in events}
    assert local_days == {"2026-10-25"}
    assert len(events) == query(station_db, "SELECT COUNT(*) FROM events WHERE started_at >= ? AND started_at < ?",
                                ("2026-10-24T22:00:00.000Z", "2026-10-25T23:00:00.000Z"))[0][0]  # 25 h (DST)
    assert [line["payload"]["day"] for line in lines if line["topic"].endswith("/counts")] == ["2026-10-25"]
    cam = export(tmp_path, station_db, "--camera", "cam2")
    assert {line["payload"]["camera"] for line in cam if line["topic"].endswith("/events")} == {"cam2"}
    assert not any("/counts" in line["topic"] for line in cam)  # one camera's numbers are not the device's day


def test_config_names_prefix_and_device(tmp_path: Path, station_db: Path) -> None:
    config = tmp_path / "edge.toml"
    config.write_text(f'[station]\ndevice_id = "{DEVICE}"\ntimezone = "{ZONE}"\n[mqtt]\nprefix = "farm/north"\n'
                      f'[storage]\ndatabase = "{station_db}"\n[[cameras]]\nname = "cam1"\npath = "{tmp_path}"\n')
    out = tmp_path / "x.jsonl"
    assert main(["export", "events", "--config", str(config), "--out", str(out)]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert {line["topic"].rsplit("/", 1)[0] for line in lines if "/counts/" not in line["topic"]} == {
        f"farm/north/{DEVICE}"}
    assert lines[0]["payload"]["cameras"] == ["cam1"]


def test_bad_bound_is_a_usage_error_and_writes_nothing(tmp_path: Path, station_db: Path, capsys) -> None:  # noqa: ANN001
    out = tmp_path / "x.jsonl"
    assert main(["export", "events", "--db", str(station_db), "--out", str(out), "--since", "yesterday"]) == 2
    assert "--since/--until" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob(".x.jsonl*"))
