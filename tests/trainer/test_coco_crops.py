"""`trainer crops --coco FILE --images DIR`: a COCO Camera Traps file built from composited
scenes (real birds25 photos pasted at known boxes, benchmarks.scenes) cut into a crop set.

Checked: the classes and counts (category names, --category-map, --skip-category, the empty
category), that each crop is the bird pasted there (its mean colour is that photo's and no other
pasted photo's), boxes clipped at the frame's edge or wholly outside it, missing and corrupt
image files and annotations without a bbox counted and listed, not fatal; OUT/taxonomy.csv
from the categories' scientific names, accepted by `trainer train --taxonomy` in a one-epoch
run on the crops; bad input exiting 2.
"""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.scenes import _bird_patch, background, compose
from trainer.cli import main

SIZE = (960, 540)
CARDINAL, CHICKADEE = "NORTHERN CARDINAL", "BLACK-CAPPED CHICKADEE"
CATEGORIES = [
    {"id": 0, "name": "empty"},
    {"id": 1, "name": "Northern Cardinal", "scientific_name": "Cardinalis cardinalis", "common_name": "Northern Cardinal"},
    {"id": 2, "name": "Black-capped Chickadee", "scientific_name": "Poecile atricapillus"},
    {"id": 3, "name": "human"},
]
CATEGORY_OF = {CARDINAL: 1, CHICKADEE: 2}
PAIRS = 4  # scenes with one cardinal and one chickadee each


def _bbox(box: tuple[float, float, float, float]) -> list[float]:
    """A scene's normalised (ymin, xmin, ymax, xmax) as COCO's [x, y, width, height] in pixels."""
    ymin, xmin, ymax, xmax = box
    return [xmin * SIZE[0], ymin * SIZE[1], (xmax - xmin) * SIZE[0], (ymax - ymin) * SIZE[1]]


@pytest.fixture(scope="module")
def coco_set(birds25_dir: Path, tmp_path_factory) -> tuple[Path, Path, dict[str, Path]]:
    """(the COCO file, the images folder, crop name → the photo pasted there)."""
    root = tmp_path_factory.mktemp("coco")
    images_dir = root / "images"
    (images_dir / "loc1").mkdir(parents=True)
    (images_dir / "loc2").mkdir()
    images, annotations, expected = [], [], {}

    def add_image(file_name: str, data: bytes | None) -> int:
        if data is not None:
            (images_dir / file_name).write_bytes(data)
        images.append({"id": f"img-{len(images)}", "file_name": file_name, "width": SIZE[0], "height": SIZE[1],
                       "location": file_name.split("/")[0], "datetime": "2026-05-01 07:00:00"})
        return len(images) - 1

    def annotate(image: int, category: int, bbox: list[float] | None) -> None:
        entry = {"id": f"ann-{len(annotations)}", "image_id": images[image]["id"], "category_id": category}
        if bbox is not None:
            entry["bbox"] = bbox
        annotations.append(entry)

    for n in range(PAIRS):
        sources = [birds25_dir / CARDINAL / f"{n + 1}.jpg", birds25_dir / CHICKADEE / f"{n + 1}.jpg"]
        scene = compose(birds25_dir, SIZE, 2, (0.05,), seed=n, sources=sources)
        image = add_image(f"loc1/pair_{n}.jpg", scene.jpeg())
        for rank, bird in enumerate(scene.birds, start=1):
            annotate(image, CATEGORY_OF[bird.species], _bbox(bird.box))
            folder = CARDINAL.title() if bird.species == CARDINAL else CHICKADEE
            expected[f"{folder}/loc1_pair_{n}_{rank}.png"] = bird.source
    # One cardinal, a person (skipped), a box reaching past the frame's corner (clipped) and one wholly outside.
    scene = compose(birds25_dir, SIZE, 1, (0.05,), seed=11, sources=[birds25_dir / CARDINAL / "5.jpg"])
    edge = add_image("loc1/edge.jpg", scene.jpeg())
    annotate(edge, 1, _bbox(scene.birds[0].box))
    expected["Northern Cardinal/loc1_edge_1.png"] = scene.birds[0].source
    annotate(edge, 3, [10, 10, 40, 80])
    annotate(edge, 1, [SIZE[0] - 60, SIZE[1] - 60, 200, 200])
    annotate(edge, 1, [SIZE[0] + 10, 10, 50, 50])
    buffer = io.BytesIO()
    background(SIZE, 5).save(buffer, format="JPEG", quality=90)
    annotate(add_image("loc2/empty.jpg", buffer.getvalue()), 0, None)  # MegaDetector's way: empty, no box
    annotate(add_image("loc2/gone.jpg", None), 1, [100, 100, 50, 50])  # listed, never copied
    annotate(add_image("loc2/broken.jpg", b"\xff\xd8\xff\xe0 not really a JPEG"), 2, [100, 100, 50, 50])
    annotate(add_image("loc2/unboxed.jpg", scene.jpeg()), 2, None)  # a species but no box
    coco = root / "coco.json"
    coco.write_text(json.dumps({"info": {"version": "1.0"}, "images": images, "annotations": annotations,
                                "categories": CATEGORIES}, indent=1))
    return coco, images_dir, expected


