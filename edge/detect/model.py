"""The bird detector: an object detector run with TFLite (the classifier's runtime,
ai-edge-litert, else tflite-runtime; never TensorFlow) or with ONNX Runtime (a .onnx file, the
optional `onnx` extra: edge/detect/runtime.py), reduced to the boxes of the classes that are
birds, and of those that are people or vehicles (recorded, never classified or counted).

The runtime is a small adapter (edge/detect/runtime.py: NHWC or NCHW, quantisation, dynamic
input sizes); everything below is one code path for both. The output layouts read:

- "ssd": the TF object-detection API's exports (SSD MobileNet, EfficientDet-Lite), whose last op
  is TFLite_Detection_PostProcess: boxes [1,N,4] (ymin, xmin, ymax, xmax, normalised), classes
  [1,N], scores [1,N], count [1], NMS already done. The four outputs are found by shape, not by
  index (EfficientDet-Lite lists them in another order than SSD MobileNet): boxes end in 4, count
  has one value, and of the two [1,N] tensors the classes are the integral one (or the one whose
  name says "class"/"score", or TFLite_Detection_PostProcess's ":1"/":2" when the values cannot
  tell, e.g. all zero).
- "yolov8": one raw tensor [1,4+C,N] (YOLOv8/v9, MegaDetector v6 yolov9) or [1,N,4+C]: boxes as
  cx, cy, w, h, in input pixels or normalised (told apart by magnitude), then per-class scores.
  Ultralytics' RT-DETR exports [1,300,4+C] (normalised cx, cy, w, h and final sigmoid scores,
  no NMS needed) are this layout read channels-last; `layout = "rtdetr"` says so where the
  channel count alone would read 5+C.
- "yolov5": [1,N,5+C] (YOLOv5, MegaDetector v5a): the same with an objectness that multiplies
  the class scores. NMS is done here for both YOLO layouts.
- "rtdetr": RT-DETRv2's deploy export (MegaDetector v6 Apache, lyuwenyu/RT-DETR
  tools/export_onnx.py): labels [1,Q], boxes [1,Q,4] (x1, y1, x2, y2 in the pixels of the size
  given as its second input, which the runtime feeds the input size), scores [1,Q]; or a single
  [1,Q,4+C] tensor as above. Trained on stretched input (torchvision Resize), so "auto" stretches.
- "end2end": [1,N,6] rows of x1, y1, x2, y2, score, class with NMS inside the model
  (Ultralytics `nms=True` exports, YOLOv10-style heads), pixels or normalised.

"auto" identifies the layout by the shapes; where a shape fits two (a [1,N,6] tensor is an
end-to-end output or, with C = 2 labels, a YOLOv8 one; with C = 1 a YOLOv5 one) it refuses and
names the `detector.layout` key that decides.

Only the bird classes count, and boxes of different bird classes are merged by one
class-agnostic NMS (one bird, one box, whatever two bird classes the model hesitated between);
the same holds for people and for vehicles, each kind apart (`Box.kind`).

The picture is fitted to the input the way the detector was trained (`fit_input`, the `resize`
setting): YOLO-family models (Ultralytics, MegaDetector) are trained on letterboxed input, the
picture scaled whole with its aspect ratio kept and padded with grey 114, centred. Stretched to
a square input instead, the birds of a 16:9 frame come out 1.78 times as tall for their width
as the model ever saw them, and a YOLOv5n found 4 birds stretched where it found 7 letterboxed
on the same frames (issue 21). The TF
object-detection API's SSDs were trained on stretched input (the COCO SSD MobileNet resizes to
300x300 regardless of aspect), so they keep it, as do RT-DETR's (Ultralytics' RT-DETR predictor
and RT-DETRv2 both resize without padding). "auto" picks by the output layout. Boxes come
back normalised to the picture, the padding and the scale undone exactly.

Labels and the label offset: the TF model zoo numbers classes from 0 while its label files start
with a "???" (or "background") line, so class c is line c + 1 (COCO class 15 → line 16 →
"bird"). `resolve_detector` applies that offset once: `DetectorSpec.bird_classes` are the
indices as the model emits them. An ONNX detector's labels: a labels file beside it, else
Ultralytics' `names` metadata, else MegaDetector's animal / person / vehicle for a file whose
name says it is one.
"""

from __future__ import annotations

import difflib
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from edge.classify.labels import Label, LabelError, embedded_labels, load_labels_file
from edge.classify.model import ModelError, sha256_file
from edge.detect.boxes import nms
from edge.detect.runtime import OutputInfo, RuntimeLoadError, is_onnx, metadata_names, onnx_metadata, open_runtime

