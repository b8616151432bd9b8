"""`edge export coco-ct` on the crafted station, read back with plain json and checked against
the database: images and sequences, annotations and their boxes (absolute where the file gives
the size), empty frames as category 0, categories with scientific names."""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from pathlib import Path

import pytest
from PIL import Image

from tests.edge.exports.conftest import Station
from tests.edge.exports.helpers import edge

WIDTH, HEIGHT = 640, 480


def export(station: Station, out: Path, env, *extra: str):
    return edge(["export", "coco-ct", "--config", str(station.config), "--out", str(out), *extra], env)


@pytest.fixture
def coco(station: Station, tmp_path: Path, edge_env) -> dict:
    # The feeder's frames exist as real JPEGs (so their size is known); the gate's are gone.
    conn = sqlite3.connect(station.db)
    for (path,) in conn.execute("SELECT path FROM frames WHERE camera = 'feeder'"):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (WIDTH, HEIGHT), (90, 120, 60)).save(path, format="JPEG")
    conn.close()
    out = tmp_path / "coco.json"
    result = export(station, out, edge_env)
    assert result.returncode == 0, result.stderr
    assert "images: 13 (10 with width and height" in result.stdout
    return json.loads(out.read_text())


def test_images_and_sequences(coco: dict, station: Station) -> None:
    conn = sqlite3.connect(station.db)
    frames = {sha: (camera, path, uid, captured) for sha, camera, path, uid, captured in conn.execute(
        "SELECT f.sha256, f.camera, f.path, e.uid, f.captured_at FROM frames AS f "
        "LEFT JOIN events AS e ON e.id = f.event_id WHERE f.status = 'ok'")}
    conn.close()
    images = {image["id"]: image for image in coco["images"]}
    assert set(images) == set(frames)
    by_sequence = defaultdict(list)
    for sha, image in images.items():
        camera, path, uid, captured = frames[sha]
        assert image["file_name"] == f"{camera}/{Path(path).relative_to(station.root / 'cams' / camera).as_posix()}"
        assert image["location"] == {"feeder": "garden-feeder-2026", "gate": "garden-gate"}[camera]
        assert image["seq_id"] == (uid if uid else f"frame:{sha}")
        if camera == "feeder":
            assert (image["width"], image["height"]) == (WIDTH, HEIGHT)
        else:
            assert "width" not in image
        by_sequence[image["seq_id"]].append((captured, image))
    for members in by_sequence.values():
        members.sort(key=lambda item: item[0])
        assert [image["frame_num"] for _, image in members] == list(range(len(members)))
        assert {image["seq_num_frames"] for _, image in members} == {len(members)}
    first = next(image for image in coco["images"] if image["file_name"] == "feeder/IMG_0000.JPG")
    assert first["datetime"] == "2026-05-01 08:00:00" and first["seq_num_frames"] == 3  # local time


def test_annotations_and_categories(coco: dict, station: Station) -> None:
    categories = {c["id"]: c for c in coco["categories"]}
    assert categories[0] == {"id": 0, "name": "empty"}
    named = {c["name"]: c for c in coco["categories"]}
    assert set(named) == {"empty", "robin", "jay", "unknown", "wren", "dove", "woodpecker", "bluebird", "sparrow"}
    assert named["robin"]["scientific_name"] == "Erithacus rubecula"
    assert named["robin"]["common_name"] == "European Robin"
    assert "scientific_name" not in named["wren"]

    conn = sqlite3.connect(station.db)
    detections = {f"{sha}:{rank}": (xmin, ymin, xmax, ymax, label) for sha, rank, xmin, ymin, xmax, ymax, label in
                  conn.execute("SELECT f.sha256, d.rank, d.xmin, d.ymin, d.xmax, d.ymax, "
                               "COALESCE(d.reviewed_species, d.species) FROM detections AS d "
                               "JOIN frames AS f ON f.id = d.frame_id")}
    empty_frames = {sha for (sha,) in conn.execute(
        "SELECT sha256 FROM frames WHERE status = 'ok' AND (birds = 0 OR (birds IS NULL AND species IS NULL))")}
    conn.close()
    annotations = coco["annotations"]
    assert len({a["id"] for a in annotations}) == len(annotations)
    boxed = {a["id"]: a for a in annotations if "bbox_relative" in a}
    assert set(boxed) == set(detections)
    for key, annotation in boxed.items():
        xmin, ymin, xmax, ymax, label = detections[key]
        assert annotation["bbox_relative"] == [xmin, ymin, xmax - xmin, ymax - ymin]
        assert annotation["bbox"] == pytest.approx([xmin * WIDTH, ymin * HEIGHT, (xmax - xmin) * WIDTH,
                                                    (ymax - ymin) * HEIGHT], abs=0.01)
        assert categories[annotation["category_id"]]["name"] == label
    empty = [a for a in annotations if a["category_id"] == 0]
    assert {a["image_id"] for a in empty} == empty_frames and len(empty) == len(empty_frames)
    whole = [a for a in annotations if a["image_id"] in {i["id"] for i in coco["images"]
                                                          if i["file_name"].startswith("gate/")}]
    assert sorted(categories[a["category_id"]]["name"] for a in whole) == ["empty", "jay", "jay"]
    assert all("bbox" not in a for a in whole)
    images = {i["id"] for i in coco["images"]}
    assert all(a["image_id"] in images for a in annotations)


