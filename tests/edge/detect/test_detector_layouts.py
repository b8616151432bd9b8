"""The Detector reads the output layouts detectors really have: YOLOv8 / MegaDetector v6
([1, 4+C, N], pixel boxes), YOLOv5 ([1, N, 5+C] with objectness, normalised boxes), an int8
YOLO, and post-processed SSD outputs in EfficientDet-Lite's order under uninformative names.

The models are real TFLite files, converted by TensorFlow in this module's fixture from small
graphs whose answer is known (tests/edge/detect/synthetic_detectors.py): a white square at a grid
cell is a detection of that cell, and a shifted duplicate anchor must be merged by NMS.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.detect.model import Detector, resolve_detector
from tests.edge.detect.synthetic_detectors import DUPLICATE_SCORE, cell_box, frame
from tests.fixtures.models import _tensorflow


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tf = _tensorflow()
    from tests.edge.detect.synthetic_detectors import build_all

    return build_all(tf, tmp_path_factory.mktemp("synthetic-detectors"))


def _coords(boxes) -> list[tuple[float, ...]]:
    return [tuple(round(v, 4) for v in b.coords) for b in boxes]


@pytest.mark.parametrize("name", ["yolo_v8", "yolo_v5"])
def test_float_yolo_layouts_give_the_square_its_box_class_and_score(synthetic: dict[str, Path], name: str) -> None:
    detector = Detector(resolve_detector(synthetic[name], bird_labels=("animal",)))
    assert detector.output_format == "yolo"
    assert detector.input_size == (64, 64) and detector.input_dtype == np.float32
    assert detector.input_range == (0.0, 1.0)  # YOLO exports take pixels / 255
    boxes = detector.detect(frame([(1, 2)]))
    # One box although two anchors fired (the shifted duplicate at 0.8 is merged by NMS).
    assert _coords(boxes) == [cell_box(1, 2)]
    assert boxes[0].label == "animal" and boxes[0].class_index == 0
    assert boxes[0].score == pytest.approx(1.0 if name == "yolo_v8" else 0.9, abs=1e-5)
    two = detector.detect(frame([(0, 0), (3, 3)]))
    assert sorted(_coords(two)) == [cell_box(0, 0), cell_box(3, 3)]
    assert detector.detect(frame([])) == []  # dark frame: every score below 0.5


def test_only_bird_classes_count_and_nms_merges_exactly_the_duplicates(synthetic: dict[str, Path]) -> None:
    # "person" scores 0.9 at every anchor: not a bird by default...
    animal = Detector(resolve_detector(synthetic["yolo_v8"], bird_labels=("animal",)))
    assert all(b.label == "animal" for b in animal.detect(frame([(2, 2)])))
    # ...but when it is, each of the 16 cells is one person: 32 anchors, 16 duplicates merged.
    person = Detector(resolve_detector(synthetic["yolo_v8"], bird_labels=("person",)))
    found = person.detect(frame([]))
    assert len(found) == 16
    assert sorted(_coords(found)) == sorted(cell_box(r, c) for r in range(4) for c in range(4))
    # Without NMS (threshold 1.0 keeps all but identical boxes) the duplicates show.
    loose = Detector(resolve_detector(synthetic["yolo_v8"], bird_labels=("person",)), iou_threshold=1.0)
    assert len(loose.detect(frame([]))) == 32
    # A higher score threshold drops the duplicate anchors' 0.8 before NMS ever sees them.
    strict = Detector(resolve_detector(synthetic["yolo_v8"], bird_labels=("animal",)), iou_threshold=1.0,
                      score_threshold=DUPLICATE_SCORE + 0.05)
    assert len(strict.detect(frame([(1, 2)]))) == 1


def test_int8_yolo_is_quantised_in_and_dequantised_out(synthetic: dict[str, Path]) -> None:
    detector = Detector(resolve_detector(synthetic["yolo_int8"], bird_labels=("animal",)))
    assert detector.input_dtype == np.int8 and detector.output_format == "yolo"
    boxes = detector.detect(frame([(1, 2)]))
    assert len(boxes) == 1
    np.testing.assert_allclose(boxes[0].coords, cell_box(1, 2), atol=0.01)
    assert boxes[0].score == pytest.approx(1.0, abs=0.02)
    assert sorted(round(b.xmin, 1) for b in detector.detect(frame([(0, 0), (3, 3)]))) == [0.0, 0.8]


def test_ssd_outputs_found_by_shape_and_values_not_by_index(synthetic: dict[str, Path]) -> None:
    spec = resolve_detector(synthetic["ssd"])  # labels ???, person, bird: offset 1, bird = class 1
    assert spec.label_offset == 1 and spec.bird_classes == frozenset({1})
    detector = Detector(spec)
    assert detector.output_format == "ssd"
    assert detector.input_range == (-1.0, 1.0)  # the TF object-detection API's float input
    details = detector.engine.interpreter.get_output_details()
    # The model lists boxes, then scores, then classes, then count, under names saying nothing.
    assert [list(d["shape"]) for d in details] == [[1, 16, 4], [1, 16], [1, 16], [1]]
    assert not any("score" in d["name"].lower() or "class" in d["name"].lower() for d in details)
    boxes = detector.detect(frame([(1, 2)]))  # cell 6: even → "bird"
    assert _coords(boxes) == [cell_box(1, 2)]
    assert boxes[0].label == "bird" and boxes[0].class_index == 1
    assert boxes[0].score == pytest.approx(1.0, abs=1e-5)
    assert detector.detect(frame([(1, 1)])) == []  # cell 5: a "person"
    # The first [1, N] output really is the scores (fractions): op order alone would misread it.
    first = detector.engine.interpreter.get_tensor(details[1]["index"])
    assert not np.allclose(first, np.rint(first))
    assert _coords(detector.detect(frame([(0, 0), (3, 2)]))) == [cell_box(0, 0), cell_box(3, 2)]
