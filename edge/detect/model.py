"""The bird detector: a TFLite object detector, run with the classifier's runtime (ai-edge-litert,
else tflite-runtime; never TensorFlow), reduced to the boxes of the classes that are birds.

Two kinds of detector exist in the wild and both are read here:

- "ssd": the TF object-detection API's exports (SSD MobileNet, EfficientDet-Lite), whose last op
  is TFLite_Detection_PostProcess: boxes [1,N,4] (ymin, xmin, ymax, xmax, normalised), classes
  [1,N], scores [1,N], count [1], NMS already done. The four outputs are found by shape, not by
  index (EfficientDet-Lite lists them in another order than SSD MobileNet): boxes end in 4, count
  has one value, and of the two [1,N] tensors the classes are the integral one (or the one whose
  name says "class"/"score", or TFLite_Detection_PostProcess's ":1"/":2" when the values cannot
  tell, e.g. all zero).
- "yolo": one raw tensor, [1,4+C,N] (YOLOv8, MegaDetector v6) or [1,N,4+C], or [1,N,5+C]
  (YOLOv5, with objectness): boxes as cx, cy, w, h, in input pixels or normalised (told apart by
  magnitude), then per-class scores. C is the number of labels (after the label offset). NMS is
  done here.

Either way only the bird classes count, and boxes of different bird classes are merged by one
class-agnostic NMS (one bird, one box, whatever two bird classes the model hesitated between).

The picture is fitted to the input the way the detector was trained (`fit_input`, the `resize`
setting): YOLO-family models (Ultralytics, MegaDetector) are trained on letterboxed input, the
picture scaled whole with its aspect ratio kept and padded with grey 114, centred. Stretched to
a square input instead, the birds of a 16:9 frame come out 1.78 times as tall for their width
as the model ever saw them, and a YOLOv5n found 4 birds stretched where it found 7 letterboxed
on the same frames (issue 21). The TF
object-detection API's SSDs were trained on stretched input (the COCO SSD MobileNet resizes to
300x300 regardless of aspect), so they keep it. "auto" picks by the output layout. Boxes come
back normalised to the picture, the padding and the scale undone exactly.

Labels and the label offset: the TF model zoo numbers classes from 0 while its label files start
with a "???" (or "background") line, so class c is line c + 1 (COCO class 15 → line 16 →
"bird"). `resolve_detector` applies that offset once: `DetectorSpec.bird_classes` are the
indices as the model emits them.
"""

from __future__ import annotations

import difflib
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from edge.classify.labels import Label, LabelError, embedded_labels, load_labels_file
from edge.classify.model import ModelError, load_interpreter_class, sha256_file
from edge.classify.runtime_notices import runtime_notices_hidden
from edge.detect.boxes import nms

# A first label line meaning "class numbers start at 1 in this file" (TF model zoo convention).
BACKGROUND_NAMES = frozenset({"???", "background", "__background__"})
LABEL_FILES = ("labels.txt", "labelmap.txt")
# The float input each kind of detector was trained on, when the model says nothing: YOLO
# exports (Ultralytics, MegaDetector) divide pixels by 255; the TF object-detection API's SSD
# and EfficientDet float exports map them to -1..1.
DEFAULT_FLOAT_RANGE = {"yolo": (0.0, 1.0), "ssd": (-1.0, 1.0)}
# Box coordinates above this are pixels of the input, not fractions of it.
PIXEL_COORDINATES_ABOVE = 2.0
ResizeMode = Literal["auto", "letterbox", "stretch"]
RESIZE_MODES: tuple[str, ...] = ("auto", "letterbox", "stretch")
# What "auto" fits each kind of detector's input with: what it was trained on (module docstring).
AUTO_RESIZE = {"yolo": "letterbox", "ssd": "stretch"}
# Ultralytics' letterbox padding (and MegaDetector's, which uses it): mid grey.
LETTERBOX_GREY = (114, 114, 114)


