"""Daemon-level MQTT fixtures: a station folder (camera, database, TOML) wired to a broker."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.edge.conftest import jpeg_bytes, query_rows, toml_value
from tests.fixtures.broker import Broker

SPECIES = ("NORTHERN CARDINAL", "BLACK-CAPPED CHICKADEE", "EASTERN BLUEBIRD")


@dataclass
class Station:
    root: Path
    camera: Path
    db: Path
    toml: Path
    birds25: Path
    model: Path
    device_id: str = "st1"

    def configure(self, broker: Broker, deployment: dict[str, object] | None = None, **mqtt: object) -> Path:
        settings = broker.mqtt_config(prefix="tc", drain_timeout_s=2.0, **mqtt)
        lines = [
            "[station]", f'device_id = "{self.device_id}"', 'timezone = "Europe/Berlin"',
            "[model]", f"path = {toml_value(self.model)}",
            "[storage]", f"database = {toml_value(self.db)}",
            "[events]", "independence_s = 1",
            "[mqtt]", *(f"{k} = {toml_value(v)}" for k, v in settings.items()),
            "[[cameras]]", 'name = "cam1"', f"path = {toml_value(self.camera)}",
        ]
        if deployment:  # cam1's [cameras.deployment] sub-table
            lines += ["[cameras.deployment]", *(f"{k} = {toml_value(v)}" for k, v in deployment.items())]
        self.toml.write_text("\n".join(lines) + "\n")
        return self.toml

    def write_frames(self, start: int, count: int, visit_gap_s: int = 2) -> None:
        """`count` frames, one visit each (gap > the 1 s independence interval), species cycling.

        Capture times lie earlier today in the station's zone, so the frames count towards
        today's retained `counts` (the store publishes today's tallies only).
        """
        zone = ZoneInfo("Europe/Berlin")
        now = datetime.now(zone)
        base = max(now.replace(hour=0, minute=0, second=1, microsecond=0), now - timedelta(seconds=300))
        for n in range(start, start + count):
            species = SPECIES[n % len(SPECIES)]
            taken = base + timedelta(seconds=visit_gap_s * n)
            offset = taken.strftime("%z")
            data = jpeg_bytes(self.birds25 / species / f"{n % 5 + 1}.jpg", taken.replace(tzinfo=None),
                              offset=f"{offset[:3]}:{offset[3:]}", comment=f"frame {n}")
            tmp = self.camera / f".IMG_{n:04d}.tmp"
            tmp.write_bytes(data)
            tmp.rename(self.camera / f"IMG_{n:04d}.JPG")

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        return query_rows(self.db, sql, params)

    def frames_ok(self) -> int:
        rows = self.query("SELECT count(*) FROM frames WHERE status = 'ok'")
        return rows[0][0] if rows else 0

    def outbox_depth(self) -> int:
        rows = self.query("SELECT count(*) FROM outbox")
        return rows[0][0] if rows else 0

    def event_uids(self) -> set[str]:
        return {r[0] for r in self.query("SELECT uid FROM events")}


@pytest.fixture
def station(tmp_path: Path, aiy_model_dir: Path, birds25_dir: Path) -> Station:
    camera = tmp_path / "camera"
    camera.mkdir()
    return Station(tmp_path, camera, tmp_path / "trailcam.db", tmp_path / "edge.toml", birds25_dir,
                   aiy_model_dir / "model.tflite")