@pytest.fixture(scope="module")
def cut(coco_set, tmp_path_factory) -> tuple[Path, int, dict]:
    coco, images_dir, _ = coco_set
    out = tmp_path_factory.mktemp("coco-crops") / "out"
    printed = io.StringIO()
    with redirect_stdout(printed):
        code = main(["crops", "--coco", str(coco), "--images", str(images_dir), "--out", str(out), "--margin", "0",
                     "--skip-category", "human", "--category-map", f"Black-capped Chickadee={CHICKADEE}",
                     "--category-map", "Northern Cardinal=Northern Cardinal", "--json"])
    return out, code, json.loads(printed.getvalue())


def test_classes_counts_and_lists(cut) -> None:
    out, code, report = cut
    assert code == 0
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == [CHICKADEE, "Northern Cardinal"]
    assert report["crops_per_class"] == {"Northern Cardinal": PAIRS + 2, CHICKADEE: PAIRS}
    assert sorted(p.name for p in (out / "Northern Cardinal").iterdir()) == [
        "loc1_edge_1.png", "loc1_edge_2.png", *(f"loc1_pair_{n}_1.png" for n in range(PAIRS))]
    assert sorted(p.name for p in (out / CHICKADEE).iterdir()) == [f"loc1_pair_{n}_2.png" for n in range(PAIRS)]
    assert report["empty"] == 1 and report["skipped"] == {"human": 1}
    assert report["clipped"] == 1 and report["outside"] == 1
    assert (out / "no_birds.txt").read_text().splitlines() == ["loc2/empty.jpg", "loc2/unboxed.jpg"]
    assert (out / "missing_images.txt").read_text() == "loc2/gone.jpg\n"
    assert (out / "unreadable.txt").read_text().startswith("loc2/broken.jpg\t")
    assert (out / "no_bbox.txt").read_text() == "loc2/unboxed.jpg\tBlack-capped Chickadee\n"
    for crop in out.rglob("*.png"):
        with Image.open(crop) as image:
            assert image.size == (224, 224) and image.mode == "RGB"


def _disc_mean(pixels: np.ndarray) -> np.ndarray:
    """Mean RGB inside the central disc (radius 0.35 of the side): the pasted photo, not the feathered rim."""
    size = pixels.shape[0]
    yy, xx = np.mgrid[:size, :size]
    inside = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 <= (0.35 * size) ** 2
    return pixels[inside].astype(np.float64).mean(axis=0)


def test_each_crop_is_the_bird_pasted_there(cut, coco_set) -> None:
    """With --margin 0 the crop is the pasted square: its mean colour is its own photo's within 2 levels
    (measured: 0.2 at most), while two different pasted photos differ by 8.5 or more."""
    out, _, _ = cut
    expected = coco_set[2]
    references = {source: _disc_mean(np.asarray(_bird_patch(source, 224))) for source in set(expected.values())}
    for name, source in expected.items():
        with Image.open(out / name) as image:
            mean = _disc_mean(np.asarray(image))
        assert np.abs(mean - references[source]).max() < 2.0, (name, mean, references[source])
        nearest = min(references, key=lambda other: np.abs(mean - references[other]).sum())
        assert nearest == source, name


