"""The detector's runtimes: TFLite (ai-edge-litert or tflite-runtime) and ONNX Runtime, behind
one small interface, so that the decoding of a detector's outputs (layouts, thresholds, NMS,
bird classes, letterbox: edge/detect/model.py) is one code path whatever runs the model.

    open_runtime(path, threads, input_size=None) -> TFLiteRuntime | OnnxRuntime
      .name        "ai-edge-litert" | "tflite-runtime" | "onnxruntime"
      .input_size  (width, height) the picture is fitted to
      .input_dtype uint8 | int8 | float32 (what `run` takes, NHWC)
      .input_quantization (scale, zero_point), (0.0, 0) when none
      .outputs     [OutputInfo(name, shape, dtype)] in the model's order, shapes concrete
      .run(batch)  [1, H, W, 3] NHWC of input_dtype -> the outputs as float32 arrays, dequantised

What differs between the two, and stays here: TFLite takes NHWC, ONNX exports of PyTorch
detectors (YOLOv5/v8/v9, RT-DETR, MegaDetector) take NCHW; TFLite tensors may be quantised;
ONNX inputs may have dynamic dimensions (a MegaDetector export with `dynamic=True`), which take
the model's own `imgsz` metadata (Ultralytics writes it) or DEFAULT_ONNX_INPUT (640, what
MegaDetector v6 and YOLO models are trained at); an RT-DETRv2 deploy export (MegaDetector v6
Apache) has a second input, the original image size its boxes are scaled to, which is fed the
input size, so its boxes come back in input pixels like every other layout's.

onnxruntime is an optional extra (`pip install 'trailcam[onnx]'`), imported only when a .onnx
detector is opened.
"""

from __future__ import annotations

import ast
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.classify.model import ModelError, load_interpreter_class
from edge.classify.runtime_notices import runtime_notices_hidden

# The input size of an ONNX detector whose input dimensions are dynamic and whose metadata says
# nothing: MegaDetector v6 and the YOLO family are trained at 640x640.
DEFAULT_ONNX_INPUT = 640
ONNX_INSTALL = "pip install 'trailcam[onnx]'"
_ONNX_TYPES = {"tensor(float)": np.float32, "tensor(uint8)": np.uint8, "tensor(int8)": np.int8,
               "tensor(float16)": np.float16, "tensor(int64)": np.int64, "tensor(int32)": np.int32}


class RuntimeLoadError(ModelError):
    """The runtime is missing or cannot load the model (the Detector turns it into a DetectorError)."""


@dataclass(frozen=True)
class OutputInfo:
    """One output tensor: its name (SSD outputs are told apart partly by it), concrete shape and
    element type as the model stores it (before dequantisation)."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype


def is_onnx(path: Path) -> bool:
    """An ONNX model file (by its suffix: the runtime is chosen before the file is read)."""
    return Path(path).suffix.lower() == ".onnx"


def open_runtime(path: Path, threads: int = 2, input_size: int | None = None) -> TFLiteRuntime | OnnxRuntime:
    """The runtime for a detector file: ONNX Runtime for a .onnx, TFLite otherwise. `input_size`:
    the side used where an ONNX input's dimensions are dynamic (None: metadata, else 640)."""
    if is_onnx(path):
        return OnnxRuntime(path, threads, input_size)
    return TFLiteRuntime(path, threads)


class TFLiteRuntime:
    """A TFLite interpreter: NHWC in, outputs dequantised with their own scale and zero point."""

    def __init__(self, path: Path, threads: int = 2) -> None:
        interpreter_class, self.name = load_interpreter_class()
        try:
            with runtime_notices_hidden():  # the runtime's XNNPACK INFO line
                self.interpreter = interpreter_class(model_path=str(path), num_threads=threads)
                self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as error:
            raise RuntimeLoadError(f"{path}: the TFLite runtime cannot load it: {error}") from None
        inputs = self.interpreter.get_input_details()
        if len(inputs) != 1:
            raise RuntimeLoadError(f"{path}: expected one input tensor, got {len(inputs)}")
        self._input = inputs[0]
        shape = tuple(int(d) for d in self._input["shape"])
        if len(shape) != 4 or shape[0] != 1 or shape[3] != 3:
            raise RuntimeLoadError(f"{path}: input shape {list(shape)} is not [1, height, width, 3]")
        self.input_size = (shape[2], shape[1])
        self.input_dtype = np.dtype(self._input["dtype"])
        scale, zero = self._input["quantization"]
        self.input_quantization = (float(scale), int(zero))
        self._details = self.interpreter.get_output_details()
        self.outputs = [OutputInfo(str(d["name"]), tuple(int(v) for v in d["shape"]), np.dtype(d["dtype"]))
                        for d in self._details]

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        self.interpreter.set_tensor(self._input["index"], batch)
        self.interpreter.invoke()
        results = []
        for detail in self._details:
            raw = self.interpreter.get_tensor(detail["index"])
            scale, zero = detail["quantization"]
            if np.dtype(detail["dtype"]) in (np.uint8, np.int8) and scale:
                results.append((raw.astype(np.float32) - zero) * scale)
            else:
                results.append(raw.astype(np.float32))
        return results


def _import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise RuntimeLoadError(f"onnxruntime is not installed: a .onnx detector needs it ({ONNX_INSTALL})") from None
    return onnxruntime


