"""Real TFLite detectors, built with TensorFlow in the test, whose outputs are known exactly.

Each model looks at a 64x64 picture as a 4x4 grid of 16-pixel cells and emits one anchor per
cell whose box is the cell and whose score is the cell's mean brightness, so a white 16x16
square drawn on a dark frame at a cell is a detection with a known box and score. A second set
of 16 anchors repeats the first shifted by (2, 1) pixels at 0.8 of the score: duplicates that
the detector's NMS must merge. Layouts, as the detectors in the wild emit them:

    yolo_v8   [1, 4+C, N] channels first, boxes in input pixels, C = 3 (animal, person, vehicle:
              MegaDetector's classes); person scores 0.9 everywhere (a class that is not a bird)
    yolo_v5   [1, N, 5+C] with objectness (= brightness), boxes normalised, class scores fixed
    yolo_int8 yolo_v8 with normalised boxes, full-integer quantised (int8 input and output)
    ssd       four outputs in EfficientDet-Lite's style, not SSD MobileNet's order, with names
              that do not say which is which; float input in -1..1; classes: cells of even
              index are "bird" (class 1 after the "???" line), odd ones "person" (class 0)
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import numpy as np

SIDE = 64
CELL = 16
GRID = SIDE // CELL
YOLO_LABELS = ("animal", "person", "vehicle")
SSD_LABELS = ("???", "person", "bird")
SHIFT = (2.0, 1.0)  # the duplicate anchors' (x, y) offset in pixels
DUPLICATE_SCORE = 0.8


def cell_box(row: int, col: int) -> tuple[float, float, float, float]:
    """(ymin, xmin, ymax, xmax) normalised, of a grid cell."""
    return (row * CELL / SIDE, col * CELL / SIDE, (row + 1) * CELL / SIDE, (col + 1) * CELL / SIDE)


def frame(squares: list[tuple[int, int]], background: int = 40) -> np.ndarray:
    """A 64x64 uint8 RGB picture, dark grey, with white squares filling the given cells."""
    image = np.full((SIDE, SIDE, 3), background, np.uint8)
    for row, col in squares:
        image[row * CELL:(row + 1) * CELL, col * CELL:(col + 1) * CELL] = 255
    return image


def _anchor_geometry(normalised: bool) -> np.ndarray:
    """[4, 2*16] cx, cy, w, h of both anchor sets (row-major cells, then their shifted copies)."""
    centres = [((c + 0.5) * CELL, (r + 0.5) * CELL) for r in range(GRID) for c in range(GRID)]
    first = np.array([[cx, cy, CELL, CELL] for cx, cy in centres], np.float32)
    second = first + np.array([SHIFT[0], SHIFT[1], 0, 0], np.float32)
    geometry = np.concatenate([first, second]).T
    return geometry / SIDE if normalised else geometry


def _write(tf, module, path: Path, labels: tuple[str, ...], int8: bool = False) -> Path:
    converter = tf.lite.TFLiteConverter.from_concrete_functions([module.__call__.get_concrete_function()], module)
    if int8:
        rng = np.random.default_rng(3)

        def representative():
            for index in range(24):
                squares = [(int(rng.integers(GRID)), int(rng.integers(GRID)))] if index % 3 else []
                yield [frame(squares, int(rng.integers(0, 80)))[np.newaxis].astype(np.float32) / 255.0]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    path.mkdir(parents=True, exist_ok=True)
    (path / "model.tflite").write_bytes(converter.convert())
    (path / "labels.txt").write_text("\n".join(labels) + "\n", encoding="utf-8")
    return path


def build_all(tf, root: Path, names: Collection[str] | None = None) -> dict[str, Path]:
    """Every layout above (or those `names` picks), each a folder with model.tflite + labels.txt;
    returns name → folder."""
    spec = tf.TensorSpec([1, SIDE, SIDE, 3], tf.float32)

    def brightness(x, low: float):
        grey = tf.reduce_mean(x, axis=-1, keepdims=True)
        if low != 0.0:
            grey = (grey - low) / (1.0 - low)
        pooled = tf.nn.avg_pool2d(grey, CELL, CELL, "VALID")  # [1, 4, 4, 1]
        return tf.reshape(pooled, [1, GRID * GRID])

    class YoloV8(tf.Module):
        def __init__(self, normalised: bool) -> None:
            super().__init__()
            self.geometry = tf.constant(_anchor_geometry(normalised)[np.newaxis])  # [1, 4, 32]

        @tf.function(input_signature=[spec])
        def __call__(self, x):
            score = brightness(x, 0.0)
            animal = tf.concat([score, score * DUPLICATE_SCORE], axis=1)  # [1, 32]
            person = tf.ones_like(animal) * 0.9
            vehicle = tf.zeros_like(animal)
            classes = tf.stack([animal, person, vehicle], axis=1)  # [1, 3, 32]
            return tf.concat([self.geometry + animal[:, None, :] * 0.0, classes], axis=1)  # [1, 7, 32]

    class YoloV5(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.geometry = tf.constant(_anchor_geometry(True).T[np.newaxis])  # [1, 32, 4]

        @tf.function(input_signature=[spec])
        def __call__(self, x):
            score = brightness(x, 0.0)
            objectness = tf.concat([score, score * DUPLICATE_SCORE], axis=1)[:, :, None]  # [1, 32, 1]
            fixed = tf.constant(np.array([[[0.9, 0.1, 0.0]]], np.float32)) + objectness * 0.0  # [1, 32, 3]
            return tf.concat([self.geometry + objectness * 0.0, objectness, fixed], axis=2)  # [1, 32, 8]

    class EfficientDetStyle(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            boxes = np.array([cell_box(r, c) for r in range(GRID) for c in range(GRID)], np.float32)
            self.boxes = tf.constant(boxes[np.newaxis])  # [1, 16, 4]
            self.classes = tf.constant((np.arange(GRID * GRID) % 2 == 0).astype(np.float32)[np.newaxis])

        @tf.function(input_signature=[spec])
        def __call__(self, x):
            score = brightness(x, -1.0)  # the float input is -1..1
            return {
                "output_0": self.classes + score * 0.0,
                "output_1": self.boxes + score[:, :, None] * 0.0,
                "output_2": tf.reshape(tf.reduce_sum(score) * 0.0 + GRID * GRID, [1]),
                "output_3": score,
            }

    builders = {
        "yolo_v8": lambda: _write(tf, YoloV8(normalised=False), root / "yolo_v8", YOLO_LABELS),
        "yolo_v5": lambda: _write(tf, YoloV5(), root / "yolo_v5", YOLO_LABELS),
        "yolo_int8": lambda: _write(tf, YoloV8(normalised=True), root / "yolo_int8", YOLO_LABELS, int8=True),
        "ssd": lambda: _write(tf, EfficientDetStyle(), root / "ssd", SSD_LABELS),
    }
    return {name: build() for name, build in builders.items() if names is None or name in names}