class DetectorError(ModelError):
    """A detector that cannot be loaded, whose labels do not fit, or whose outputs are unusable.
    A ModelError, so that every place that refuses a bad model (start, reload) refuses it too."""


@dataclass(frozen=True)
class DetectorSpec:
    """Where a detector's parts are and which of its classes are birds, before any interpreter."""

    tflite_path: Path
    labels: list[str]
    label_offset: int  # label of class c is labels[c + label_offset]
    bird_labels: frozenset[str]  # casefolded names counted as "a bird"
    bird_classes: frozenset[int]  # class indices as the model emits them (offset applied)
    model_id: str  # f"{stem}-{sha256[:8]}"
    tflite_sha256: str
    labels_source: str

    def label_of(self, class_index: int) -> str:
        """The label of a class index as the model emits it ("class N" when out of range)."""
        line = class_index + self.label_offset
        return self.labels[line] if 0 <= line < len(self.labels) else f"class {class_index}"

    @property
    def num_classes(self) -> int:
        """Classes the model can emit: the labels after the offset lines."""
        return len(self.labels) - self.label_offset


def _find_tflite(path: Path) -> Path:
    if path.is_dir():
        candidates = sorted(path.glob("*.tflite"))
        if len(candidates) != 1:
            found = ", ".join(c.name for c in candidates) or "none"
            raise DetectorError(f"{path}: expected exactly one .tflite in the detector folder, found {found}")
        return candidates[0]
    if path.is_file():
        return path
    raise DetectorError(f"{path}: detector not found (a .tflite file or a folder holding one)")


def _read_labels(tflite: Path, labels: Path | None) -> tuple[list[Label], str]:
    """Explicit file, else labels.txt / labelmap.txt beside the model, else embedded in it."""
    try:
        if labels is not None:
            return load_labels_file(Path(labels)), str(labels)
        for name in LABEL_FILES:
            candidate = tflite.parent / name
            if candidate.is_file():
                return load_labels_file(candidate), str(candidate)
        found = embedded_labels(tflite)
    except LabelError as error:
        raise DetectorError(str(error)) from None
    if found is None:
        raise DetectorError(
            f"{tflite}: no labels: no {' or '.join(LABEL_FILES)} beside it and none embedded in the .tflite; "
            "give the labels file"
        )
    return found[1], f"{tflite}!{found[0]}"