# A first label line meaning "class numbers start at 1 in this file" (TF model zoo convention).
BACKGROUND_NAMES = frozenset({"???", "background", "__background__"})
LABEL_FILES = ("labels.txt", "labelmap.txt")
MODEL_SUFFIXES = (".tflite", ".onnx")
# MegaDetector's classes (v5 and v6 alike), for an ONNX export whose name says it is one and
# that carries no labels: class 0 animal, 1 person, 2 vehicle.
MEGADETECTOR_LABELS = ("animal", "person", "vehicle")
MEGADETECTOR_NAME = re.compile(r"megadetector|md_?v[56]|mdv6", re.IGNORECASE)
# The float input each kind of detector was trained on, when the model says nothing: YOLO and
# RT-DETR exports (Ultralytics, MegaDetector) divide pixels by 255; the TF object-detection
# API's SSD and EfficientDet float exports map them to -1..1.
DEFAULT_FLOAT_RANGE = {"yolo": (0.0, 1.0), "ssd": (-1.0, 1.0), "rtdetr": (0.0, 1.0), "end2end": (0.0, 1.0)}
# Box coordinates above this are pixels of the input, not fractions of it.
PIXEL_COORDINATES_ABOVE = 2.0
ResizeMode = Literal["auto", "letterbox", "stretch"]
RESIZE_MODES: tuple[str, ...] = ("auto", "letterbox", "stretch")
Layout = Literal["auto", "ssd", "yolov5", "yolov8", "rtdetr", "end2end"]
LAYOUTS: tuple[str, ...] = ("auto", "ssd", "yolov5", "yolov8", "rtdetr", "end2end")
# What "auto" fits each kind of detector's input with: what it was trained on (module docstring).
AUTO_RESIZE = {"yolo": "letterbox", "ssd": "stretch", "rtdetr": "stretch", "end2end": "letterbox"}
# Ultralytics' letterbox padding (and MegaDetector's, which uses it): mid grey.
LETTERBOX_GREY = (114, 114, 114)
# The kinds of box a detector reports: birds (classified, counted) and what is recorded only.
OTHER_KINDS = ("person", "vehicle")


class DetectorError(ModelError):
    """A detector that cannot be loaded, whose labels do not fit, or whose outputs are unusable.
    A ModelError, so that every place that refuses a bad model (start, reload) refuses it too."""


@dataclass(frozen=True)
class DetectorSpec:
    """Where a detector's parts are and which of its classes are birds (and people, vehicles),
    before any runtime."""

    model_path: Path  # the .tflite or .onnx
    labels: list[str]
    label_offset: int  # label of class c is labels[c + label_offset]
    bird_labels: frozenset[str]  # casefolded names counted as "a bird"
    bird_classes: frozenset[int]  # class indices as the model emits them (offset applied)
    model_id: str  # f"{stem}-{sha256[:8]}"
    sha256: str
    labels_source: str
    # class index → "person" | "vehicle": recorded per frame, never classified nor counted
    # (a class that is also a bird label is a bird).
    other_classes: Mapping[int, str] = field(default_factory=dict)

    @property
    def tflite_path(self) -> Path:
        """The model file (the name from before ONNX detectors; a .onnx for those)."""
        return self.model_path

    @property
    def tflite_sha256(self) -> str:
        return self.sha256

    @property
    def runtime_kind(self) -> str:
        """"onnx" for a .onnx file, else "tflite": which runtime opens it."""
        return "onnx" if is_onnx(self.model_path) else "tflite"

    def label_of(self, class_index: int) -> str:
        """The label of a class index as the model emits it ("class N" when out of range)."""
        line = class_index + self.label_offset
        return self.labels[line] if 0 <= line < len(self.labels) else f"class {class_index}"

    def kind_of(self, class_index: int) -> str | None:
        """"bird", "person", "vehicle", or None for a class nobody asked for."""
        if class_index in self.bird_classes:
            return "bird"
        return self.other_classes.get(class_index)

    @property
    def num_classes(self) -> int:
        """Classes the model can emit: the labels after the offset lines."""
        return len(self.labels) - self.label_offset


def _find_model(path: Path) -> Path:
    if path.is_dir():
        candidates = sorted(c for c in path.iterdir() if c.suffix.lower() in MODEL_SUFFIXES and c.is_file())
        if len(candidates) != 1:
            found = ", ".join(c.name for c in candidates) or "none"
            raise DetectorError(f"{path}: expected exactly one .tflite or .onnx in the detector folder, found {found}")
        return candidates[0]
    if path.is_file():
        return path
    raise DetectorError(f"{path}: detector not found (a .tflite or .onnx file, or a folder holding one)")


