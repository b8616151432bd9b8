"""End to end: composited trail-camera scenes (real birds25 photos) in two camera folders →
`edge run --once` with the shared SSD detector and the AIY classifier → both exports of what the
daemon recorded. The Camtrap DP package validates offline, its event-level counts are `edge
counts`, and its boxes and the COCO Camera Traps boxes (absolute pixels of the real 1920x1080
frames) are the detections the daemon stored."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from benchmarks.scenes import compose
from tests.edge.exports.helpers import edge, edge_counts, event_counts, rows

T0 = 1_780_000_000  # 2026-05-28 20:26:40 UTC


@pytest.fixture(scope="module")
def cameras(birds25_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """feeder: a visit of 1, 3, 2 cardinals then an empty frame (seed 21: the SSD finds each
    pasted bird once, see tests/edge/detect/test_daemon_route.py); gate: the three-cardinal scene an
    hour later, saved at another JPEG quality (other bytes: not a duplicate of the feeder's)."""
    root = tmp_path_factory.mktemp("cams")
    cardinals = sorted((birds25_dir / "NORTHERN CARDINAL").glob("*.jpg"))
    for camera, shots in (("feeder", ((0, 1), (1, 3), (2, 2), (3, 0))), ("gate", ((1, 3),))):
        folder = root / camera
        folder.mkdir()
        for index, n in shots:
            scene = compose(birds25_dir, (1920, 1080), n, (0.08,) * n, seed=21 + index, sources=cardinals[:n])
            path = folder / f"IMG_{index:04d}.JPG"
            path.write_bytes(scene.jpeg(quality=90 if camera == "feeder" else 85))
            moment = T0 + 5 * index + (3600 if camera == "gate" else 0)
            os.utime(path, (moment, moment))
    return root


def test_a_daemon_run_exports_valid_packages(cameras: Path, tmp_path: Path, ssd_detector_dir: Path,
                                             aiy_model_dir: Path, standards_dir: Path, edge_env) -> None:
    db = tmp_path / "state" / "edge.db"
    config = tmp_path / "edge.toml"
    config.write_text(f"""
[station]
device_id = "garden"
timezone = "America/New_York"
[model]
path = "{aiy_model_dir}"
[detector]
path = "{ssd_detector_dir}"
[storage]
database = "{db}"
[project]
title = "Backyard cardinals"
sampling_design = "opportunistic"
license = "CC0-1.0"
[[project.contributors]]
title = "Ada Observer"
role = "contact"
[[cameras]]
name = "feeder"
path = "{cameras / 'feeder'}"
[cameras.deployment]
latitude = 40.71
longitude = -74.0
[[cameras]]
name = "gate"
path = "{cameras / 'gate'}"
[cameras.deployment]
latitude = 40.72
longitude = -74.01
""")
    run = edge(["run", "--once", "--config", str(config)], edge_env)
    assert run.returncode == 0, run.stderr
    package = tmp_path / "package"
    result = edge(["export", "camtrap-dp", "--config", str(config), "--out", str(package), "--validate",
                   str(standards_dir)], edge_env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid Camtrap DP 1.0.2 package" in result.stdout

    individuals, visits = event_counts(package)
    assert individuals == edge_counts(db, edge_env)
    assert visits == edge_counts(db, edge_env, unit="") == {"Cardinalis cardinalis": 2}  # one visit per camera
    assert individuals["Cardinalis cardinalis"] >= 4  # MaxN 3 at the feeder, at least 1 at the gate
    descriptor = json.loads((package / "datapackage.json").read_text())
    assert [t["scientificName"] for t in descriptor["taxonomic"]] == ["Cardinalis cardinalis"]

    conn = sqlite3.connect(db)
    detections = {f"{sha}:{rank}": (xmin, ymin, xmax - xmin, ymax - ymin) for sha, rank, xmin, ymin, xmax, ymax in
                  conn.execute("SELECT f.sha256, d.rank, d.xmin, d.ymin, d.xmax, d.ymax FROM detections AS d "
                               "JOIN frames AS f ON f.id = d.frame_id")}
    conn.close()
    assert len(detections) >= 7
    boxes = {row["observationID"]: tuple(float(row[k]) for k in ("bboxX", "bboxY", "bboxWidth", "bboxHeight"))
             for row in rows(package / "observations.csv") if row["bboxX"]}
    assert boxes == detections
    blank = [row for row in rows(package / "observations.csv")
             if row["observationLevel"] == "media" and row["observationType"] == "blank"]
    assert len(blank) == 1  # the empty frame

    coco_file = tmp_path / "coco.json"
    result = edge(["export", "coco-ct", "--config", str(config), "--out", str(coco_file)], edge_env)
    assert result.returncode == 0, result.stderr
    coco = json.loads(coco_file.read_text())
    assert {(i["width"], i["height"]) for i in coco["images"]} == {(1920, 1080)}
    assert sorted((i["file_name"], i["seq_num_frames"], i["frame_num"]) for i in coco["images"]) == [
        ("feeder/IMG_0000.JPG", 3, 0), ("feeder/IMG_0001.JPG", 3, 1), ("feeder/IMG_0002.JPG", 3, 2),
        ("feeder/IMG_0003.JPG", 1, 0), ("gate/IMG_0001.JPG", 1, 0)]
    cardinal = next(c["id"] for c in coco["categories"] if c["name"] == "Cardinalis cardinalis")
    for annotation in coco["annotations"]:
        if annotation["category_id"] == 0:
            continue
        x, y, width, height = detections[annotation["id"]]
        assert annotation["category_id"] == cardinal
        assert annotation["bbox"] == pytest.approx([x * 1920, y * 1080, width * 1920, height * 1080], abs=0.01)
    assert sum(a["category_id"] == 0 for a in coco["annotations"]) == 1
