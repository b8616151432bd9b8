"""Run a .tflite classifier with ai-edge-litert, exactly as the edge does (batch of one).

Why here and not the edge's classifier: export verification must not wait for the edge
package; both read quantisation parameters from the interpreter itself, so they agree.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


class TFLiteClassifier:
    """Feed raw RGB 0..255 images; get float probabilities (dequantised when the output is integer)."""

    def __init__(self, model_path: Path, num_threads: int | None = None) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.path = Path(model_path)
        self.interpreter = Interpreter(model_path=str(self.path), num_threads=num_threads)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]

    @property
    def image_size(self) -> tuple[int, int]:
        _, height, width, _ = self.input["shape"]
        return int(height), int(width)

    @property
    def num_classes(self) -> int:
        return int(self.output["shape"][-1])

    def _quantize_input(self, image: np.ndarray) -> np.ndarray:
        dtype = self.input["dtype"]
        scale, zero_point = self.input["quantization"]
        x = image.astype(np.float32)
        if dtype in (np.uint8, np.int8):
            if scale:
                x = np.round(x / scale + zero_point)
            info = np.iinfo(dtype)
            return np.clip(x, info.min, info.max).astype(dtype)
        return x.astype(dtype)

    def _dequantize_output(self, raw: np.ndarray) -> np.ndarray:
        scale, zero_point = self.output["quantization"]
        if self.output["dtype"] in (np.uint8, np.int8) and scale:
            return (raw.astype(np.float32) - zero_point) * scale
        return raw.astype(np.float32)

    def predict_one(self, image: np.ndarray) -> np.ndarray:
        """image: [H, W, 3] RGB 0..255 at the model's size -> probabilities [classes]."""
        self.interpreter.set_tensor(self.input["index"], self._quantize_input(image)[np.newaxis])
        self.interpreter.invoke()
        return self._dequantize_output(self.interpreter.get_tensor(self.output["index"])[0])

    def predict(self, images: np.ndarray) -> np.ndarray:
        """images: [n, H, W, 3] -> probabilities [n, classes]."""
        if len(images) == 0:
            return np.zeros((0, self.num_classes), np.float32)
        return np.stack([self.predict_one(image) for image in images])
