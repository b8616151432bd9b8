"""resolve_detector and the Detector's refusals, on the real COCO SSD and the real AIY classifier."""

from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from edge.detect.model import Detector, DetectorError, resolve_detector


def test_label_offset_is_detected_and_class_15_is_bird(ssd_detector_dir: Path) -> None:
    spec = resolve_detector(ssd_detector_dir)
    assert spec.tflite_path == ssd_detector_dir / "detect.tflite"
    assert spec.labels[0] == "???" and spec.label_offset == 1
    assert spec.bird_classes == frozenset({15}) and spec.label_of(15) == "bird"
    assert spec.bird_labels == frozenset({"bird"})
    assert spec.model_id == f"detect-{spec.tflite_sha256[:8]}"
    assert spec.tflite_sha256.startswith("e4b118e5")
    assert spec.labels_source == str(ssd_detector_dir / "labels.txt")
    # An explicit offset wins: with 0, line 16 ("bird") is class 16.
    assert resolve_detector(ssd_detector_dir / "detect.tflite", label_offset=0).bird_classes == frozenset({16})
    # Names are matched in any case; several bird labels give several classes.
    assert resolve_detector(ssd_detector_dir, bird_labels=("Bird", "cat")).bird_classes == frozenset({15, 16})


def test_labels_beside_the_model_or_embedded_in_it(ssd_detector_dir: Path, tmp_path: Path) -> None:
    beside = tmp_path / "beside"
    beside.mkdir()
    shutil.copy(ssd_detector_dir / "detect.tflite", beside / "detect.tflite")
    shutil.copy(ssd_detector_dir / "labels.txt", beside / "labelmap.txt")
    assert resolve_detector(beside).labels_source == str(beside / "labelmap.txt")
    # A .tflite with its label file packed in (TFLite metadata is a zip appended to the model).
    packed = tmp_path / "packed"
    packed.mkdir()
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("labelmap.txt", (ssd_detector_dir / "labels.txt").read_text())
    (packed / "detect.tflite").write_bytes((ssd_detector_dir / "detect.tflite").read_bytes() + archive.getvalue())
    spec = resolve_detector(packed / "detect.tflite")
    assert spec.labels_source.endswith("detect.tflite!labelmap.txt")
    assert spec.bird_classes == frozenset({15})
    assert Detector(spec).output_format == "ssd"  # the runtime ignores the appended zip
    # Nothing anywhere: an error naming the model.
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(ssd_detector_dir / "detect.tflite", bare / "detect.tflite")
    with pytest.raises(DetectorError, match=r"detect\.tflite: no labels"):
        resolve_detector(bare)
    shutil.copy(ssd_detector_dir / "detect.tflite", bare / "other.tflite")
    with pytest.raises(DetectorError, match="exactly one .tflite.*detect.tflite, other.tflite"):
        resolve_detector(bare)
    with pytest.raises(DetectorError, match="detector not found"):
        resolve_detector(tmp_path / "missing.tflite")


def test_a_bird_label_the_model_lacks_is_named_with_close_matches(ssd_detector_dir: Path) -> None:
    with pytest.raises(DetectorError, match=r"bird label 'birds' is not among the 91 labels of .*labels\.txt; close matches: bird"):
        resolve_detector(ssd_detector_dir, bird_labels=("birds",))
    with pytest.raises(DetectorError, match="'animal' is not among"):  # a MegaDetector name on a COCO model
        resolve_detector(ssd_detector_dir, bird_labels=("animal",))


def test_a_classifier_is_refused_as_a_detector(aiy_model_dir: Path) -> None:
    # Its labels have no "bird" (they are bird species)...
    with pytest.raises(DetectorError, match="bird label 'bird' is not among the 965 labels"):
        resolve_detector(aiy_model_dir / "model.tflite", labels=aiy_model_dir / "labelmap.csv")
    # ...and even with a label that exists, its one [1, 965] output is not a detector's.
    spec = resolve_detector(aiy_model_dir / "model.tflite", labels=aiy_model_dir / "labelmap.csv", bird_labels=("background",))
    with pytest.raises(DetectorError, match=r"model\.tflite: not a detector.*one output \[1, 965\]: that is an image classifier"):
        Detector(spec)


def test_the_real_ssd_detector_reads_its_outputs_and_finds_a_bird_in_a_photo(ssd_detector_dir: Path, birds25_dir: Path) -> None:
    from PIL import Image

    detector = Detector(resolve_detector(ssd_detector_dir))
    assert detector.input_size == (300, 300) and detector.input_dtype == np.uint8
    assert detector.output_format == "ssd" and detector.runtime in ("ai-edge-litert", "tflite-runtime")
    photo = min((birds25_dir / "AMERICAN ROBIN").glob("*.jpg"))
    rgb = np.asarray(Image.open(photo).convert("RGB").resize((300, 300), Image.BILINEAR))
    boxes = detector.detect(rgb)
    assert boxes and all(b.label == "bird" and b.class_index == 15 and b.score >= 0.5 for b in boxes)
    assert [b.score for b in boxes] == sorted((b.score for b in boxes), reverse=True)
    assert all(0.0 <= v <= 1.0 for b in boxes for v in b.coords)
    assert detector.invokes == 1 and detector.last_ms > 0
    with pytest.raises(ValueError, match="must be RGB 300x300"):
        detector.detect(rgb[:200])
