"""`trainer crops`: a small labelled tree of benchmarks.scenes frames (train/ and valid/ splits,
two species, an empty frame, a corrupt file) cut into crops with the shared COCO SSD, checked
bit for bit against the edge's own BirdFinder.locate, and accepted by `trainer data check`.

The frames and what the detector finds in them (checked when this test was written):
train/NORTHERN CARDINAL: two.jpg (2 cardinals, seed 0), one.jpg (1, seed 0), empty.jpg (no bird);
train/BLACK-CAPPED CHICKADEE: two.jpg (2 chickadees, seed 2), one.jpg (1, seed 0), broken.jpg;
valid/<both>: one.jpg (1 bird, seed 0).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.scenes import background, compose
from trainer.cli import main

CARDINAL, CHICKADEE = "NORTHERN CARDINAL", "BLACK-CAPPED CHICKADEE"
# (split, species, frame name, photo numbers, seed)
FRAMES = [
    ("train", CARDINAL, "two", (1, 2), 0), ("train", CARDINAL, "one", (3,), 0),
    ("train", CHICKADEE, "two", (1, 2), 2), ("train", CHICKADEE, "one", (3,), 0),
    ("valid", CARDINAL, "one", (4,), 0), ("valid", CHICKADEE, "one", (4,), 0),
]


@pytest.fixture(scope="module")
def frames_dir(birds25_dir: Path, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("frames")
    for split, species, name, photos, seed in FRAMES:
        folder = root / split / species
        folder.mkdir(parents=True, exist_ok=True)
        scene = compose(birds25_dir, (1920, 1080), len(photos), (0.08,), seed,
                        sources=[birds25_dir / species / f"{n}.jpg" for n in photos])
        (folder / f"{name}.jpg").write_bytes(scene.jpeg())
    buffer = io.BytesIO()
    background((1920, 1080), 7).save(buffer, format="JPEG", quality=90)
    (root / "train" / CARDINAL / "empty.jpg").write_bytes(buffer.getvalue())
    (root / "train" / CHICKADEE / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated garbage")
    return root


@pytest.fixture(scope="module")
def crops(frames_dir: Path, ssd_detector_dir: Path, aiy_model_dir: Path, tmp_path_factory) -> tuple[Path, int, str]:
    out = tmp_path_factory.mktemp("crops") / "out"
    capture = io.StringIO()
    from contextlib import redirect_stdout

    with redirect_stdout(capture):
        code = main(["crops", "--detector", str(ssd_detector_dir), "--data", str(frames_dir), "--out", str(out),
                     "--model", str(aiy_model_dir)])
    return out, code, capture.getvalue()


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_folders_counts_and_lists(crops) -> None:
    out, code, printed = crops
    assert code == 0
    assert _names(out / "train" / CARDINAL) == ["one_1.png", "two_1.png", "two_2.png"]
    assert _names(out / "train" / CHICKADEE) == ["one_1.png", "two_1.png", "two_2.png"]
    assert _names(out / "valid" / CARDINAL) == ["one_1.png"]
    assert _names(out / "valid" / CHICKADEE) == ["one_1.png"]
    assert (out / "no_birds.txt").read_text() == f"train/{CARDINAL}/empty.jpg\n"
    unreadable = (out / "unreadable.txt").read_text().splitlines()
    assert len(unreadable) == 1 and unreadable[0].startswith(f"train/{CHICKADEE}/broken.jpg\t")
    assert (out / "several_birds.txt").read_text().splitlines() == [
        f"train/{CHICKADEE}/two.jpg\t2", f"train/{CARDINAL}/two.jpg\t2"]
    assert "frames read 8, crops written 8" in printed
    assert f"train/{CARDINAL}: 3" in printed and "frames with no bird: 1" in printed
    assert "sort mixed-species frames by hand" in printed
    for crop in out.rglob("*.png"):
        with Image.open(crop) as image:
            assert image.size == (224, 224) and image.mode == "RGB"


def test_crops_are_bit_identical_to_the_edges(crops, frames_dir: Path, ssd_detector_dir: Path) -> None:
    """The daemon's finder (built from a [detector] section the way edge run builds it) on the
    same bytes gives exactly the pixels written."""
    from edge.config import EdgeConfig
    from edge.detect.analyse import load_configured_finder

    finder = load_configured_finder(EdgeConfig.model_validate({"detector": {"path": str(ssd_detector_dir)}}))
    out = crops[0]
    compared = 0
    for split, species, name, _, _ in FRAMES:
        located = finder.locate((frames_dir / split / species / f"{name}.jpg").read_bytes(), (224, 224))
        written = sorted((out / split / species).glob(f"{name}_*.png"))
        assert len(written) == len(located.birds)
        for rank, bird in enumerate(located.birds, start=1):
            with Image.open(out / split / species / f"{name}_{rank}.png") as image:
                assert np.array_equal(np.asarray(image), bird.crop)
            compared += 1
    assert compared == 8


def test_trainer_data_check_accepts_the_crops(crops, capsys) -> None:
    from trainer.data_check import check_tree, has_problems

    out = crops[0]
    report = check_tree(out, expect_size=224)
    assert not has_problems(report), report
    assert report["layout"] == "kaggle"
    assert report["counts"] == {"train": {CHICKADEE: 3, CARDINAL: 3}, "valid": {CHICKADEE: 1, CARDINAL: 1}}
    assert main(["data", "check", str(out), "--strict"]) == 0
    assert "result: clean" in capsys.readouterr().out


def test_jpeg_format_min_score_and_size(frames_dir: Path, ssd_detector_dir: Path, tmp_path: Path, capsys) -> None:
    """--format jpeg writes quality-95 JPEGs of --size; --min-score leaves the weaker birds out."""
    data = tmp_path / "data" / CARDINAL
    data.mkdir(parents=True)
    (data / "two.jpg").write_bytes((frames_dir / "train" / CARDINAL / "two.jpg").read_bytes())
    out = tmp_path / "out"
    assert main(["crops", "--detector", str(ssd_detector_dir), "--data", str(tmp_path / "data"), "--out", str(out),
                 "--format", "jpeg", "--size", "160", "--min-score", "0.99", "--json"]) == 0
    assert list(out.rglob("*.jpg")) == []  # no bird scores 0.99
    assert '"below_min_score": 2' in capsys.readouterr().out
    assert main(["crops", "--detector", str(ssd_detector_dir), "--data", str(tmp_path / "data"), "--out", str(out),
                 "--format", "jpeg", "--size", "160", "--force"]) == 0
    written = sorted((out / CARDINAL).iterdir())
    assert [p.name for p in written] == ["two_1.jpg", "two_2.jpg"]
    for crop in written:
        with Image.open(crop) as image:
            assert image.format == "JPEG" and image.size == (160, 160)


@pytest.mark.parametrize("problem", ["missing data", "non-empty out", "bad detector", "bad tiles"])
def test_bad_input_exits_2(problem: str, frames_dir: Path, ssd_detector_dir: Path, tmp_path: Path, capsys) -> None:
    data, out, detector, extra = frames_dir, tmp_path / "out", ssd_detector_dir, []
    if problem == "missing data":
        data = tmp_path / "nowhere"
    elif problem == "non-empty out":
        out.mkdir()
        (out / "keep.txt").write_text("mine\n")
    elif problem == "bad detector":
        detector = tmp_path / "no-detector.tflite"
    else:
        extra = ["--tiles", "lots"]
    code = main(["crops", "--detector", str(detector), "--data", str(data), "--out", str(out), *extra])
    error = capsys.readouterr().err
    assert code == 2
    option = {"missing data": "--data", "non-empty out": "--out", "bad detector": "--detector", "bad tiles": "--tiles"}
    assert f"trainer: error: {option[problem]}: " in error
    if problem == "non-empty out":
        assert _names(out) == ["keep.txt"] and "--force" in error
    else:
        assert not out.exists()
