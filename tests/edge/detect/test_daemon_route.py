"""Detect, then classify, through the real daemon: composited trail-camera scenes in a camera
folder → `edge run --once` with the shared SSD detector and the AIY classifier → individuals.

Also: an empty frame costs no classifier call, and without a detector the whole-frame route
records exactly what the commit before detection (3c1b25a) recorded for the same frames."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from benchmarks.scenes import compose
from edge.classify.model import Classifier, resolve_model
from edge.config import ClassifyConfig, EdgeConfig
from edge.daemon.pipeline import FrameProcessor
from edge.detect.analyse import load_configured_finder
from edge.store.writer import Store

T0 = 1_780_000_000  # 2026-05-28, a burst five seconds apart
RELEASE_DB = Path(__file__).resolve().parents[1] / "data" / "schema2-3c1b25a.db"


def _edge(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge", *args], env=env, capture_output=True, text=True, timeout=300)


def _query(db: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def burst(birds25_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four frames of one visit: 1, 3 and 2 cardinals (8 % of a 1920x1080 frame each), then an
    empty frame. Seed 21: the shared SSD finds each pasted bird once (IoU >= 0.3 with its paste,
    checked when the seed was picked), so the counts below are the detector's, not luck."""
    folder = tmp_path_factory.mktemp("burst") / "feeder"
    folder.mkdir()
    cardinals = sorted((birds25_dir / "NORTHERN CARDINAL").glob("*.jpg"))
    for index, n in enumerate((1, 3, 2, 0)):
        scene = compose(birds25_dir, (1920, 1080), n, (0.08,) * n, seed=21 + index, sources=cardinals[:n])
        path = folder / f"IMG_{index:04d}.JPG"
        path.write_bytes(scene.jpeg())
        os.utime(path, (T0 + 5 * index, T0 + 5 * index))
    return folder


def test_a_burst_counts_the_most_birds_in_one_frame(burst: Path, tmp_path: Path, ssd_detector_dir: Path,
                                                     aiy_model_dir: Path, cli_env: dict[str, str]) -> None:
    camera = tmp_path / "feeder"
    shutil.copytree(burst, camera)
    state = tmp_path / "state"
    config = tmp_path / "edge.toml"
    config.write_text(f"""
[model]
path = "{aiy_model_dir}"
[detector]
path = "{ssd_detector_dir}"
[[cameras]]
name = "feeder"
path = "{camera}"
[storage]
database = "{state / 'edge.db'}"
""")
    check = _edge(["check", "--config", str(config)], cli_env)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "detector: ok (" in check.stdout and "birds: bird" in check.stdout

    run = _edge(["run", "--once", "--config", str(config)], cli_env)
    assert run.returncode == 0, run.stderr
    db = state / "edge.db"
    assert _query(db, "SELECT birds FROM frames ORDER BY path") == [(1,), (3,), (2,), (0,)]
    # One visit of three cardinals: the most in one frame (MaxN), six detections, three frames counted.
    events = _query(db, "SELECT species, individuals, frame_count, snapshot FROM events")
    assert len(events) == 1
    species, individuals, frame_count, snapshot = events[0]
    assert (species, individuals, frame_count) == ("Cardinalis cardinalis", 3, 3)
    assert _query(db, "SELECT COUNT(*), COUNT(DISTINCT frame_id) FROM detections") == [(6, 3)]
    # The empty frame: recorded, no detection, no classifier output.
    empty = _query(db, "SELECT id, species FROM frames WHERE birds = 0")
    assert len(empty) == 1 and empty[0][1] is None
    assert _query(db, f"SELECT COUNT(*) FROM predictions WHERE frame_id = {empty[0][0]}") == [(0,)]

    counts = _edge(["counts", "--db", str(db), "--individuals", "--by", "total", "--format", "json"], cli_env)
    assert counts.returncode == 0, counts.stderr
    assert json.loads(counts.stdout) == [{"period": "total", "species": "Cardinalis cardinalis", "individuals": 3}]
    listed = json.loads(_edge(["events", "--db", str(db), "--format", "json"], cli_env).stdout)
    assert listed[0]["individuals"] == 3

    # The event's best crop, as the classifier saw it: a small JPEG in the state folder.
    crop = state / "snapshots" / snapshot
    with Image.open(crop) as image:
        assert image.format == "JPEG" and image.size == (224, 224)


