"""A MegaDetector-shaped ONNX detector through the whole edge: `edge classify --detector x.onnx`
and the daemon (`edge run --once`) on real frames. The detector is a real ONNX model built here
(tests/edge/detect/colour_detectors.py: red = animal, green = person, blue = vehicle) with no labels
file, named like MegaDetector's MIT export, so the built-in animal / person / vehicle apply.

An "animal" box is cropped and classified (the shared AIY birds model) and counted; a person's
frame is recorded (frame_objects) and counts nothing; with [privacy] hide_people (the default)
the web app serves a placeholder for it and the Camtrap DP export lists it filePublic false with
a `human` observation, while `hide_people = false` shows it like any frame.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from edge.config import load_config  # noqa: E402
from edge.web.app import create_app  # noqa: E402
from tests.edge.detect.colour_detectors import build_onnx, picture  # noqa: E402
from tests.edge.web.conftest import Client, Served  # noqa: E402

T0 = 1_780_000_000  # 2026-05-28
SQUARE = (32, 16, 48, 32)  # in a 128x64 frame: one input cell once letterboxed


def _edge(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge", *args], env=env, capture_output=True, text=True, timeout=300)


def _query(db: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def station(tmp_path_factory: pytest.TempPathFactory, aiy_model_dir: Path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("megadetector")
    built = build_onnx(root / "built", ["yolov8"])["yolov8"]
    detector = root / "megadetector"
    detector.mkdir()
    shutil.copy(built / "model.onnx", detector / "MDV6-mit-yolov9-c.onnx")  # no labels.txt beside it
    camera = root / "trail"
    camera.mkdir()
    scenes = {"IMG_0000.JPG": [("animal", SQUARE)], "IMG_0001.JPG": [("person", SQUARE)],
              "IMG_0002.JPG": [("animal", SQUARE), ("vehicle", (96, 16, 112, 32))]}
    for index, (name, scene) in enumerate(scenes.items()):
        Image.fromarray(picture(128, 64, scene)).save(camera / name, quality=95)
        os.utime(camera / name, (T0 + 60 * index, T0 + 60 * index))
    config = root / "edge.toml"
    config.write_text(f"""
