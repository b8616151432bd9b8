"""A crafted station for the export tests: a real SQLite database written by the real Store and
ReviewStore (the daemon's writer and the web app's), and its TOML configuration.

What it holds (Europe/Berlin; 2026-05-01 and 2026-05-02 UTC mornings):
- camera "feeder" (detector): a visit of 1, 3, 2 robins (MaxN 3); an empty frame; a visit of 2
  birds the classifier could not name (`unknown`); a jay visit a reviewer corrected to robin and
  set to 2 individuals; a visit a reviewer rejected; a robin and a wren together, the wren
  confirmed by a reviewer on its own; two mixed visits, each one frame: a Mourning Dove with a
  Downy Woodpecker (1 + 1), and an Eastern Bluebird with 2 House Sparrows (1 + 2), which the
  previous release counted as their headline species alone (2 and 3 birds of one species);
- camera "gate" (no detector: frames classified whole): a jay visit of 2 frames on the second day,
  and a frame with no bird.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge.classify.decision import Decision
from edge.classify.labels import Label
from edge.classify.model import Prediction
from edge.store.reviews import ReviewStore
from edge.store.writer import BirdRecord, FrameRecord, Store
from tests.conftest import SHARED_DIR
from tests.fixtures.require import missing

T0 = datetime(2026, 5, 1, 6, 0, 0, tzinfo=UTC)  # 08:00 in Berlin
ZONE = "Europe/Berlin"
LABELS = [Label(0, "robin", "Erithacus rubecula", "European Robin"), Label(1, "jay", "Garrulus glandarius", "Eurasian Jay"),
          Label(2, "wren"),  # wren: no scientific name
          Label(3, "dove", "Zenaida macroura", "Mourning Dove"),
          Label(4, "woodpecker", "Dryobates pubescens", "Downy Woodpecker"),
          Label(5, "bluebird", "Sialia sialis", "Eastern Bluebird"),
          Label(6, "sparrow", "Passer domesticus", "House Sparrow")]


@pytest.fixture(scope="session")
def standards_dir() -> Path:
    path = SHARED_DIR / "standards" / "camtrap-dp-1.0.2"
    if not (path / "camtrap-dp-profile.json").is_file():
        missing("SHARED", f"Camtrap DP 1.0.2 files not available: {path} is absent (../shared is not beside the checkout)")
    return path


def bird(species: str | None, x: float, confidence: float = 0.9, score: float = 0.8) -> BirdRecord:
    kind = "none" if species is None else ("unknown" if species == "unknown" else "species")
    return BirdRecord((0.2, x, 0.35, x + 0.15), score, "bird", [Prediction(species or "background", confidence, 0)],
                      Decision(kind, species, confidence, ""))


@dataclass
class Station:
    root: Path
    db: Path
    config: Path
    feeder: Path
    gate: Path


def write_config(path: Path, db: Path, feeder: Path, gate: Path, *, coordinates: bool = True,
                 base_url: str | None = None) -> None:
    where = "latitude = 52.52\nlongitude = 13.40\ncoordinate_uncertainty_m = 30\n" if coordinates else ""
    media = f'media_base_url = "{base_url}"\n' if base_url else ""
    path.write_text(f"""
[station]
device_id = "garden"
timezone = "{ZONE}"

[storage]
database = "{db}"

[project]
title = "Garden feeder birds"
acronym = "GFB"
sampling_design = "targeted"
license = "CC-BY-4.0"
media_license = "CC-BY-NC-4.0"
{media}
[[project.contributors]]
title = "Ada Observer"
email = "ada@example.org"
role = "principalInvestigator"

[[cameras]]
name = "feeder"
path = "{feeder}"

[cameras.deployment]
id = "garden-feeder-2026"
{where}camera_model = "Reolink-E1"
camera_height_m = 1.5
bait_use = true
feature_type = "nestSite"
groups = ["garden", "spring"]

[[cameras]]
name = "gate"
path = "{gate}"