def onnx_metadata(path: Path) -> dict[str, str]:
    """The model's metadata_props (Ultralytics writes `names`, `imgsz`, `task`, `description`)."""
    ort = _import_onnxruntime()
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as error:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise RuntimeLoadError(f"{path}: ONNX Runtime cannot load it: {error}") from None
    return dict(session.get_modelmeta().custom_metadata_map)


def metadata_names(metadata: dict[str, str]) -> list[str] | None:
    """The class names of Ultralytics' `names` metadata ("{0: 'animal', 1: 'person'}", a Python
    dict literal; a JSON list or dict too), in class order, or None."""
    text = metadata.get("names")
    if not text:
        return None
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        try:
            value = json.loads(text)
        except ValueError:
            return None
    if isinstance(value, dict):
        try:
            indexed = {int(k): str(v) for k, v in value.items()}
        except (TypeError, ValueError):
            return None
        if sorted(indexed) != list(range(len(indexed))):
            return None
        return [indexed[i] for i in range(len(indexed))]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def _metadata_size(metadata: dict[str, str]) -> tuple[int, int] | None:
    """(width, height) from Ultralytics' `imgsz` metadata ("[640, 640]", height first), or None."""
    text = metadata.get("imgsz")
    if not text:
        return None
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return None
    if isinstance(value, int):
        value = [value, value]
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) and v > 0 for v in value):
        return int(value[1]), int(value[0])
    return None


class OnnxRuntime:
    """An onnxruntime InferenceSession on the CPU: the NHWC batch the Detector builds is
    transposed to NCHW when the model wants it; a float16 input is fed float16."""

    name = "onnxruntime"

    def __init__(self, path: Path, threads: int = 2, input_size: int | None = None) -> None:
        ort = _import_onnxruntime()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 4  # a failing run raises; its C++ log line would only repeat it
        try:
            self.session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as error:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise RuntimeLoadError(f"{path}: ONNX Runtime cannot load it: {error}") from None
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        inputs = self.session.get_inputs()
        images = [i for i in inputs if len(i.shape) == 4]
        if len(images) != 1:
            raise RuntimeLoadError(f"{path}: expected one image input [1, 3, H, W] or [1, H, W, 3], got "
                                   + ", ".join(f"{i.name!r} {list(i.shape)}" for i in inputs))
        image = images[0]
        dims = [d if isinstance(d, int) and d > 0 else None for d in image.shape]
        if dims[1] == 3:
            self.channels_first, (height, width) = True, (dims[2], dims[3])
        elif dims[3] == 3:
            self.channels_first, (height, width) = False, (dims[1], dims[2])
        else:
            raise RuntimeLoadError(f"{path}: input {image.name!r} {list(image.shape)} has no axis of 3 colour channels")
        if height is None or width is None:
            fallback = (input_size, input_size) if input_size else _metadata_size(self.metadata)
            fallback = fallback or (DEFAULT_ONNX_INPUT, DEFAULT_ONNX_INPUT)
            width, height = width or fallback[0], height or fallback[1]
        self.input_size = (int(width), int(height))
        model_dtype = _ONNX_TYPES.get(image.type)
        if model_dtype not in (np.float32, np.float16, np.uint8):
            raise RuntimeLoadError(f"{path}: unsupported input type {image.type} of {image.name!r}")
        self._model_dtype = np.dtype(model_dtype)
        # What the Detector builds: float16 models are fed float32 pixels cast at the door.
        self.input_dtype = np.dtype(np.uint8 if model_dtype == np.uint8 else np.float32)
        self.input_quantization = (0.0, 0)
        self._image_name = image.name
        self._extra: dict[str, np.ndarray] = {}
        for other in inputs:
            if other is image:
                continue
            kind = _ONNX_TYPES.get(other.type)
            if len(other.shape) != 2 or kind not in (np.int64, np.int32, np.float32):
                raise RuntimeLoadError(f"{path}: input {other.name!r} {list(other.shape)} is neither the image nor "
                                       "an image size [1, 2] (RT-DETR's orig_target_sizes)")
            # RT-DETRv2's deploy model scales its boxes to this (w, h): the input's own size.
            self._extra[other.name] = np.asarray([self.input_size], dtype=kind)
        self._lock = threading.Lock()
        # Output shapes may be dynamic (a symbolic number of boxes): one run on a grey picture
        # gives the concrete ones the layout is identified by.
        names = [o.name for o in self.session.get_outputs()]
        width, height = self.input_size
        try:
            probe = self.run(np.full((1, height, width, 3), 114, dtype=self.input_dtype))
        except Exception as error:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise RuntimeLoadError(f"{path}: ONNX Runtime cannot run it at {width}x{height} (its input "
                                   f"{image.name!r} is {list(image.shape)}): {error}; an input of dynamic size "
                                   "takes detector.input_size, else the model's imgsz metadata, else "
                                   f"{DEFAULT_ONNX_INPUT}") from None
        self.outputs = [OutputInfo(name, tuple(int(v) for v in array.shape), self._output_dtype(name))
                        for name, array in zip(names, probe)]

    def _output_dtype(self, name: str) -> np.dtype:
        found = next(o for o in self.session.get_outputs() if o.name == name)
        return np.dtype(_ONNX_TYPES.get(found.type, np.float32))

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        tensor = np.transpose(batch, (0, 3, 1, 2)) if self.channels_first else batch
        feed = {self._image_name: np.ascontiguousarray(tensor, dtype=self._model_dtype), **self._extra}
        with self._lock:
            results = self.session.run(None, feed)
        return [np.asarray(r).astype(np.float32) for r in results]
