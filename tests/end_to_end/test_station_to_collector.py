"""A real edge daemon (AIY model, real photos, its own SQLite) publishing through a real
mosquitto into a real collector: the central rows equal the device's own database."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.config import load_config
from tests.collector.helpers import CollectorProcess, count, events_by_uid, query
from tests.edge.conftest import ThreadDaemon
from tests.edge.publish.conftest import Station
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.broker


def test_daemon_to_collector_rows_equal_the_devices(broker, central_db: str, tmp_path: Path, aiy_model_dir: Path,
                                                    birds25_dir: Path) -> None:
    camera = tmp_path / "camera"
    camera.mkdir()
    station = Station(tmp_path, camera, tmp_path / "trailcam.db", tmp_path / "edge.toml", birds25_dir,
                      aiy_model_dir / "model.tflite")
    config = load_config(station.configure(broker), environ={})
    collector = CollectorProcess(broker, central_db, tmp_path, extra=("--prefix", "tc")).start()
    runner = ThreadDaemon(config).start()
    try:
        station.write_frames(0, 6)
        wait_for(lambda: station.frames_ok() == 6, 60, what="6 frames recorded on the device")
        wait_for(lambda: station.outbox_depth() == 0, 30, what="the device's outbox drained")
    finally:
        runner.stop()
    wait_for(lambda: count(central_db, "devices", "state = 'stopped'") == 1, 30, what="the device stopped, centrally")
    wait_for(lambda: count(central_db, "events") == 6, 30, what="6 events centrally")
    assert collector.stop() == 0
    device_rows = {uid: (camera, species, started, ended, frames) for uid, camera, species, started, ended, frames in
                   station.query("SELECT uid, camera, species, started_at, ended_at, frame_count FROM events")}
    central = events_by_uid(central_db)
    assert {uid: (r["camera"], r["species"], r["started_at"], r["ended_at"], r["frame_count"])
            for uid, r in central.items()} == device_rows
    assert {r["device"] for r in central.values()} == {"st1"}
    # What each visit counts per species (`species_counts`): the device's `event_species`, row for row.
    device_species = set(station.query(
        "SELECT e.uid, s.species, s.individuals, s.frames FROM event_species s JOIN events e ON e.id = s.event_id"))
    assert device_species and set(query(central_db, "SELECT uid, species, individuals, frames FROM event_species "
                                                    "WHERE device = 'st1'")) == device_species
    assert {r["timezone"] for r in central.values()} == {"Europe/Berlin"}
    tallies = {s: e for s, e in station.query(
        "SELECT species, SUM(events) FROM daily_tallies GROUP BY species")}
    day_counts = {s: e for s, e in query(central_db, "SELECT species, events FROM day_counts WHERE device = 'st1'")}
    assert day_counts == tallies
    assert query(central_db, "SELECT model_id IS NOT NULL, timezone FROM devices") == [(True, "Europe/Berlin")]