def _read_labels(model: Path, labels: Path | None) -> tuple[list[Label], str]:
    """Explicit file, else labels.txt / labelmap.txt beside the model, else embedded in it (a
    .tflite's metadata zip; an ONNX model's `names` metadata), else MegaDetector's three
    classes for a .onnx whose file or folder name says MegaDetector."""
    try:
        if labels is not None:
            return load_labels_file(Path(labels)), str(labels)
        for name in LABEL_FILES:
            candidate = model.parent / name
            if candidate.is_file():
                return load_labels_file(candidate), str(candidate)
        if is_onnx(model):
            try:
                names = metadata_names(onnx_metadata(model))
            except RuntimeLoadError as error:
                raise DetectorError(str(error)) from None
            if names:
                return [Label(i, n) for i, n in enumerate(names)], f"{model}!metadata names"
            if MEGADETECTOR_NAME.search(model.name) or MEGADETECTOR_NAME.search(model.parent.name):
                return ([Label(i, n) for i, n in enumerate(MEGADETECTOR_LABELS)],
                        "MegaDetector's classes (built in: animal, person, vehicle)")
            found = None
        else:
            found = embedded_labels(model)
    except LabelError as error:
        raise DetectorError(str(error)) from None
    if found is None:
        where = "names metadata in the .onnx" if is_onnx(model) else "embedded in the .tflite"
        raise DetectorError(
            f"{model}: no labels: no {' or '.join(LABEL_FILES)} beside it and none {where}; "
            "give the labels file"
        )
    return found[1], f"{model}!{found[0]}"


def _classes_named(wanted: Sequence[str], label_list: list[Label]) -> dict[str, list[int]]:
    """Casefolded wanted name → the label lines that carry it (as name, scientific or common name)."""
    found: dict[str, list[int]] = {}
    for want in wanted:
        found[want] = [
            line for line, label in enumerate(label_list)
            if want in {n.casefold() for n in (label.name, label.scientific_name, label.common_name) if n}
        ]
    return found


def resolve_detector(
    path: Path,
    labels: Path | None = None,
    label_offset: int | None = None,
    bird_labels: Sequence[str] = ("bird",),
    person_labels: Sequence[str] = (),
    vehicle_labels: Sequence[str] = (),
) -> DetectorSpec:
    """Find the detector's model (.tflite or .onnx) and labels and decide which class indices are
    birds, and which people and vehicles.

    `label_offset` None: 1 when the first label is "???", "background" or "__background__" (the
    TF model zoo's class + 1), else 0. `bird_labels`: names (any case) of the classes counted as
    a bird; MegaDetector users give ("animal",). Raises DetectorError naming a bird label the
    labels lack, with the closest labels it has. `person_labels` / `vehicle_labels`: classes
    recorded as a person / vehicle in the frame, used only where the labels have them (the
    config's defaults name MegaDetector's; a bird detector without them is not refused); a
    class that is also a bird label stays a bird.
    """
    model = _find_model(Path(path))
    label_list, source = _read_labels(model, labels)
    names = [label.name for label in label_list]
    if not names:
        raise DetectorError(f"{source}: the labels file is empty")
    if label_offset is None:
        label_offset = 1 if names[0].strip().casefold() in BACKGROUND_NAMES else 0
    if not 0 <= label_offset < len(names):
        raise DetectorError(f"{source}: label offset {label_offset} is out of range for {len(names)} labels")
    wanted = [str(name).strip().casefold() for name in bird_labels]
    if not wanted or not all(wanted):
        raise DetectorError("bird labels: give at least one non-empty label name (e.g. \"bird\", or \"animal\" for MegaDetector)")
    classes: set[int] = set()
    for want, lines in _classes_named(wanted, label_list).items():
        if not lines:
            close = difflib.get_close_matches(want, [n.casefold() for n in names], n=5, cutoff=0.5)
            hint = f"; close matches: {', '.join(close)}" if close else ""
            raise DetectorError(f"bird label {want!r} is not among the {len(names)} labels of {source}{hint}")
        usable = [line - label_offset for line in lines if line >= label_offset]
        if not usable:
            raise DetectorError(f"bird label {want!r} is the background line of {source} (label offset {label_offset})")
        classes.update(usable)
    others: dict[int, str] = {}
    for kind, given in (("person", person_labels), ("vehicle", vehicle_labels)):
        named = [str(n).strip().casefold() for n in given if str(n).strip()]
        for lines in _classes_named(named, label_list).values():
            for line in lines:
                index = line - label_offset
                if index >= 0 and index not in classes:
                    others.setdefault(index, kind)
    digest = sha256_file(model)
    return DetectorSpec(
        model_path=model,
        labels=names,
        label_offset=label_offset,
        bird_labels=frozenset(wanted),
        bird_classes=frozenset(classes),
        model_id=f"{model.stem}-{digest[:8]}",
        sha256=digest,
        labels_source=source,
        other_classes=others,
    )


