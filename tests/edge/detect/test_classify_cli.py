"""`edge classify` with a detector, through the real CLI in a subprocess: the shared COCO SSD finds
the birds in benchmarks.scenes frames and the AIY classifier names each crop.

The scene is two NORTHERN CARDINAL photos pasted at 8 % of a 1920x1080 frame (seed 3: both
found, both named Cardinalis cardinalis at 0.84 and 0.93 when this test was written), and an
empty generated background (no bird, whole or in tiles).
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.scenes import background, compose

SCENE_SEED = 3
EMPTY_SEED = 7


def _edge(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge", *args], check=False, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def frames(birds25_dir: Path, tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("frames")
    cardinals = [birds25_dir / "NORTHERN CARDINAL" / f"{n}.jpg" for n in (1, 2)]
    scene = compose(birds25_dir, (1920, 1080), 2, (0.08,), SCENE_SEED, sources=cardinals)
    two = folder / "two_cardinals.jpg"
    two.write_bytes(scene.jpeg())
    buffer = io.BytesIO()
    background((1920, 1080), EMPTY_SEED).save(buffer, format="JPEG", quality=90)
    empty = folder / "empty.jpg"
    empty.write_bytes(buffer.getvalue())
    broken = folder / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    return {"two": two, "empty": empty, "broken": broken}


@pytest.fixture(scope="module")
def detected(frames, aiy_model_dir: Path, ssd_detector_dir: Path, cli_env, tmp_path_factory) -> dict:
    """One run over all three frames, JSON out, annotated pictures written (shared by the tests)."""
    annotate = tmp_path_factory.mktemp("annotated") / "new" / "dir"
    run = _edge(["classify", "--model", str(aiy_model_dir), "--detector", str(ssd_detector_dir), "--format", "json",
                 "--annotate", str(annotate), str(frames["two"]), str(frames["empty"]), str(frames["broken"])], cli_env)
    return {"run": run, "annotate": annotate, "images": {Path(e["path"]).name: e for e in json.loads(run.stdout)["images"]}}


def test_two_cardinals_are_two_birds(detected) -> None:
    assert detected["run"].returncode == 1, detected["run"].stderr  # the broken frame
    entry = detected["images"]["two_cardinals.jpg"]
    assert entry["birds"] == 2
    assert entry["counts"] == {"Cardinalis cardinalis": 2}
    # COCO has a "person" class ([detector] person_labels): a person the SSD sees is listed apart.
    assert set(entry) - {"others"} == {"path", "birds", "detections", "counts", "inference_ms", "night"}
    assert entry["night"] is False  # a day photo
    assert all(o["kind"] == "person" and o["detector_label"] == "person" for o in entry.get("others", []))
    for detection in entry["detections"]:
        assert set(detection) == {"box", "score", "detector_label", "species", "confidence", "kind", "top"}
        assert detection["detector_label"] == "bird" and detection["kind"] == "species"
        assert detection["top"][0]["label"] == "Cardinalis cardinalis"
        assert detection["confidence"] == detection["top"][0]["score"] >= 0.5
        ymin, xmin, ymax, xmax = detection["box"]
        assert 0 <= ymin < ymax <= 1 and 0 <= xmin < xmax <= 1
        assert all(round(v, 4) == v for v in detection["box"])
        assert set(detection["top"][0]) == {"label", "score", "index", "scientific_name"}
    # Best detector score first, as the daemon ranks them.
    scores = [d["score"] for d in entry["detections"]]
    assert scores == sorted(scores, reverse=True)


def test_empty_frame_and_broken_frame(detected) -> None:
    empty = detected["images"]["empty.jpg"]
    assert empty["birds"] == 0 and empty["detections"] == [] and empty["counts"] == {}
    broken = detected["images"]["broken.jpg"]
    assert set(broken) == {"path", "error"}


def test_annotate_draws_inside_the_boxes_only(detected, frames) -> None:
    annotated = detected["annotate"] / "two_cardinals.jpg"
    assert annotated.is_file() and (detected["annotate"] / "empty.jpg").is_file()
    assert not (detected["annotate"] / "broken.jpg").exists()
    with Image.open(frames["two"]) as source, Image.open(annotated) as drawn:
        assert drawn.format == "JPEG" and drawn.size == source.size
        before = np.asarray(source.convert("RGB"), dtype=np.int16)
        after = np.asarray(drawn.convert("RGB"), dtype=np.int16)
    height, width = before.shape[:2]
    entry = detected["images"]["two_cardinals.jpg"]
    for detection in entry["detections"]:
        ymin, xmin, ymax, xmax = detection["box"]
        # Along the box's left edge the outline is drawn: clearly changed pixels.
        x = round(xmin * width)
        rows = slice(round(ymin * height) + 4, round(ymax * height) - 4)
        edge = np.abs(after[rows, x:x + 2] - before[rows, x:x + 2]).max(axis=-1)
        assert np.median(edge) > 40
    # Far from every box (a margin for the captions and the JPEG blocks) the picture is the
    # input's pixels exactly, once encoded the same way (JPEG quality 90: blocks nothing was
    # drawn on encode alike).
    buffer = io.BytesIO()
    Image.fromarray(before.astype(np.uint8)).save(buffer, format="JPEG", quality=90)
    with Image.open(buffer) as reencoded:
        reference = np.asarray(reencoded.convert("RGB"), dtype=np.int16)
    far = np.ones((height, width), dtype=bool)
    for detection in entry["detections"]:
        ymin, xmin, ymax, xmax = detection["box"]
        far[max(0, round(ymin * height) - 40):round(ymax * height) + 24,
            max(0, round(xmin * width) - 24):round(xmax * width) + 200] = False
    assert far.mean() > 0.5
    assert np.array_equal(after[far], reference[far])
    assert not np.array_equal(after[~far], reference[~far])


def test_table_lines(frames, aiy_model_dir: Path, ssd_detector_dir: Path, cli_env) -> None:
    run = _edge(["classify", "--model", str(aiy_model_dir), "--detector", str(ssd_detector_dir),
                 str(frames["two"]), str(frames["empty"])], cli_env)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith(f"{frames['two']}: 2 birds: Cardinalis cardinalis 0.")
    assert lines[0].count("Cardinalis cardinalis") == 2
    assert lines[1] == f"{frames['empty']}: empty"


def test_config_detector_and_classify_section(frames, aiy_model_dir: Path, ssd_detector_dir: Path, cli_env,
                                              tmp_path: Path) -> None:
    """[detector] path of --config is used, and [classify] decides: an allow list the cardinal
    is not on makes both birds `unknown` (still counted, still two birds)."""
    config = tmp_path / "edge.toml"
    config.write_text(f'[model]\npath = "{aiy_model_dir}"\n\n[detector]\npath = "{ssd_detector_dir}"\ntiles = "off"\n\n'
                      '[classify]\nallow = ["Poecile atricapillus"]\n')
    run = _edge(["classify", "--config", str(config), "--tiles", "auto", "--format", "json", str(frames["two"])], cli_env)
    assert run.returncode == 0, run.stderr
    entry = json.loads(run.stdout)["images"][0]
    assert entry["birds"] == 2
    assert entry["counts"] == {"unknown": 2}
    assert {d["kind"] for d in entry["detections"]} == {"unknown"}
    assert {d["top"][0]["label"] for d in entry["detections"]} == {"Cardinalis cardinalis"}


def test_without_detector_the_json_is_unchanged(frames, aiy_model_dir: Path, cli_env) -> None:
    run = _edge(["classify", "--model", str(aiy_model_dir), "--format", "json", "--top-k", "3",
                 str(frames["two"]), str(frames["broken"])], cli_env)
    assert run.returncode == 1
    document = json.loads(run.stdout)
    assert set(document) == {"model_id", "runtime", "images"}
    whole, broken = document["images"]
    assert set(whole) == {"path", "top", "inference_ms"} and len(whole["top"]) == 3
    assert set(whole["top"][0]) == {"label", "score", "index", "scientific_name"}
    assert set(broken) == {"path", "error"}


@pytest.mark.parametrize(("extra", "named"), [
    (["--detector", "{missing}"], "edge: --detector: "),
    (["--annotate", "{out}"], "edge: --annotate: needs a detector"),
    (["--detector", "{detector}", "--detector-labels", "{missing}"], "edge: --detector-labels: "),
    (["--detector", "{detector}", "--tiles", "3y2"], "argument --tiles: "),
    (["--detector", "{detector}", "--detector-threshold", "0"], "argument --detector-threshold: "),
])
def test_bad_detector_options_exit_2(extra: list[str], named: str, frames, aiy_model_dir: Path, ssd_detector_dir: Path,
                                     cli_env, tmp_path: Path) -> None:
    values = {"missing": str(tmp_path / "no-such-detector"), "out": str(tmp_path / "out"), "detector": str(ssd_detector_dir)}
    run = _edge(["classify", "--model", str(aiy_model_dir), *[a.format(**values) for a in extra], str(frames["two"])],
                cli_env)
    assert run.returncode == 2, run.stderr
    assert named in run.stderr
    assert not (tmp_path / "out").exists()


def test_classify_says_what_edge_run_records(detected, frames, aiy_model_dir: Path, ssd_detector_dir: Path, cli_env,
                                             tmp_path: Path) -> None:
    """The same frame through `edge run --once` (same detector, same model, default [classify]):
    the detections table holds the boxes, scores and decisions `edge classify` printed."""
    import shutil
    import sqlite3

    camera = tmp_path / "camera"
    camera.mkdir()
    shutil.copy(frames["two"], camera / "two_cardinals.jpg")
    db = tmp_path / "counts.db"
    config = tmp_path / "edge.toml"
    config.write_text(f'[model]\npath = "{aiy_model_dir}"\n\n[detector]\npath = "{ssd_detector_dir}"\n\n'
                      f'[storage]\ndatabase = "{db}"\n\n[[cameras]]\nname = "cam"\npath = "{camera}"\n')
    run = _edge(["run", "--once", "--config", str(config)], cli_env)
    assert run.returncode == 0, run.stderr
    with sqlite3.connect(db) as connection:
        rows = connection.execute("SELECT ymin, xmin, ymax, xmax, score, kind, species, confidence FROM detections "
                                  "ORDER BY rank").fetchall()
    printed = detected["images"]["two_cardinals.jpg"]["detections"]
    assert len(rows) == len(printed) == 2
    for (ymin, xmin, ymax, xmax, score, kind, species, confidence), shown in zip(rows, printed):
        assert [round(v, 4) for v in (ymin, xmin, ymax, xmax)] == shown["box"]
        assert round(score, 6) == shown["score"]
        assert (kind, species, round(confidence, 6)) == (shown["kind"], shown["species"], shown["confidence"])
