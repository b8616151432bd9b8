"""The classifier: a TFLite model run with ai-edge-litert, or tflite-runtime where that is all
there is (Raspberry Pi OS with Python 3.11 and NumPy 1.x). Never TensorFlow.

A model is a trainer bundle folder (model.tflite + labels.txt + manifest.json) or a bare
.tflite with its labels embedded or in a separate file. Input and output types and their
quantisation are read from the interpreter, not assumed, so uint8, int8 and float models all
work: the model's input is always raw RGB 0..255 (normalisation lives inside the model).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.classify.labels import Label, LabelError, embedded_labels, load_labels_file, with_taxonomy
from edge.classify.runtime_notices import runtime_notices_hidden

BUNDLE_FORMAT = "trailcam-bundle"
RUNTIME_ENV = "TRAILCAM_TFLITE_RUNTIME"  # "ai-edge-litert" | "tflite-runtime": force one (benchmarks, tests)


class ModelError(Exception):
    """A model that cannot be loaded or does not fit its labels."""


def load_interpreter_class() -> tuple[type, str]:
    """ai_edge_litert's Interpreter, else tflite_runtime's; names which one was found."""
    wanted = os.environ.get(RUNTIME_ENV, "")
    if wanted not in ("", "ai-edge-litert", "tflite-runtime"):
        raise ModelError(f"{RUNTIME_ENV}={wanted!r}: expected 'ai-edge-litert' or 'tflite-runtime'")
    if wanted in ("", "ai-edge-litert"):
        try:
            from ai_edge_litert.interpreter import Interpreter

            return Interpreter, "ai-edge-litert"
        except ImportError:
            if wanted:
                raise ModelError("ai-edge-litert is not installed (pip install ai-edge-litert)") from None
    try:
        from tflite_runtime.interpreter import Interpreter

        return Interpreter, "tflite-runtime"
    except ImportError:
        raise ModelError(
            "no TFLite runtime: install ai-edge-litert (pip install 'trailcam[edge]') or, on "
            "Raspberry Pi OS, tflite-runtime (pip install 'trailcam[edge-tflite]')"
        ) from None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class ModelSpec:
    """Where a model's parts are and what it is called, before any interpreter exists."""

    tflite_path: Path
    labels: list[Label]
    labels_source: str
    model_id: str
    no_bird_label: str | None
    manifest: dict[str, Any] | None = None
    tflite_sha256: str = ""

    @property
    def model_version(self) -> str | None:
        """Which build of the model this is, for MQTT payloads: a trainer bundle's manifest
        `created_at` (ISO UTC: readable and ordered), else the .tflite's sha256[:12] (a
        third-party model such as AIY carries no version of its own; its content is one)."""
        created = (self.manifest or {}).get("created_at")
        if created:
            return str(created)
        return self.tflite_sha256[:12] or None

    @property
    def scientific_names(self) -> dict[str, str]:
        return {label.name: label.scientific_name for label in self.labels if label.scientific_name}