@dataclass(frozen=True)
class Box:
    """One detection, normalised (0..1) to the image it was found in."""

    ymin: float
    xmin: float
    ymax: float
    xmax: float
    score: float
    class_index: int  # as the model emits it
    label: str
    kind: str = "bird"  # "bird" | "person" | "vehicle" (DetectorSpec.kind_of)

    @property
    def coords(self) -> tuple[float, float, float, float]:
        return (self.ymin, self.xmin, self.ymax, self.xmax)


@dataclass(frozen=True)
class Placement:
    """Where a picture lies in the detector's input after `fit_input`: its pixels fill the
    rectangle (x0, y0, width, height) of an input of `input_size` (w, h); the rest is padding.
    Stretched, the rectangle is the whole input."""

    input_size: tuple[int, int]
    x0: int
    y0: int
    width: int
    height: int

    @property
    def whole(self) -> bool:
        """The picture fills the input: boxes normalised to the input are normalised to it."""
        return (self.x0, self.y0, self.width, self.height) == (0, 0, *self.input_size)

    def to_picture(self, boxes: Sequence[Box]) -> list[Box]:
        """Boxes normalised to the input → normalised to the picture: the padding and the scale
        undone, clipped to the picture; a box lying wholly in the padding is dropped (it is
        no bird of the picture). The order is kept."""
        if self.whole:
            return list(boxes)
        in_w, in_h = self.input_size
        mapped = []
        for box in boxes:
            ymin, ymax = (min(max((v * in_h - self.y0) / self.height, 0.0), 1.0) for v in (box.ymin, box.ymax))
            xmin, xmax = (min(max((v * in_w - self.x0) / self.width, 0.0), 1.0) for v in (box.xmin, box.xmax))
            if ymax > ymin and xmax > xmin:
                mapped.append(Box(ymin, xmin, ymax, xmax, box.score, box.class_index, box.label, box.kind))
        return mapped


def fit_input(picture: Image.Image, input_size: tuple[int, int], letterbox: bool) -> tuple[Image.Image, Placement]:
    """An RGB picture of any size → (an RGB image of `input_size` (w, h), where the picture lies
    in it). Stretch: resized to the input (bilinear), aspect ratio lost, as the TF SSDs were
    trained. Letterbox, as Ultralytics' LetterBox (center=True) does it: scaled by
    r = min(in_w / w, in_h / h) to (round(w r), round(h r)) (bilinear), pasted on grey 114 with
    the padding split evenly, the odd pixel going right and below. The picture's pixels are
    never cropped; up-scaling a small picture is allowed, as in Ultralytics' default."""
    in_w, in_h = input_size
    width, height = picture.size
    if not letterbox or picture.size == tuple(input_size):
        fitted = picture if picture.size == tuple(input_size) else picture.resize((in_w, in_h), Image.Resampling.BILINEAR)
        return fitted, Placement((in_w, in_h), 0, 0, in_w, in_h)
    scale = min(in_w / width, in_h / height)
    new_w = min(in_w, max(1, round(width * scale)))
    new_h = min(in_h, max(1, round(height * scale)))
    x0, y0 = (in_w - new_w) // 2, (in_h - new_h) // 2
    canvas = Image.new("RGB", (in_w, in_h), LETTERBOX_GREY)
    canvas.paste(picture if picture.size == (new_w, new_h) else picture.resize((new_w, new_h), Image.Resampling.BILINEAR), (x0, y0))
    return canvas, Placement((in_w, in_h), x0, y0, new_w, new_h)