def test_sequences_carry_every_species_of_a_visit(coco: dict, station: Station) -> None:
    """COCO-CT has no count of its own: a sequence (a visit) holds one annotation per bird, so a
    mixed visit keeps both species, and the most birds of each category in one image of the
    sequence is what the visit counts for that species (event_species), never the headline's."""
    conn = sqlite3.connect(station.db)
    counted = defaultdict(dict)
    for uid, species, individuals in conn.execute(
            "SELECT e.uid, s.species, s.individuals FROM event_species AS s JOIN events AS e ON e.id = s.event_id "
            "WHERE e.review_state IS NULL AND e.reviewed_individuals IS NULL"):
        counted[uid][species] = individuals
    conn.close()
    names = {c["id"]: c["name"] for c in coco["categories"]}
    sequence_of = {image["id"]: image["seq_id"] for image in coco["images"]}
    per_image = defaultdict(lambda: defaultdict(int))
    for annotation in coco["annotations"]:
        if annotation["category_id"]:
            per_image[annotation["image_id"]][names[annotation["category_id"]]] += 1
    maxn = defaultdict(lambda: defaultdict(int))
    for image, birds in per_image.items():
        for name, n in birds.items():
            maxn[sequence_of[image]][name] = max(maxn[sequence_of[image]][name], n)
    assert {uid: dict(maxn[uid]) for uid in counted} == counted  # the visits no person reviewed as a whole
    assert {"dove": 1, "woodpecker": 1} in counted.values() and {"bluebird": 1, "sparrow": 2} in counted.values()


def test_an_existing_file_is_refused_unless_forced(station: Station, tmp_path: Path, edge_env) -> None:
    out = tmp_path / "coco.json"
    out.write_text("mine")
    result = export(station, out, edge_env)
    assert result.returncode == 2 and "exists (nothing was written; --force replaces it)" in result.stderr
    assert out.read_text() == "mine"
    assert export(station, out, edge_env, "--force", "--camera", "gate").returncode == 0
    data = json.loads(out.read_text())
    assert {i["location"] for i in data["images"]} == {"garden-gate"} and len(data["images"]) == 3


def test_a_period_selects_images_as_camtrap_does(station: Station, tmp_path: Path, edge_env) -> None:
    out = tmp_path / "day2.json"
    assert export(station, out, edge_env, "--since", "2026-05-02").returncode == 0
    data = json.loads(out.read_text())
    assert sorted(i["file_name"] for i in data["images"]) == ["gate/G_0001.JPG", "gate/G_0002.JPG", "gate/G_0003.JPG"]
    assert data["info"]["since"] == "2026-05-01T22:00:00+00:00"


def test_outputs_are_readable_by_others(station: Station, tmp_path: Path, edge_env) -> None:
    """The temporary file and folder the exports write into are private; what they become is not."""
    assert export(station, tmp_path / "c.json", edge_env).returncode == 0
    assert (tmp_path / "c.json").stat().st_mode & 0o777 == 0o644
    result = edge(["export", "camtrap-dp", "--config", str(station.config), "--out", str(tmp_path / "dp")], edge_env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "dp").stat().st_mode & 0o777 == 0o755