[cameras.deployment]
latitude = 52.53
longitude = 13.41
start = 2026-04-30
""")


def _frame(store: Store, camera: Path, name: str, seconds: float, *, birds=None, species=None,
           confidence: float = 0.8):
    sha = hashlib.sha256(f"{camera.name}/{name}".encode()).hexdigest()
    common = dict(path=str(camera / name), sha256=sha, camera=camera.name, size=1, mtime=0.0,
                  captured_at=T0 + timedelta(seconds=seconds), time_source="exif", model_id="aiy-birds-v1")
    if birds is None:
        kind = "none" if species is None else "species"
        return store.record(FrameRecord(**common, decision=Decision(kind, species, confidence, "")))
    return store.record(FrameRecord(**common, birds=birds, detector_id="ssd"))


def build_station(root: Path, *, coordinates: bool = True) -> Station:
    feeder, gate = root / "cams" / "feeder", root / "cams" / "gate"
    db = root / "state" / "edge.db"
    db.parent.mkdir(parents=True)
    store = Store(db, station_tz=ZONE, independence_s=60, station_id="garden", clock=lambda: T0 + timedelta(days=3))
    try:
        store.record_taxa(LABELS, "aiy-birds-v1")
        for index, n in enumerate((1, 3, 2)):  # visit 1: robins, MaxN 3
            _frame(store, feeder, f"IMG_{index:04d}.JPG", 5 * index, birds=[bird("robin", 0.1 + 0.2 * k) for k in range(n)])
        _frame(store, feeder, "IMG_0003.JPG", 300, birds=[])  # empty
        _frame(store, feeder, "sub/IMG_0004.JPG", 900, birds=[bird("unknown", 0.1, 0.3), bird("unknown", 0.5, 0.2)])
        _frame(store, feeder, "IMG_0005.JPG", 1800, birds=[bird("jay", 0.3, 0.7)])  # corrected below
        _frame(store, feeder, "IMG_0006.JPG", 2700, birds=[bird("wren", 0.0, 0.6)])  # rejected below
        _frame(store, feeder, "IMG_0007.JPG", 3600 * 5, birds=[bird("robin", 0.4, 0.95), bird("wren", 0.7, 0.55)])
        _frame(store, feeder, "IMG_0008.JPG", 3600 * 6, birds=[bird("dove", 0.1, 0.9), bird("woodpecker", 0.5, 0.8)])
        _frame(store, feeder, "IMG_0009.JPG", 3600 * 7,
               birds=[bird("bluebird", 0.1, 0.85), bird("sparrow", 0.4, 0.75), bird("sparrow", 0.7, 0.7)])
        _frame(store, gate, "G_0001.JPG", 86400, species="jay", confidence=0.85)  # day 2, whole frame
        _frame(store, gate, "G_0002.JPG", 86400 + 10, species="jay", confidence=0.9)
        _frame(store, gate, "G_0003.JPG", 86400 + 600, species=None)  # no bird
    finally:
        store.close()
    reviews = ReviewStore(db, clock=lambda: T0 + timedelta(days=2))
    try:
        events = dict(reviews.conn.execute(
            "SELECT f.path, f.event_id FROM frames AS f WHERE f.event_id IS NOT NULL").fetchall())
        jay_event = events[str(feeder / "IMG_0005.JPG")]
        reviews.review_event(jay_event, "correct", reviewer="ada", species="robin")
        reviews.review_event(jay_event, "individuals", reviewer="ada", individuals=2)
        reviews.review_event(events[str(feeder / "IMG_0006.JPG")], "reject", reviewer="bob")
        detection = reviews.conn.execute(
            "SELECT d.id FROM detections AS d JOIN frames AS f ON f.id = d.frame_id WHERE f.path = ? AND d.rank = 2",
            (str(feeder / "IMG_0007.JPG"),)).fetchone()[0]
        reviews.review_detection(detection, "confirm", reviewer="carla")
    finally:
        reviews.close()
    config = root / "edge.toml"
    write_config(config, db, feeder, gate, coordinates=coordinates)
    return Station(root, db, config, feeder, gate)


@pytest.fixture
def station(tmp_path: Path) -> Station:
    return build_station(tmp_path)


@pytest.fixture
def edge_env(cli_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The CLI's environment with its own empty cache (XDG_CACHE_HOME) and no proxy."""
    env = dict(cli_env)
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    for key in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        env.pop(key, None)
    env["NO_PROXY"] = "127.0.0.1"
    return env