def resolve_detector(
    path: Path,
    labels: Path | None = None,
    label_offset: int | None = None,
    bird_labels: Sequence[str] = ("bird",),
) -> DetectorSpec:
    """Find the detector's .tflite and labels and decide which class indices are birds.

    `label_offset` None: 1 when the first label is "???", "background" or "__background__" (the
    TF model zoo's class + 1), else 0. `bird_labels`: names (any case) of the classes counted as
    a bird; MegaDetector users give ("animal",). Raises DetectorError naming a bird label the
    labels lack, with the closest labels it has.
    """
    tflite = _find_tflite(Path(path))
    label_list, source = _read_labels(tflite, labels)
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
    for want in wanted:
        lines = [
            line for line, label in enumerate(label_list)
            if want in {n.casefold() for n in (label.name, label.scientific_name, label.common_name) if n}
        ]
        if not lines:
            close = difflib.get_close_matches(want, [n.casefold() for n in names], n=5, cutoff=0.5)
            hint = f"; close matches: {', '.join(close)}" if close else ""
            raise DetectorError(f"bird label {want!r} is not among the {len(names)} labels of {source}{hint}")
        usable = [line - label_offset for line in lines if line >= label_offset]
        if not usable:
            raise DetectorError(f"bird label {want!r} is the background line of {source} (label offset {label_offset})")
        classes.update(usable)
    digest = sha256_file(tflite)
    return DetectorSpec(
        tflite_path=tflite,
        labels=names,
        label_offset=label_offset,
        bird_labels=frozenset(wanted),
        bird_classes=frozenset(classes),
        model_id=f"{tflite.stem}-{digest[:8]}",
        tflite_sha256=digest,
        labels_source=source,
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
                mapped.append(Box(ymin, xmin, ymax, xmax, box.score, box.class_index, box.label))
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
        fitted = picture if picture.size == tuple(input_size) else picture.resize(tuple(input_size), Image.BILINEAR)
        return fitted, Placement((in_w, in_h), 0, 0, in_w, in_h)
    scale = min(in_w / width, in_h / height)
    new_w = min(in_w, max(1, round(width * scale)))
    new_h = min(in_h, max(1, round(height * scale)))
    x0, y0 = (in_w - new_w) // 2, (in_h - new_h) // 2
    canvas = Image.new("RGB", (in_w, in_h), LETTERBOX_GREY)
    canvas.paste(picture if picture.size == (new_w, new_h) else picture.resize((new_w, new_h), Image.BILINEAR), (x0, y0))
    return canvas, Placement((in_w, in_h), x0, y0, new_w, new_h)


def _shape(detail: dict[str, Any]) -> tuple[int, ...]:
    return tuple(int(d) for d in detail["shape"])


def _describe(details: list[dict[str, Any]]) -> str:
    return ", ".join(f"{d['name']!r} {list(_shape(d))}" for d in details)


class Detector:
    """A detector's interpreter: RGB at its input size in, bird boxes out (`detect`); or a
    picture of any size fitted to the input as `resize` says, boxes normalised to the picture
    (`detect_picture`, what the finder calls for the frame and for every tile).

    Not thread-safe on its own (the lock only keeps a stray second caller from interleaving
    set_tensor and invoke), like the Classifier. `last_ms` is the time of the latest detect()
    (input, invoke, decoding), `invokes` how many there were.
    """

    def __init__(
        self,
        spec: DetectorSpec,
        threads: int = 2,
        score_threshold: float = 0.5,
        iou_threshold: float = 0.5,
        float_input_range: tuple[float, float] | None = None,
        resize: ResizeMode = "auto",
    ) -> None:
        """`float_input_range`: what pixel values 0..255 become for a float32 or int8 input;
        None picks by output format: yolo → (0, 1), ssd → (-1, 1). A uint8 input always takes
        the raw pixels (its quantisation maps them to what the model wants). `resize`: how a
        picture is fitted to the input, "letterbox" or "stretch"; "auto" letterboxes YOLO
        layouts and stretches SSD ones (the module docstring says why); `self.resize` is the
        one chosen."""
        if resize not in RESIZE_MODES:
            raise DetectorError(f"resize: expected one of {', '.join(RESIZE_MODES)}, got {resize!r}")
        self.spec = spec
        self.score_threshold = float(score_threshold)
        self.iou_threshold = float(iou_threshold)
        path = spec.tflite_path
        try:
            interpreter_class, self.runtime = load_interpreter_class()
        except ModelError as error:
            raise DetectorError(str(error)) from None
        try:
            with runtime_notices_hidden():  # the runtime's XNNPACK INFO line
                self._interpreter = interpreter_class(model_path=str(path), num_threads=threads)
                self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as error:
            raise DetectorError(f"{path}: the TFLite runtime cannot load it: {error}") from None
        inputs = self._interpreter.get_input_details()
        outputs = self._interpreter.get_output_details()
        if len(inputs) != 1:
            raise DetectorError(f"{path}: expected one input tensor, got {len(inputs)}")
        self._input = inputs[0]
        shape = _shape(self._input)
        if len(shape) != 4 or shape[0] != 1 or shape[3] != 3:
            raise DetectorError(f"{path}: input shape {list(shape)} is not [1, height, width, 3]")
        self.input_size = (shape[2], shape[1])  # (width, height) as Pillow wants it
        self.input_dtype = np.dtype(self._input["dtype"])
        if self.input_dtype not in (np.uint8, np.int8, np.float32):
            raise DetectorError(f"{path}: unsupported input type {self.input_dtype}")
        self._in_scale, self._in_zero = self._input["quantization"]
        self.output_format = self._identify_outputs(outputs)
        self.input_range = tuple(float_input_range) if float_input_range is not None else DEFAULT_FLOAT_RANGE[self.output_format]
        self.resize: str = AUTO_RESIZE[self.output_format] if resize == "auto" else resize
        self._lock = threading.Lock()
        self.last_ms = 0.0
        self.invokes = 0

    @property
    def model_id(self) -> str:
        return self.spec.model_id

    # ---- outputs -------------------------------------------------------------------------

    def _identify_outputs(self, outputs: list[dict[str, Any]]) -> str:
        path, spec = self.spec.tflite_path, self.spec
        shapes = [_shape(d) for d in outputs]
        boxes = [d for d, s in zip(outputs, shapes) if len(s) == 3 and s[0] == 1 and s[2] == 4]
        counts = [d for d, s in zip(outputs, shapes) if int(np.prod(s)) == 1]
        vectors = [d for d, s in zip(outputs, shapes) if len(s) == 2 and s[0] == 1 and s[1] > 1]
        if len(outputs) == 4 and len(boxes) == 1 and len(counts) == 1 and len(vectors) == 2:
            n = _shape(boxes[0])[1]
            if all(_shape(v)[1] == n for v in vectors):
                self._boxes, self._count = boxes[0], counts[0]
                self._pair = vectors  # classes and scores, in output order until told apart
                self._classes_first: bool | None = self._classes_first_by_name(vectors)
                return "ssd"
        if len(outputs) == 1 and len(shapes[0]) == 3 and shapes[0][0] == 1:
            layout = self._yolo_layout(shapes[0])
            if layout is not None:
                self._yolo, (self._channels_first, self._objectness) = outputs[0], layout
                return "yolo"
        hint = ""
        if len(outputs) == 1 and len(shapes[0]) == 2:
            hint = f" (one output {list(shapes[0])}: that is an image classifier, not a detector)"
        raise DetectorError(
            f"{path}: not a detector this edge can read{hint}: outputs {_describe(outputs)}; expected "
            "TFLite_Detection_PostProcess's four (boxes [1,N,4], classes [1,N], scores [1,N], count [1]) "
            f"or one YOLO tensor [1,4+C,N], [1,N,4+C] or [1,N,5+C] with C = {spec.num_classes} classes "
            f"({spec.labels_source}, label offset {spec.label_offset})"
        )

    @staticmethod
    def _classes_first_by_name(vectors: list[dict[str, Any]]) -> bool | None:
        """True/False when the names say which of the two [1,N] outputs is classes, else None."""
        first, second = (str(v["name"]).casefold() for v in vectors)
        for word, first_is_classes in (("class", True), ("score", False)):
            if (word in first) != (word in second):
                return first_is_classes if word in first else not first_is_classes
        return None

    def _ssd_op_order(self) -> bool:
        """TFLite_Detection_PostProcess emits boxes, classes, scores, count: ":1" is classes."""
        names = [str(v["name"]) for v in self._pair]
        return not (names[0].endswith(":2") and names[1].endswith(":1"))

    def _yolo_layout(self, shape: tuple[int, ...]) -> tuple[bool, bool] | None:
        """(channels_first, has_objectness) for a [1, a, b] tensor, or None when neither axis is
        4 + C or 5 + C channels for the C classes the labels give."""
        classes = self.spec.num_classes
        fits = {axis: shape[axis] - classes for axis in (1, 2) if shape[axis] - classes in (4, 5)}
        if not fits:
            return None
        if len(fits) == 2:  # both axes could be channels: the channel axis is the short one
            axis = 1 if shape[1] <= shape[2] else 2
        else:
            axis = next(iter(fits))
        return axis == 1, fits[axis] == 5

    def _read(self, detail: dict[str, Any]) -> np.ndarray:
        raw = self._interpreter.get_tensor(detail["index"])
        scale, zero = detail["quantization"]
        if np.dtype(detail["dtype"]) in (np.uint8, np.int8) and scale:
            return (raw.astype(np.float32) - zero) * scale
        return raw.astype(np.float32)

    # ---- input ---------------------------------------------------------------------------

    def to_input(self, rgb: np.ndarray) -> np.ndarray:
        """Raw RGB uint8 (H, W, 3) → the input tensor: uint8 as is; float32 as the pixels mapped
        linearly onto `input_range`; int8 as those values quantised with the model's scale and
        zero point (pixel - 128 when the model gives no scale)."""
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
        """Bird boxes scoring >= score_threshold, best first, clipped to 0..1, one per bird
        (class-agnostic NMS over the bird classes). `rgb`: uint8 (H, W, 3) at input_size."""
        width, height = self.input_size
        if np.shape(rgb) != (height, width, 3):
            raise ValueError(f"detector input must be RGB {width}x{height} (H, W, 3), got {list(np.shape(rgb))}")
        started = time.perf_counter()
        with self._lock:
            self._interpreter.set_tensor(self._input["index"], self.to_input(rgb))
            self._interpreter.invoke()
            if self.output_format == "ssd":
                boxes, scores, classes = self._ssd_candidates()
            else:
                boxes, scores, classes = self._yolo_candidates()
            self.invokes += 1
        result = self._finish(boxes, scores, classes)
        self.last_ms = (time.perf_counter() - started) * 1000.0
        return result

    def detect_picture(self, picture: Image.Image) -> list[Box]:
        """Bird boxes of an RGB picture of any size, normalised to it (see `detect`): fitted to
        the input by `fit_input` as `self.resize` says, the boxes mapped back by its Placement."""
        fitted, placement = fit_input(picture, self.input_size, self.resize == "letterbox")
        return placement.to_picture(self.detect(np.asarray(fitted, dtype=np.uint8)))

    def _ssd_candidates(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        boxes = self._read(self._boxes).reshape(-1, 4)
        first, second = (self._read(v).reshape(-1) for v in self._pair)
        count = round(float(self._read(self._count).reshape(-1)[0]))
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

    def _yolo_candidates(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        raw = self._read(self._yolo)[0]
        pred = raw.T if self._channels_first else raw  # (N, channels)
        cx, cy, w, h = (pred[:, i] for i in range(4))
        class_scores = pred[:, 5:] * pred[:, 4:5] if self._objectness else pred[:, 4:]
        birds = np.asarray(sorted(c for c in self.spec.bird_classes if c < class_scores.shape[1]), dtype=np.int64)
        if len(birds) == 0 or len(pred) == 0:
            return np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64)
        bird_scores = class_scores[:, birds]
        best = np.argmax(bird_scores, axis=1)
        scores = bird_scores[np.arange(len(pred)), best]
        if float(np.max(np.abs(pred[:, :4]))) > PIXEL_COORDINATES_ABOVE:
            width, height = self.input_size
            cx, w, cy, h = cx / width, w / width, cy / height, h / height
        boxes = np.stack([cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2], axis=1)
        return boxes, scores, birds[best]

    def _finish(self, boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray) -> list[Box]:
        keep = (scores >= self.score_threshold) & np.isin(classes, list(self.spec.bird_classes))
        boxes = np.clip(boxes[keep].astype(np.float64), 0.0, 1.0)
        scores, classes = scores[keep].astype(np.float64), classes[keep]
        # A box clipped to nothing (wholly outside the image) cannot be a bird to crop.
        real = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        boxes, scores, classes = boxes[real], scores[real], classes[real]
        order = nms(boxes, scores, self.iou_threshold) if len(boxes) else []
        return [
            Box(*(float(v) for v in boxes[i]), score=float(scores[i]), class_index=int(classes[i]),
                label=self.spec.label_of(int(classes[i])))
            for i in order
        ]


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
) -> Detector:
    """resolve_detector + Detector in one call (the CLI's and the benchmarks' convenience)."""
    return Detector(resolve_detector(path, labels, label_offset, bird_labels), threads, score_threshold, iou_threshold,
                    resize=resize)