def test_taxonomy_csv_trains_with_the_crops(cut, tmp_path: Path) -> None:
    """OUT/taxonomy.csv is what `trainer train --taxonomy` reads: a one-epoch run on the crops names both classes."""
    out, _, report = cut
    assert report["taxonomy_csv"] == str(out / "taxonomy.csv")
    assert (out / "taxonomy.csv").read_text().splitlines() == [
        "label,scientific_name,common_name", f"{CHICKADEE},Poecile atricapillus,",
        "Northern Cardinal,Cardinalis cardinalis,Northern Cardinal"]
    run = tmp_path / "run"
    assert main(["train", "--data", str(out), "--out", str(run), "--taxonomy", str(out / "taxonomy.csv"),
                 "--epochs", "1", "--image-size", "32", "--filters", "4", "4", "--dense-units", "8",
                 "--val-fraction", "0.3", "--test-fraction", "0", "--no-augment", "--mixed-precision", "off"]) == 0
    assert json.loads((run / "class_names.json").read_text()) == [CHICKADEE, "Northern Cardinal"]
    assert json.loads((run / "taxonomy.json").read_text()) == {
        CHICKADEE: {"scientific_name": "Poecile atricapillus"},
        "Northern Cardinal": {"scientific_name": "Cardinalis cardinalis", "common_name": "Northern Cardinal"}}


def test_default_margin_and_jpeg(coco_set, tmp_path: Path, capsys) -> None:
    """Without options: the category names as classes (the person included), the edge's 0.15 margin."""
    coco, images_dir, _ = coco_set
    out = tmp_path / "out"
    assert main(["crops", "--coco", str(coco), "--images", str(images_dir), "--out", str(out), "--format", "jpeg",
                 "--size", "96"]) == 0
    printed = capsys.readouterr().out
    assert "crops written 11" in printed and "human: 1" in printed and "image files missing: 1" in printed
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["Black-capped Chickadee", "Northern Cardinal", "human"]
    with Image.open(out / "Northern Cardinal" / "loc1_pair_0_1.jpg") as image:
        assert image.format == "JPEG" and image.size == (96, 96)


@pytest.mark.parametrize("problem, message", [
    ("no images", "--coco needs --images DIR"),
    ("with detector", "--detector does not go with --coco"),
    ("neither", "--detector MODEL and --data DIR are required (or --coco FILE --images DIR"),
    ("unknown category", "--skip-category: no category named 'deer' in the file"),
    ("bad bbox", "--coco: annotations[0].bbox: must be [x, y, width, height]"),
    ("not json", "is not readable JSON"),
])
def test_bad_input_exits_2(problem: str, message: str, coco_set, tmp_path: Path, capsys) -> None:
    coco, images_dir, _ = coco_set
    args = ["crops", "--coco", str(coco), "--images", str(images_dir), "--out", str(tmp_path / "out")]
    if problem == "no images":
        args = args[:3] + args[5:]
    elif problem == "with detector":
        args += ["--detector", str(tmp_path / "ssd.tflite")]
    elif problem == "neither":
        args = ["crops", "--out", str(tmp_path / "out")]
    elif problem == "unknown category":
        args += ["--skip-category", "deer"]
    elif problem == "bad bbox":
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps({"images": [{"id": 1, "file_name": "a.jpg"}], "categories": CATEGORIES,
                                   "annotations": [{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3]}]}))
        args[2] = str(bad)
    else:
        (tmp_path / "broken.json").write_text("{not json")
        args[2] = str(tmp_path / "broken.json")
    assert main(args) == 2
    error = capsys.readouterr().err
    assert f"trainer: error: {message}" in error if message.startswith("--") else message in error, error
    assert not (tmp_path / "out").exists()