class CountingClassifier(Classifier):
    """The real classifier, counting its invokes (instrumentation, not a stand-in)."""

    calls = 0

    def scores(self, rgb):  # noqa: ANN001, ANN201
        type(self).calls += 1
        return super().scores(rgb)


def test_an_empty_frame_costs_no_classifier_call(burst: Path, tmp_path: Path, ssd_detector_dir: Path,
                                                 aiy_model_dir: Path) -> None:
    config = EdgeConfig.model_validate({"detector": {"path": str(ssd_detector_dir)}})
    finder = load_configured_finder(config)
    classifier = CountingClassifier(resolve_model(aiy_model_dir))
    store = Store(tmp_path / "e.db")
    try:
        processor = FrameProcessor(classifier, store, ClassifyConfig(), finder=finder)
        CountingClassifier.calls = 0
        empty = processor.process(burst / "IMG_0003.JPG", "feeder")
        assert empty.status == "ok" and empty.birds == [] and CountingClassifier.calls == 0
        three = processor.process(burst / "IMG_0001.JPG", "feeder")
        assert len(three.birds) == 3 and CountingClassifier.calls == 3
    finally:
        store.close()


def test_without_a_detector_the_whole_frame_route_records_what_it_did_before(
        birds25_dir: Path, aiy_model_dir: Path, tmp_path: Path, cli_env: dict[str, str]) -> None:
    """The frames tests/edge/data/README.md describes, through today's daemon without [detector]:
    the same species, confidences, predictions, events and tallies as the database 3c1b25a wrote."""
    camera = tmp_path / "cam"
    camera.mkdir()
    species = sorted(p.name for p in birds25_dir.iterdir() if p.is_dir())[:4]
    t0, n = 1764500000, 0
    for i, name in enumerate(species):
        for j, source in enumerate(sorted((birds25_dir / name).glob("*"))[:3]):
            target = camera / f"f{n:03d}{source.suffix}"
            shutil.copy(source, target)
            os.utime(target, (t0 + i * 300 + j * 5,) * 2)
            n += 1
    (camera / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    db = tmp_path / "edge.db"
    run = _edge(["run", "--once", "--model", str(aiy_model_dir / "model.tflite"), "--watch", str(camera),
                 "--db", str(db)], cli_env)
    assert run.returncode == 0, run.stderr

    def contents(path: Path) -> dict[str, list[tuple]]:
        return {
            "frames": _query(path, "SELECT substr(path, length(rtrim(path, replace(path, '/', ''))) + 1), sha256, status,"
                                   " error, species, round(confidence, 6), captured_at, time_source FROM frames ORDER BY sha256"),
            "predictions": _query(path, "SELECT f.sha256, p.rank, p.label, round(p.score, 6) FROM predictions AS p"
                                        " JOIN frames AS f ON f.id = p.frame_id ORDER BY 1, 2"),
            "events": _query(path, "SELECT camera, species, round(confidence, 6), started_at, ended_at, frame_count,"
                                   " state FROM events ORDER BY started_at"),
            "tallies": _query(path, "SELECT * FROM (SELECT day, camera, species, events, frames FROM daily_tallies) ORDER BY 1, 2, 3"),
        }

    now, release = contents(db), contents(RELEASE_DB)
    assert len(release["frames"]) == 13
    assert now == release
    assert _query(db, "SELECT DISTINCT individuals FROM events") == [(1,)]
    assert _query(db, "SELECT COUNT(*) FROM detections") == [(0,)]
