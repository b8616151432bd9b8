"""ONNX Runtime as the detector's second runtime: every layout a MegaDetector (v5a, v6 yolov9,
v6 RT-DETR) or another YOLO-family export has, decoded by the one code path the TFLite
detectors use, on real ONNX models built here (tests/edge/detect/colour_detectors.py: a cell's score
is its mean red / green / blue, so a coloured square at a known place is an animal / person /
vehicle there). The end-to-end [1, N, 6] layout is also built as a TFLite model and decodes
the same in both runtimes.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from edge.config import EdgeConfig  # noqa: E402
from edge.detect.analyse import load_configured_finder  # noqa: E402
from edge.detect.model import Detector, DetectorError, resolve_detector  # noqa: E402
from tests.edge.detect.colour_detectors import LABELS, build_onnx, build_tflite_end2end, picture  # noqa: E402

# A 2:1 photo. Letterboxed into the 64x64 input it is scaled by 1/2 and padded by 16 rows above
# and below, so its 16-pixel square at (32, 16) fills the input cell at column 2, row 3;
# stretched, x halves and y stays, so its 16x8 strip at (32, 16) fills the cell at column 2, row 2.
PHOTO = (128, 64)
LETTERBOX_SQUARE = (32, 16, 48, 32)
STRETCH_STRIP = (32, 16, 48, 24)
WIDE = {"bird_labels": ("animal",), "person_labels": ("person",), "vehicle_labels": ("vehicle",)}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_onnx(tmp_path_factory.mktemp("onnx-detectors"))


def _normalised(rect: tuple[int, int, int, int]) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = rect
    return (y0 / PHOTO[1], x0 / PHOTO[0], y1 / PHOTO[1], x1 / PHOTO[0])


def _coords(box) -> tuple[float, ...]:
    return tuple(round(v, 4) for v in box.coords)


@pytest.mark.parametrize("name, layout, resize", [
    ("yolov8", "yolov8", "letterbox"),   # MegaDetector v6 yolov9: [1, 4+C, N], pixel boxes
    ("yolov5", "yolov5", "letterbox"),   # MegaDetector v5a: [1, N, 5+C], objectness
    ("rtdetr", "yolov8", "letterbox"),   # [1, N, 4+C] channels last: read as YOLO without metadata
    ("rtdetr2", "rtdetr", "stretch"),    # MegaDetector v6 Apache (RT-DETRv2 deploy): three outputs
    ("end2end", "end2end", "letterbox"),  # [1, K, 6] with TopK inside
])
def test_each_layout_finds_the_animal_where_it_is_in_a_non_square_photo(
        models: dict[str, Path], name: str, layout: str, resize: str) -> None:
    detector = Detector(resolve_detector(models[name], **WIDE))
    assert detector.runtime == "onnxruntime" and detector.spec.runtime_kind == "onnx"
    assert detector.layout == layout and detector.resize == resize
    assert detector.input_size == (64, 64) and detector.input_range == (0.0, 1.0)
    rect = LETTERBOX_SQUARE if resize == "letterbox" else STRETCH_STRIP
    photo = Image.fromarray(picture(*PHOTO, [("animal", rect)]))
    boxes = detector.detect_picture(photo)
    assert [(b.kind, b.label, b.class_index) for b in boxes] == [("bird", "animal", 0)]
    assert _coords(boxes[0]) == pytest.approx(_normalised(rect), abs=1e-4)
    assert boxes[0].score > 0.7
    # A person and a vehicle: recorded as such, never as birds; the empty photo finds nothing.
    both = detector.detect_picture(Image.fromarray(picture(*PHOTO, [("person", rect)])))
    assert [(b.kind, b.label) for b in both] == [("person", "person")]
    assert _coords(both[0]) == pytest.approx(_normalised(rect), abs=1e-4)
    vehicle = detector.detect_picture(Image.fromarray(picture(*PHOTO, [("vehicle", rect)])))
    assert [(b.kind, b.label) for b in vehicle] == [("vehicle", "vehicle")]
    assert detector.detect_picture(Image.fromarray(picture(*PHOTO, []))) == []


def test_birds_only_unless_people_and_vehicles_are_asked_for(models: dict[str, Path]) -> None:
    rgb = picture(64, 64, [("animal", (16, 16, 24, 24)), ("person", (40, 40, 48, 48))])
    plain = Detector(resolve_detector(models["yolov8"], bird_labels=("animal",)))
    assert plain.spec.other_classes == {}
    assert [b.kind for b in plain.detect(rgb)] == ["bird"]
    wide = Detector(resolve_detector(models["yolov8"], **WIDE))
    assert wide.spec.other_classes == {1: "person", 2: "vehicle"}
    assert [(b.kind, _coords(b)) for b in wide.detect(rgb)] == [
        ("bird", (0.25, 0.25, 0.375, 0.375)), ("person", (0.625, 0.625, 0.75, 0.75))]
    # A class that is a bird label stays a bird, even when it is also named a person.
    odd = resolve_detector(models["yolov8"], bird_labels=("person",), person_labels=("person",))
    assert odd.bird_classes == frozenset({1}) and odd.other_classes == {}


def test_the_end_to_end_layout_decodes_the_same_in_tflite_and_onnx(models: dict[str, Path],
                                                                   tmp_path: Path) -> None:
    from tests.fixtures.models import _tensorflow

    folder = build_tflite_end2end(_tensorflow(), tmp_path)
    tflite = Detector(resolve_detector(folder, **WIDE))
    onnx = Detector(resolve_detector(models["end2end"], **WIDE))
    assert tflite.runtime in ("ai-edge-litert", "tflite-runtime") and tflite.layout == onnx.layout == "end2end"
    assert tflite.resize == "letterbox"
    for scene in ([("animal", LETTERBOX_SQUARE)], [("animal", (0, 16, 16, 32)), ("person", LETTERBOX_SQUARE),
                                                    ("vehicle", (96, 32, 112, 48))], []):
        photo = Image.fromarray(picture(*PHOTO, scene))
        ours, theirs = tflite.detect_picture(photo), onnx.detect_picture(photo)
        assert [(b.kind, b.label) for b in ours] == [(b.kind, b.label) for b in theirs]
        np.testing.assert_allclose([b.coords for b in ours], [b.coords for b in theirs], atol=1e-5)
        assert [b.score for b in ours] == pytest.approx([b.score for b in theirs], abs=1e-5)
        assert sorted(b.kind for b in ours) == sorted("bird" if k == "animal" else k for k, _ in scene)


def test_an_ambiguous_shape_is_refused_naming_the_layout_key(models: dict[str, Path], tmp_path: Path) -> None:
    # With two labels, [1, 10, 6] is an end-to-end output or a YOLOv8 one (4 + 2 channels).
    two = tmp_path / "two.txt"
    two.write_text("animal\nperson\n", encoding="utf-8")
    spec = resolve_detector(models["end2end"], labels=two, bird_labels=("animal",))
    with pytest.raises(DetectorError, match=r"^detector\.layout: .*end2end or yolov8"):
        Detector(spec)
    told = Detector(spec, layout="end2end")
    boxes = told.detect(picture(64, 64, [("animal", (8, 8, 16, 16))]))
    assert [(b.label, _coords(b)) for b in boxes] == [("animal", (0.125, 0.125, 0.25, 0.25))]
    # A layout that does not fit the outputs is refused, saying what was asked for.
    with pytest.raises(DetectorError, match="detector.layout = 'yolov5' was asked for"):
        Detector(resolve_detector(models["yolov8"], bird_labels=("animal",)), layout="yolov5")
    # Through the configuration: the error starts with the key.
    config = EdgeConfig.model_validate({"detector": {"path": str(models["end2end"]), "labels": str(two),
                                                     "bird_labels": ["animal"]}})
    with pytest.raises(DetectorError, match=r"^detector\.layout: "):
        load_configured_finder(config)


def test_labels_from_metadata_or_megadetector_default(models: dict[str, Path], tmp_path: Path) -> None:
    spec = resolve_detector(models["metadata"], bird_labels=("animal",))
    assert spec.labels == list(LABELS) and spec.labels_source.endswith("!metadata names")
    # No labels file, no metadata: MegaDetector's three classes for a file named like one ...
    folder = tmp_path / "megadetector-v6"
    folder.mkdir()
    shutil.copy(models["yolov8"] / "model.onnx", folder / "MDV6-mit-yolov9-c.onnx")
    spec = resolve_detector(folder, bird_labels=("animal",), person_labels=("person",))
    assert spec.labels == ["animal", "person", "vehicle"] and "MegaDetector" in spec.labels_source
    assert spec.model_path.name == "MDV6-mit-yolov9-c.onnx" and spec.other_classes == {1: "person"}
    # ... and a clear refusal for any other.
    other = tmp_path / "plain"
    other.mkdir()
    shutil.copy(models["yolov8"] / "model.onnx", other / "model.onnx")
    with pytest.raises(DetectorError, match="no labels: .*names metadata in the .onnx"):
        resolve_detector(other)


def test_dynamic_input_dimensions_take_the_configured_size(models: dict[str, Path]) -> None:
    spec = resolve_detector(models["dynamic"], bird_labels=("animal",))
    detector = Detector(spec, input_size=64)
    assert detector.input_size == (64, 64)
    assert [_coords(b) for b in detector.detect(picture(64, 64, [("animal", (0, 0, 8, 8))]))] == [(0.0, 0.0, 0.125, 0.125)]
    # Unset: 640 (MegaDetector's size), which this 64-pixel graph cannot run: said, with the key.
    with pytest.raises(DetectorError, match=r"(?s)cannot run it at 640x640.*detector\.input_size"):
        Detector(spec)


def test_without_onnxruntime_the_error_says_what_to_install(models: dict[str, Path]) -> None:
    script = (
        "import sys; sys.modules['onnxruntime'] = None\n"  # as if the extra were not installed
        "from edge.config import EdgeConfig\n"
        "from edge.detect.analyse import load_configured_finder\n"
        "from edge.detect.model import DetectorError\n"
        f"config = EdgeConfig.model_validate({{'detector': {{'path': {str(models['yolov8'])!r}, "
        "'bird_labels': ['animal']}})\n"
        "try:\n    load_configured_finder(config)\nexcept DetectorError as error:\n    print(error)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                            cwd=Path(__file__).resolve().parents[3])
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("detector.path: ")
    assert "onnxruntime is not installed" in result.stdout and "pip install 'trailcam[onnx]'" in result.stdout


def test_float16_and_nhwc_inputs_are_fed_as_the_model_wants(tmp_path: Path) -> None:
    """An ONNX input in NHWC (a TF-converted model) or float16 (a half-precision export) is fed
    in its own layout and type."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from tests.edge.detect.colour_detectors import CELL, N, geometry

    def build(nhwc: bool, half: bool) -> Path:
        dtype = TensorProto.FLOAT16 if half else TensorProto.FLOAT
        dims = [1, 64, 64, 3] if nhwc else [1, 3, 64, 64]
        nodes = []
        source = "images"
        if nhwc:
            nodes.append(helper.make_node("Transpose", ["images"], ["nchw"], perm=[0, 3, 1, 2]))
            source = "nchw"
        if half:
            nodes.append(helper.make_node("Cast", [source], ["as_float"], to=TensorProto.FLOAT))
            source = "as_float"
        nodes += [helper.make_node("AveragePool", [source], ["pooled"], kernel_shape=[CELL, CELL], strides=[CELL, CELL]),
                  helper.make_node("Reshape", ["pooled", "shape"], ["scores"]),
                  helper.make_node("Concat", ["geometry", "scores"], ["output0"], axis=1)]
        graph = helper.make_graph(
            nodes, "variant", [helper.make_tensor_value_info("images", dtype, dims)],
            [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 7, N])],
            [numpy_helper.from_array(geometry(False)[np.newaxis], "geometry"),
             numpy_helper.from_array(np.array([1, 3, N], np.int64), "shape")])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        model.ir_version = 7
        folder = tmp_path / f"nhwc{int(nhwc)}-half{int(half)}"
        folder.mkdir()
        onnx.save(model, str(folder / "model.onnx"))
        (folder / "labels.txt").write_text("\n".join(LABELS) + "\n")
        return folder

    for nhwc, half in ((True, False), (False, True)):
        detector = Detector(resolve_detector(build(nhwc, half), bird_labels=("animal",)))
        assert detector.engine.channels_first is not nhwc
        boxes = detector.detect(picture(64, 64, [("animal", (56, 56, 64, 64))]))
        assert [_coords(b) for b in boxes] == [(0.875, 0.875, 1.0, 1.0)]


def test_the_megadetector_cost_stand_in_has_v6c_size() -> None:
    """benchmarks/megadetector_cost.py's model is MegaDetector v6-c's size (YOLOv9-c: ~25 M
    parameters, ~100 GFLOPs at 640x640) and its heads cover the 8400 anchors of [1, 7, 8400]."""
    from benchmarks.megadetector_cost import HEADS, SIDE, STACK, cost

    params, gflops = cost()
    assert 20e6 <= params <= 32e6 and 90 <= gflops <= 120
    side, grids = SIDE, []
    for index, (_, _, stride) in enumerate(STACK):
        side //= stride
        if index in HEADS:
            grids.append(side)
    assert grids == [80, 40, 20] and sum(g * g for g in grids) == 8400