[station]
device_id = "trail-1"
timezone = "UTC"
[project]
media_base_url = "https://example.org/media/"
[model]
path = "{aiy_model_dir}"
[detector]
path = "{detector}"
bird_labels = ["animal"]
tiles = "off"
banner = "off"
[[cameras]]
name = "trail"
path = "{camera}"
[storage]
database = "{root / 'state' / 'edge.db'}"
""")
    return {"root": root, "detector": detector, "camera": camera, "config": config,
            "database": root / "state" / "edge.db"}


def test_edge_classify_with_an_onnx_detector_names_birds_and_people(station: dict[str, Path], aiy_model_dir: Path,
                                                                     cli_env: dict[str, str]) -> None:
    images = sorted(str(p) for p in station["camera"].iterdir())
    model = station["detector"] / "MDV6-mit-yolov9-c.onnx"
    result = _edge(["classify", "--model", str(aiy_model_dir), "--config", str(station["config"]),
                    "--detector", str(model), "--format", "json", *images], cli_env)
    assert result.returncode == 0, result.stderr
    entries = {Path(e["path"]).name: e for e in json.loads(result.stdout)["images"]}
    animal = entries["IMG_0000.JPG"]
    assert animal["birds"] == 1 and animal["detections"][0]["detector_label"] == "animal"
    assert animal["detections"][0]["box"] == pytest.approx([0.25, 0.25, 0.5, 0.375], abs=0.02)
    assert len(animal["detections"][0]["top"]) == 5  # the crop was classified
    assert "others" not in animal
    person = entries["IMG_0001.JPG"]
    assert person["birds"] == 0 and person["detections"] == [] and person["counts"] == {}
    assert [(o["kind"], o["detector_label"]) for o in person["others"]] == [("person", "person")]
    assert entries["IMG_0002.JPG"]["birds"] == 1
    assert [o["kind"] for o in entries["IMG_0002.JPG"]["others"]] == ["vehicle"]
    text = _edge(["classify", "--model", str(aiy_model_dir), "--config", str(station["config"]),
                  "--detector", str(model), images[1]], cli_env)
    assert text.returncode == 0 and text.stdout.strip().split(": ", 1)[1].startswith("no bird; person 0.")


def test_the_daemon_records_people_and_vehicles_and_counts_only_birds(station: dict[str, Path],
                                                                      cli_env: dict[str, str], tmp_path: Path) -> None:
    check = _edge(["check", "--config", str(station["config"])], cli_env)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "runtime onnxruntime" in check.stdout and "yolo outputs" in check.stdout
    run = _edge(["run", "--once", "--config", str(station["config"])], cli_env)
    assert run.returncode == 0, run.stderr
    db = station["database"]
    frames = {Path(p).name: (fid, birds, species, event) for fid, p, birds, species, event in _query(
        db, "SELECT id, path, birds, species, event_id FROM frames ORDER BY path")}
    assert [frames[n][1] for n in ("IMG_0000.JPG", "IMG_0001.JPG", "IMG_0002.JPG")] == [1, 0, 1]
    person_id = frames["IMG_0001.JPG"][0]
    assert frames["IMG_0001.JPG"][2:] == (None, None)  # no species, no event: counted nowhere
    objects = _query(db, "SELECT f.path, o.kind, o.detector_label, o.rank, o.score FROM frame_objects o "
                         "JOIN frames f ON f.id = o.frame_id ORDER BY f.path")
    assert [(Path(p).name, kind, label, rank) for p, kind, label, rank, _ in objects] == [
        ("IMG_0001.JPG", "person", "person", 1), ("IMG_0002.JPG", "vehicle", "vehicle", 1)]
    assert all(score > 0.7 for *_, score in objects)
    detections = _query(db, "SELECT detector_label, top_k FROM detections ORDER BY frame_id")
    assert [d[0] for d in detections] == ["animal", "animal"] and all(json.loads(d[1]) for d in detections)
    # The tallies count frames with a bird only: the person's frame is in none.
    assert _query(db, "SELECT COALESCE(SUM(frames), 0) FROM daily_tallies")[0][0] == sum(
        1 for _, birds, species, _ in frames.values() if species is not None)

    # The web app: the person's frame is a placeholder (no path from the request reaches it).
    config = load_config(station["config"])
    served = Served(create_app(config))
    try:
        client = Client(served.port)
        hidden = client.get(f"/img/frame/{person_id}")
        shown = client.get(f"/img/frame/{frames['IMG_0000.JPG'][0]}")
        assert hidden.status == shown.status == 200
        assert hidden.headers.get("x-trailcam-private") == "person" and "x-trailcam-private" not in shown.headers
        with Image.open(io.BytesIO(hidden.body)) as placeholder:
            assert placeholder.size == (320, 180) and placeholder.getpixel((10, 10)) == pytest.approx((96, 96, 96), abs=3)
    finally:
        served.stop()
    open_config = config.model_copy(update={"privacy": config.privacy.model_copy(update={"hide_people": False})})
    served = Served(create_app(open_config))
    try:
        reply = Client(served.port).get(f"/img/frame/{person_id}")
        assert reply.status == 200 and "x-trailcam-private" not in reply.headers
        with Image.open(io.BytesIO(reply.body)) as frame:
            assert frame.size == (128, 64)
    finally:
        served.stop()

    # Camtrap DP: the frame with a person is private (filePublic false, no public URL), its
    # observation `human`; the vehicle beside a bird is one more observation of that frame.
    out = tmp_path / "package"
    export = _edge(["export", "camtrap-dp", "--config", str(station["config"]), "--out", str(out), "--force"], cli_env)
    assert export.returncode == 0, export.stdout + export.stderr
    assert "media with people kept private (filePublic false, [privacy] hide_people): 1" in export.stdout
    with (out / "media.csv").open(newline="") as handle:
        media = {row["fileName"]: row for row in csv.DictReader(handle)}
    assert media["IMG_0001.JPG"]["filePublic"] == "false" and not media["IMG_0001.JPG"]["filePath"].startswith("https:")
    assert media["IMG_0000.JPG"]["filePublic"] == "true" and media["IMG_0000.JPG"]["filePath"].startswith("https:")
    with (out / "observations.csv").open(newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["observationLevel"] == "media"]
    by_media = {}
    for row in rows:
        by_media.setdefault(row["mediaID"], []).append((row["observationType"], row["count"]))
    sha = {name: row["mediaID"] for name, row in media.items()}
    assert by_media[sha["IMG_0001.JPG"]] == [("human", "1")]  # no blank beside it
    assert sorted(by_media[sha["IMG_0002.JPG"]]) == sorted([("vehicle", "1"), (by_media[sha["IMG_0000.JPG"]][0][0], "1")])