def _read_manifest(folder: Path) -> dict[str, Any] | None:
    path = folder / "manifest.json"
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ModelError(f"{path}: cannot read the bundle manifest: {error}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        raise ModelError(f"{path}: not a trailcam bundle manifest (format != {BUNDLE_FORMAT!r})")
    if manifest.get("format_version") != 1:
        raise ModelError(f"{path}: unsupported bundle format_version {manifest.get('format_version')!r} (this edge reads 1)")
    return manifest


# Labels that mean "no bird" when nothing is configured (AIY's embedded file says "None",
# its labelmap.csv "background", TF's object-detection style "__background__").
NO_BIRD_NAMES = frozenset({"background", "__background__", "none", "no bird", "no_bird", "nobird", "empty"})


def find_no_bird_label(labels: list[Label], wanted: str | int | None, manifest: dict[str, Any] | None, source: str) -> str | None:
    """The report name of the no-bird class: configured (label or output index), else the
    manifest's, else a conventional name from NO_BIRD_NAMES; None when the model has none."""
    def lookup(value: str | int, origin: str) -> str:
        if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
            index = int(value)
            if not 0 <= index < len(labels):
                raise ModelError(f"{origin}: output index {index} is out of range (the model has {len(labels)} labels)")
            return labels[index].name
        folded = value.strip().casefold()
        for label in labels:
            if folded in {n.casefold() for n in (label.name, label.scientific_name, label.common_name) if n}:
                return label.name
        raise ModelError(f"{origin}: {value!r} is not one of the model's labels ({source}); give the label or its output index")

    if wanted is not None:
        return lookup(wanted, "model.no_bird_label")
    if manifest is not None and manifest.get("no_bird_label") not in (None, ""):
        return lookup(manifest["no_bird_label"], "manifest.json no_bird_label")
    for label in labels:
        if label.name.casefold() in NO_BIRD_NAMES:
            return label.name
    return None


def resolve_model(
    path: Path, labels_path: Path | None = None, no_bird_label: str | int | None = None
) -> ModelSpec:
    """Find the .tflite, its labels and its id; verify the bundle checksum.

    Labels: an explicit file wins; else a bundle's labels file; else the label file embedded
    in the .tflite; else `labels.txt`/`labelmap.csv` beside it. The no-bird label: explicit,
    else the manifest's, else a label literally called "background" (AIY's index 964).
    """
    path = Path(path)
    manifest = None
    if path.is_dir():
        folder = path
        manifest = _read_manifest(folder)
        tflite = folder / "model.tflite"
        if not tflite.is_file():
            candidates = sorted(folder.glob("*.tflite"))
            if len(candidates) != 1:
                raise ModelError(f"{folder}: expected model.tflite (or exactly one .tflite) in the folder")
            tflite = candidates[0]
    elif path.is_file():
        folder, tflite = path.parent, path
    else:
        raise ModelError(f"{path}: model not found (a bundle folder or a .tflite file)")

    digest = sha256_file(tflite)
    if manifest and manifest.get("tflite_sha256") and manifest["tflite_sha256"] != digest:
        raise ModelError(
            f"{tflite}: sha256 {digest[:12]}… does not match the manifest's tflite_sha256 "
            f"{str(manifest['tflite_sha256'])[:12]}…: the bundle is damaged or mixed up"
        )

    try:
        if labels_path is not None:
            labels, source = load_labels_file(Path(labels_path)), str(labels_path)
        elif manifest is not None:
            label_file = folder / manifest.get("labels_file", "labels.txt")
            labels, source = load_labels_file(label_file), str(label_file)
        else:
            found = embedded_labels(tflite)
            if found is not None:
                labels, source = found[1], f"{tflite}!{found[0]}"
            else:
                for name in ("labels.txt", "labelmap.csv", "labels.csv"):
                    if (folder / name).is_file():
                        labels, source = load_labels_file(folder / name), str(folder / name)
                        break
                else:
                    raise ModelError(
                        f"{tflite}: no labels: none embedded in the .tflite and no labels.txt beside it; "
                        "pass --labels PATH (or [model] labels)"
                    )
    except LabelError as error:
        raise ModelError(str(error)) from None
    if manifest is not None and isinstance(manifest.get("taxonomy"), dict):
        # `trainer train --taxonomy FILE`: scientific and common names of the bundle's classes.
        labels = with_taxonomy(labels, manifest["taxonomy"])

    if manifest is not None:
        model_id = str(manifest.get("model_id") or f"{tflite.stem}-{digest[:8]}")
    else:
        model_id = f"{tflite.stem if tflite.stem != 'model' else folder.name}-{digest[:8]}"

    no_bird = find_no_bird_label(labels, no_bird_label, manifest, source)
    return ModelSpec(tflite, labels, source, model_id, no_bird, manifest, digest)


@dataclass(frozen=True)
class Prediction:
    label: str
    score: float
    index: int


class TFLiteModel:
    """One .tflite in a TFLite interpreter: raw RGB pixels in, probabilities out.

    The one place that turns pixels into the model's input tensor and its output into
    probabilities. The daemon's Classifier runs every frame through it, and the trainer's export
    verification and `trainer evaluate` use it too (the trainer may import the edge, never the
    reverse), so a bundle is verified and evaluated exactly as the field runs it. Two runners
    drifted apart before: the trainer's quantised a uint8 input itself and agreed with the edge
    on 0 of 40 AIY top-1s. Not thread-safe on its own; Classifier adds the lock.
    """

    def __init__(self, tflite_path: Path, threads: int | None = 2, activation: str | None = None) -> None:
        """`activation`: the output's, when known (a bundle manifest's "linear"/"logits" means
        softmax is applied here); threads None lets the runtime choose (the trainer's batch use)."""
        self.path = Path(tflite_path)
        interpreter_class, self.runtime = load_interpreter_class()
        try:
            with runtime_notices_hidden():  # the runtime's XNNPACK INFO line
                self._interpreter = interpreter_class(model_path=str(self.path), num_threads=threads)
                self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as error:
            raise ModelError(f"{self.path}: the TFLite runtime cannot load it: {error}") from None
        inputs = self._interpreter.get_input_details()
        outputs = self._interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelError(f"{self.path}: expected one input and one output tensor, got {len(inputs)} and {len(outputs)}")
        self.input_details, self.output_details = inputs[0], outputs[0]
        shape = tuple(int(d) for d in self.input_details["shape"])
        if len(shape) != 4 or shape[0] != 1 or shape[3] != 3:
            raise ModelError(f"{self.path}: input shape {list(shape)} is not [1, height, width, 3]")
        self.input_size = (shape[2], shape[1])  # (width, height) as Pillow wants it
        self.input_dtype = np.dtype(self.input_details["dtype"])
        if self.input_dtype not in (np.uint8, np.int8, np.float32):
            raise ModelError(f"{self.path}: unsupported input type {self.input_dtype}")
        self.num_classes = int(np.prod(self.output_details["shape"]))
        self._in_scale, self._in_zero = self.input_details["quantization"]
        self._out_scale, self._out_zero = self.output_details["quantization"]
        self._out_dtype = np.dtype(self.output_details["dtype"])
        self._needs_softmax = activation in ("linear", "none", "logits")

    def to_input(self, rgb: np.ndarray) -> np.ndarray:
        """Raw RGB uint8 (H, W, 3) → the input tensor the model expects.

        uint8 models take pixels as they are (AIY's quantisation says 0..255 → [-1, 1] inside;
        a trainer bundle's input scale is 1.0, zero point 0). int8 models quantise pixel values
        with their input scale and zero point; float models take float32 pixel values 0..255.
        """
        batch = rgb[np.newaxis, ...]
        if self.input_dtype == np.uint8:
            return np.ascontiguousarray(batch, dtype=np.uint8)
        if self.input_dtype == np.int8:
            scale = self._in_scale or 1.0
            quantised = np.round(batch.astype(np.float32) / scale + self._in_zero)
            return np.clip(quantised, -128, 127).astype(np.int8)
        return batch.astype(np.float32)

    def probabilities(self, rgb: np.ndarray) -> np.ndarray:
        """Class scores (float32, dequantised; softmax applied when the model outputs logits)."""
        self._interpreter.set_tensor(self.input_details["index"], self.to_input(rgb))
        self._interpreter.invoke()
        raw = self._interpreter.get_tensor(self.output_details["index"]).reshape(-1)
        if self._out_dtype in (np.uint8, np.int8) and self._out_scale:
            values = (raw.astype(np.float32) - self._out_zero) * self._out_scale
        else:
            values = raw.astype(np.float32)
        if self._needs_softmax or (
            self._out_dtype == np.float32 and (values.min() < -1e-3 or values.max() > 1.0 + 1e-3)
        ):
            shifted = np.exp(values - values.max())
            values = shifted / shifted.sum()
        return values

    def predict(self, images: np.ndarray) -> np.ndarray:
        """images [n, H, W, 3] uint8 RGB at the model's size → probabilities [n, classes],
        one invoke per image (batch of one, as on the edge)."""
        if len(images) == 0:
            return np.zeros((0, self.num_classes), np.float32)
        return np.stack([self.probabilities(np.asarray(image, dtype=np.uint8)) for image in images])


@dataclass
class Classifier:
    """A model's TFLiteModel with its labels. Not thread-safe: the daemon has one thread
    (the lock only keeps a stray second caller from interleaving set_tensor and invoke)."""

    spec: ModelSpec
    threads: int = 2
    runtime: str = field(init=False)
    input_size: tuple[int, int] = field(init=False)  # (width, height) as Pillow wants it

    def __post_init__(self) -> None:
        activation = (self.spec.manifest or {}).get("output", {}).get("activation")
        self.model = TFLiteModel(self.spec.tflite_path, self.threads, activation)
        self.runtime = self.model.runtime
        self.input_size = self.model.input_size
        self.input_dtype = self.model.input_dtype
        self.num_classes = self.model.num_classes
        if self.num_classes != len(self.spec.labels):
            raise ModelError(
                f"{self.spec.tflite_path}: the model has {self.num_classes} outputs but "
                f"{self.spec.labels_source} has {len(self.spec.labels)} labels"
            )
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return self.spec.model_id

    def to_input(self, rgb: np.ndarray) -> np.ndarray:
        """Raw RGB uint8 (H, W, 3) → the input tensor the model expects (TFLiteModel.to_input)."""
        return self.model.to_input(rgb)

    def scores(self, rgb: np.ndarray) -> np.ndarray:
        """Class scores (float32, dequantised; softmax applied when the model outputs logits)."""
        with self._lock:
            return self.model.probabilities(rgb)

    def classify(self, rgb: np.ndarray, top_k: int = 5) -> tuple[list[Prediction], float]:
        """Top-k predictions (best first; ties by lower index) and inference time in ms."""
        started = time.perf_counter()
        values = self.scores(rgb)
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        k = min(top_k, values.size)
        order = np.argsort(-values, kind="stable")[:k]
        labels = self.spec.labels
        return [Prediction(labels[i].name, float(values[i]), int(i)) for i in order], elapsed_ms


def load_classifier(path: Path, labels: Path | None = None, no_bird_label: str | int | None = None, threads: int = 2) -> Classifier:
    return Classifier(resolve_model(path, labels, no_bird_label), threads=threads)