class Detector:
    """A detector's runtime: RGB at its input size in, boxes out (`detect`: birds, and people and
    vehicles where the spec names them, each with its `kind`); or a picture of any size fitted to
    the input as `resize` says, boxes normalised to the picture (`detect_picture`, what the
    finder calls for the frame and for every tile).

    Not thread-safe on its own (the lock only keeps a stray second caller from interleaving
    input and invoke), like the Classifier. `last_ms` is the time of the latest detect()
    (input, invoke, decoding), `invokes` how many there were. `runtime` names the runtime
    ("ai-edge-litert", "tflite-runtime" or "onnxruntime"), `engine` is its adapter.
    """

    def __init__(
        self,
        spec: DetectorSpec,
        threads: int = 2,
        score_threshold: float = 0.5,
        iou_threshold: float = 0.5,
        float_input_range: tuple[float, float] | None = None,
        resize: ResizeMode = "auto",
        layout: Layout = "auto",
        input_size: int | None = None,
    ) -> None:
        """`float_input_range`: what pixel values 0..255 become for a float32 or int8 input;
        None picks by output format: yolo, rtdetr, end2end → (0, 1), ssd → (-1, 1). A uint8
        input always takes the raw pixels (its quantisation maps them to what the model wants).
        `resize`: how a picture is fitted to the input, "letterbox" or "stretch"; "auto"
        letterboxes YOLO and end-to-end layouts and stretches SSD and RT-DETR ones (the module
        docstring says why); `self.resize` is the one chosen. `layout`: the output layout, or
        "auto" to identify it by shape (refused where ambiguous). `input_size`: the side of an
        ONNX input whose dimensions are dynamic (None: its metadata, else 640)."""
        if resize not in RESIZE_MODES:
            raise DetectorError(f"resize: expected one of {', '.join(RESIZE_MODES)}, got {resize!r}")
        if layout not in LAYOUTS:
            raise DetectorError(f"layout: expected one of {', '.join(LAYOUTS)}, got {layout!r}")
        self.spec = spec
        self.score_threshold = float(score_threshold)
        self.iou_threshold = float(iou_threshold)
        try:
            self.engine = open_runtime(spec.model_path, threads, input_size)
        except ModelError as error:
            raise DetectorError(str(error)) from None
        self.runtime: str = self.engine.name
        self.input_size = self.engine.input_size  # (width, height) as Pillow wants it
        self.input_dtype = np.dtype(self.engine.input_dtype)
        if self.input_dtype not in (np.uint8, np.int8, np.float32):
            raise DetectorError(f"{spec.model_path}: unsupported input type {self.input_dtype}")
        self._in_scale, self._in_zero = self.engine.input_quantization
        self.layout: str = self._identify_outputs(self.engine.outputs, layout)
        self.output_format: str = "yolo" if self.layout in ("yolov5", "yolov8") else self.layout
        self.input_range = tuple(float_input_range) if float_input_range is not None else DEFAULT_FLOAT_RANGE[self.output_format]
        self.resize: str = AUTO_RESIZE[self.output_format] if resize == "auto" else resize
        self._wanted = np.asarray(sorted(spec.bird_classes | set(spec.other_classes)), dtype=np.int64)
        self._lock = threading.Lock()
        self.last_ms = 0.0
        self.invokes = 0

    @property
    def model_id(self) -> str:
        return self.spec.model_id

    # ---- outputs -------------------------------------------------------------------------

    def _identify_outputs(self, outputs: list[OutputInfo], layout: str) -> str:
        """The layout of the outputs (see the module docstring); remembers which output is what."""
        path, spec = self.spec.model_path, self.spec
        shapes = [o.shape for o in outputs]
        boxes = [i for i, s in enumerate(shapes) if len(s) == 3 and s[0] == 1 and s[2] == 4]
        vectors = [i for i, s in enumerate(shapes) if len(s) == 2 and s[0] == 1 and s[1] > 1]
        counts = [i for i, s in enumerate(shapes) if int(np.prod(s)) == 1]
        found: str | None = None
        if len(outputs) == 4 and len(boxes) == 1 and len(counts) == 1 and len(vectors) == 2 and layout in ("auto", "ssd"):
            n = shapes[boxes[0]][1]
            if all(shapes[v][1] == n for v in vectors):
                self._boxes, self._count = boxes[0], counts[0]
                self._pair = vectors  # classes and scores, in output order until told apart
                self._classes_first: bool | None = self._classes_first_by_name([outputs[v] for v in vectors])
                found = "ssd"
        elif len(outputs) == 3 and len(boxes) == 1 and len(vectors) == 2 and layout in ("auto", "rtdetr"):
            n = shapes[boxes[0]][1]
            if all(shapes[v][1] == n for v in vectors):
                self._boxes, self._pair = boxes[0], vectors
                self._classes_first = self._labels_first([outputs[v] for v in vectors])
                self._rtdetr_split = True
                found = "rtdetr"
        elif len(outputs) == 1 and len(shapes[0]) == 3 and shapes[0][0] == 1:
            found = self._single_tensor_layout(shapes[0], layout)
            if found == "yolov8" and layout == "auto" and not self._channels_first and self._says_rtdetr():
                found = "rtdetr"  # Ultralytics' RT-DETR: the same decoding, trained stretched
        if found is None:
            hint = ""
            if len(outputs) == 1 and len(shapes[0]) == 2:
                hint = f" (one output {list(shapes[0])}: that is an image classifier, not a detector)"
            wanted = "" if layout == "auto" else f" (detector.layout = {layout!r} was asked for)"
            raise DetectorError(
                f"{path}: not a detector this edge can read{hint}{wanted}: outputs "
                + ", ".join(f"{o.name!r} {list(o.shape)}" for o in outputs)
                + "; expected TFLite_Detection_PostProcess's four (boxes [1,N,4], classes [1,N], scores [1,N], "
                "count [1]), RT-DETRv2's three (labels [1,Q], boxes [1,Q,4], scores [1,Q]), or one tensor: "
                f"YOLO [1,4+C,N], [1,N,4+C] or [1,N,5+C], end-to-end [1,N,6], with C = {spec.num_classes} "
                f"classes ({spec.labels_source}, label offset {spec.label_offset})"
            )
        return found

    def _says_rtdetr(self) -> bool:
        """An Ultralytics export whose metadata names an RT-DETR model ("Ultralytics rtdetr-l model ...")."""
        metadata = getattr(self.engine, "metadata", None) or {}
        text = " ".join(str(metadata.get(key, "")) for key in ("description", "model", "arch")).casefold()
        return "rtdetr" in text.replace("-", "").replace("_", "")

    def _single_tensor_layout(self, shape: tuple[int, ...], layout: str) -> str | None:
        """The layout of one [1, a, b] tensor; sets the decoding's axis and objectness."""
        classes = self.spec.num_classes
        self._rtdetr_split = False
        fits: dict[str, tuple[bool, bool]] = {}  # layout → (channels_first, objectness)
        yolo = {axis: shape[axis] - classes for axis in (1, 2) if shape[axis] - classes in (4, 5)}
        if yolo:
            if len(yolo) == 2:  # both axes could be channels: the channel axis is the short one
                axis = 1 if shape[1] <= shape[2] else 2
            else:
                axis = next(iter(yolo))
            fits["yolov5" if yolo[axis] == 5 else "yolov8"] = (axis == 1, yolo[axis] == 5)
        if shape[2] == 6:
            fits["end2end"] = (False, False)
        if layout == "auto":
            if len(fits) > 1:
                readings = " or ".join(sorted(fits))
                raise DetectorError(
                    f"detector.layout: {self.spec.model_path}: output {list(shape)} with C = {classes} classes "
                    f"reads as {readings}; set [detector] layout to the one the model was exported with "
                    "(\"end2end\": rows x1, y1, x2, y2, score, class with NMS inside; \"yolov8\": cx, cy, w, h "
                    "then class scores; \"yolov5\": with objectness)")
            if not fits:
                return None
            layout = next(iter(fits))
        elif layout == "yolov8":
            axes = [a for a in (1, 2) if shape[a] - classes == 4]
            if not axes:
                return None
            fits[layout] = (axes[0] == 1 if len(axes) == 1 else shape[1] <= shape[2], False)
        elif layout == "rtdetr":  # Ultralytics' RT-DETR: [1, Q, 4+C], channels last, final scores
            if shape[2] - classes != 4:
                return None
            fits[layout] = (False, False)
        elif layout == "yolov5":
            if shape[2] - classes != 5 and shape[1] - classes != 5:
                return None
            fits[layout] = (shape[2] - classes != 5, True)
        elif layout not in fits:
            return None
        self._channels_first, self._objectness = fits[layout]
        return layout

    @staticmethod
    def _classes_first_by_name(vectors: list[OutputInfo]) -> bool | None:
        """True/False when the names say which of the two [1,N] outputs is classes, else None."""
        first, second = (v.name.casefold() for v in vectors)
        for word, first_is_classes in (("class", True), ("label", True), ("score", False)):
            if (word in first) != (word in second):
                return first_is_classes if word in first else not first_is_classes
        return None

    @classmethod
    def _labels_first(cls, vectors: list[OutputInfo]) -> bool | None:
        """RT-DETRv2's labels are int64, its scores float; else the names; else the values."""
        integral = [np.issubdtype(v.dtype, np.integer) for v in vectors]
        if integral[0] != integral[1]:
            return integral[0]
        return cls._classes_first_by_name(vectors)

    def _ssd_op_order(self) -> bool:
        """TFLite_Detection_PostProcess emits boxes, classes, scores, count: ":1" is classes."""
        names = [self.engine.outputs[v].name for v in self._pair]
        return not (names[0].endswith(":2") and names[1].endswith(":1"))

    # ---- input ---------------------------------------------------------------------------

    def to_input(self, rgb: np.ndarray) -> np.ndarray:
        """Raw RGB uint8 (H, W, 3) → the input batch (NHWC; the ONNX runtime transposes): uint8
        as is; float32 as the pixels mapped linearly onto `input_range`; int8 as those values
        quantised with the model's scale and zero point (pixel - 128 when the model gives no scale)."""
        batch = np.asarray(rgb, dtype=np.uint8)[np.newaxis, ...]
        if self.input_dtype == np.uint8:
            return np.ascontiguousarray(batch)
        low, high = self.input_range
        real = batch.astype(np.float32) * np.float32((high - low) / 255.0) + np.float32(low)
        if self.input_dtype == np.float32:
            return real
        if not self._in_scale:
            return (batch.astype(np.int16) - 128).astype(np.int8)
        quantised = np.round(real / np.float32(self._in_scale) + self._in_zero)
        return np.clip(quantised, -128, 127).astype(np.int8)

    # ---- detection -----------------------------------------------------------------------

    def detect(self, rgb: np.ndarray) -> list[Box]:
        """Boxes scoring >= score_threshold, clipped to 0..1: the birds first (best first, one
        per bird: class-agnostic NMS over the bird classes), then people and vehicles where the
        spec names them (each kind merged apart). `rgb`: uint8 (H, W, 3) at input_size."""
        width, height = self.input_size
        if np.shape(rgb) != (height, width, 3):
            raise ValueError(f"detector input must be RGB {width}x{height} (H, W, 3), got {list(np.shape(rgb))}")
        started = time.perf_counter()
        with self._lock:
            outputs = self.engine.run(self.to_input(rgb))
            self.invokes += 1
        if self.output_format == "ssd":
            boxes, scores, classes = self._ssd_candidates(outputs)
        elif self.output_format == "end2end":
            boxes, scores, classes = self._end2end_candidates(outputs[0])
        elif self.output_format == "rtdetr" and self._rtdetr_split:
            boxes, scores, classes = self._rtdetr_candidates(outputs)
        else:
            boxes, scores, classes = self._yolo_candidates(outputs[0])
        result = self._finish(boxes, scores, classes)
        self.last_ms = (time.perf_counter() - started) * 1000.0
        return result

    def fit(self, picture: Image.Image) -> tuple[Image.Image, Placement]:
        """`picture` fitted to the input as `self.resize` says (fit_input): what detect_picture
        runs on, for a caller that also looks at it (the finder judges the night on it)."""
        return fit_input(picture, self.input_size, self.resize == "letterbox")

    def detect_picture(self, picture: Image.Image, fitted: tuple[Image.Image, Placement] | None = None) -> list[Box]:
        """Boxes of an RGB picture of any size, normalised to it (see `detect`): fitted to
        the input by `fit_input` as `self.resize` says (or `fitted`, what `fit(picture)` gave),
        the boxes mapped back by its Placement."""
        image, placement = fitted if fitted is not None else self.fit(picture)
        return placement.to_picture(self.detect(np.asarray(image, dtype=np.uint8)))

    def _normalised(self, xyxy: np.ndarray) -> np.ndarray:
        """[N, 4] x1, y1, x2, y2 (input pixels or fractions, by magnitude) → ymin, xmin, ymax, xmax
        as fractions of the input."""
        xyxy = xyxy.astype(np.float64)
        if len(xyxy) and float(np.max(np.abs(xyxy))) > PIXEL_COORDINATES_ABOVE:
            width, height = self.input_size
            xyxy = xyxy / np.asarray([width, height, width, height], dtype=np.float64)
        return xyxy[:, [1, 0, 3, 2]]

    def _ssd_candidates(self, outputs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        boxes = outputs[self._boxes].reshape(-1, 4)
        first, second = (outputs[v].reshape(-1) for v in self._pair)
        count = round(float(outputs[self._count].reshape(-1)[0]))
        count = max(0, min(count, len(boxes)))
        first, second, boxes = first[:count], second[:count], boxes[:count]
        classes_first = self._classes_first
        if classes_first is None:
            told = _tell_classes(first, second)
            if told is None:
                classes_first = self._ssd_op_order()
            else:
                classes_first = self._classes_first = told  # the values settled it: keep it
        classes, scores = (first, second) if classes_first else (second, first)
        return boxes, scores, np.rint(classes).astype(np.int64)

    def _rtdetr_candidates(self, outputs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """RT-DETRv2's deploy outputs: labels, boxes x1 y1 x2 y2 (input pixels: the runtime fed
        the input size as the original size), scores; no NMS was needed by the model."""
        first, second = (outputs[v].reshape(-1) for v in self._pair)
        classes_first = self._classes_first
        if classes_first is None:
            told = _tell_classes(first, second)
            classes_first = True if told is None else told
        labels, scores = (first, second) if classes_first else (second, first)
        return self._normalised(outputs[self._boxes].reshape(-1, 4)), scores, np.rint(labels).astype(np.int64)

    def _end2end_candidates(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """[1, N, 6] rows x1, y1, x2, y2, score, class, NMS done inside the model."""
        rows = raw.reshape(-1, 6)
        return self._normalised(rows[:, :4]), rows[:, 4], np.rint(rows[:, 5]).astype(np.int64)

    def _yolo_candidates(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        raw = raw[0]
        pred = raw.T if self._channels_first else raw  # (N, channels)
        cx, cy, w, h = (pred[:, i] for i in range(4))
        class_scores = pred[:, 5:] * pred[:, 4:5] if self._objectness else pred[:, 4:]
        wanted = self._wanted[self._wanted < class_scores.shape[1]]
        if len(wanted) == 0 or len(pred) == 0:
            return np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64)
        wanted_scores = class_scores[:, wanted]
        best = np.argmax(wanted_scores, axis=1)
        scores = wanted_scores[np.arange(len(pred)), best]
        if float(np.max(np.abs(pred[:, :4]))) > PIXEL_COORDINATES_ABOVE:
            width, height = self.input_size
            cx, w, cy, h = cx / width, w / width, cy / height, h / height
        boxes = np.stack([cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2], axis=1)
        return boxes, scores, wanted[best]

    def _finish(self, boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray) -> list[Box]:
        keep = (scores >= self.score_threshold) & np.isin(classes, self._wanted)
        boxes = np.clip(boxes[keep].astype(np.float64), 0.0, 1.0)
        scores, classes = scores[keep].astype(np.float64), classes[keep]
        # A box clipped to nothing (wholly outside the image) cannot be a bird to crop.
        real = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        boxes, scores, classes = boxes[real], scores[real], classes[real]
        kinds = np.asarray([self.spec.kind_of(int(c)) for c in classes], dtype=object)
        found: list[Box] = []
        for kind in ("bird", *OTHER_KINDS):
            members = np.flatnonzero(kinds == kind) if len(kinds) else np.zeros(0, np.int64)
            if not len(members):
                continue
            order = nms(boxes[members], scores[members], self.iou_threshold)
            for i in order:
                ymin, xmin, ymax, xmax = (float(v) for v in boxes[members[i]])  # boxes are [N, 4]
                found.append(Box(ymin, xmin, ymax, xmax, score=float(scores[members[i]]),
                                 class_index=int(classes[members[i]]), label=self.spec.label_of(int(classes[members[i]])),
                                 kind=kind))
        return found


def _tell_classes(first: np.ndarray, second: np.ndarray) -> bool | None:
    """True when `first` holds the classes and `second` the scores, False the other way round,
    None when the values cannot tell (classes are whole numbers, scores fractions in 0..1)."""
    if len(first) == 0:
        return None

    def integral(values: np.ndarray) -> bool:
        return bool(np.all(np.abs(values - np.rint(values)) < 1e-6))

    def probability(values: np.ndarray) -> bool:
        return bool(np.all((values >= 0.0) & (values <= 1.0)))

    a_int, b_int = integral(first), integral(second)
    if a_int != b_int:
        return a_int if (probability(second) if a_int else probability(first)) else None
    if a_int and b_int:  # both whole: scores cannot exceed 1
        a_big, b_big = bool(np.any(first > 1)), bool(np.any(second > 1))
        if a_big != b_big:
            return a_big
    return None


def load_detector(
    path: Path,
    labels: Path | None = None,
    label_offset: int | None = None,
    bird_labels: Sequence[str] = ("bird",),
    threads: int = 2,
    score_threshold: float = 0.5,
    iou_threshold: float = 0.5,
    resize: ResizeMode = "auto",
    layout: Layout = "auto",
) -> Detector:
    """resolve_detector + Detector in one call (the CLI's and the benchmarks' convenience)."""
    return Detector(resolve_detector(path, labels, label_offset, bird_labels), threads, score_threshold, iou_threshold,
                    resize=resize, layout=layout)
