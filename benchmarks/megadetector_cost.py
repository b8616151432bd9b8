"""What a MegaDetector v6-c sized ONNX detector costs per frame on this CPU with ONNX Runtime.

    python -m benchmarks.megadetector_cost [--threads 2] [--runs 5]
    python benchmarks/megadetector_cost.py

MegaDetector v6 compact (YOLOv9-c) takes 640x640 input, has about 25 M parameters and costs
about 100 GFLOPs (Ultralytics' count: 2 x multiply-adds) and emits [1, 7, 8400] (cx, cy, w, h,
animal, person, vehicle over the 80x80, 40x40 and 20x20 grids). Its weights cannot be fetched
here, so `build_model` writes a stand-in of that size and compute: a stack of 3x3 convolutions
with SiLU (x * sigmoid(x)), stride 2 down to 20x20, with 1x1 heads on the three grids
concatenated into [1, 7, 8400]. Its weights are random (class scores pushed to ~0, so decoding
stays the cheap empty-frame case): the figure is the cost of running such a model through the
edge's own Detector (edge/detect/runtime.py: ONNX Runtime, CPU, `threads` intra-op threads),
NOT any accuracy. MegaDetector's accuracy on trail-camera frames cannot be measured here.

`measure` returns the median milliseconds of the session alone (`invoke_ms`) and of
Detector.detect (input conversion, invoke, decoding: `detect_ms`) over `runs` frames after one
warm-up; `main` prints them with the model's size.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: the repository root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SIDE = 640
LABELS = ("animal", "person", "vehicle")
# (input channels, output channels, stride) of the 3x3 convolutions, and after which the three
# grids (80, 40, 20) are read by a 1x1 head.
STACK = ((3, 64, 2), (64, 128, 2), (128, 128, 1), (128, 128, 1), (128, 128, 1),
         (128, 256, 2), (256, 256, 1), (256, 256, 1), (256, 256, 1), (256, 256, 1),
         (256, 512, 2), (512, 512, 1), (512, 512, 1), (512, 512, 1), (512, 512, 1),
         (512, 1024, 2), (1024, 1024, 1))
HEADS = {9: 256, 14: 512, 16: 1024}  # layer index after which a grid is read → its channels


def cost() -> tuple[int, float]:
    """(parameters, GFLOPs as 2 x multiply-adds) of the stand-in."""
    params, macs, side = 0, 0, SIDE
    for index, (cin, cout, stride) in enumerate(STACK):
        side //= stride
        params += cin * cout * 9 + cout
        macs += side * side * cin * cout * 9
        if index in HEADS:
            params += HEADS[index] * 7 + 7
            macs += side * side * HEADS[index] * 7
    return params, 2 * macs / 1e9


def build_model(folder: Path, seed: int = 0) -> Path:
    """Write the stand-in (model.onnx + labels.txt) into `folder`; returns the folder."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes, inits, heads = [], [], []
    current = "images"
    for index, (cin, cout, stride) in enumerate(STACK):
        weight = (rng.standard_normal((cout, cin, 3, 3)) * np.sqrt(2.0 / (cin * 9))).astype(np.float32)
        inits += [numpy_helper.from_array(weight, f"w{index}"), numpy_helper.from_array(np.zeros(cout, np.float32), f"b{index}")]
        nodes += [helper.make_node("Conv", [current, f"w{index}", f"b{index}"], [f"c{index}"], kernel_shape=[3, 3],
                                   strides=[stride, stride], pads=[1, 1, 1, 1]),
                  helper.make_node("Sigmoid", [f"c{index}"], [f"s{index}"]),
                  helper.make_node("Mul", [f"c{index}", f"s{index}"], [f"a{index}"])]
        current = f"a{index}"
        if index in HEADS:
            channels = HEADS[index]
            weight = (rng.standard_normal((7, channels, 1, 1)) * 0.01).astype(np.float32)
            bias = np.array([320, 320, 32, 32, -20, -20, -20], np.float32)  # boxes; class logits ~ never
            inits += [numpy_helper.from_array(weight, f"hw{index}"), numpy_helper.from_array(bias, f"hb{index}")]
            nodes += [helper.make_node("Conv", [current, f"hw{index}", f"hb{index}"], [f"h{index}"], kernel_shape=[1, 1]),
                      helper.make_node("Reshape", [f"h{index}", "flat"], [f"r{index}"])]
            heads.append(f"r{index}")
    nodes += [helper.make_node("Concat", heads, ["raw"], axis=2),
              helper.make_node("Split", ["raw", "split"], ["boxes", "logits"], axis=1),
              helper.make_node("Sigmoid", ["logits"], ["scores"]),
              helper.make_node("Concat", ["boxes", "scores"], ["output0"], axis=1)]
    inits += [numpy_helper.from_array(np.array([1, 7, -1], np.int64), "flat"),
              numpy_helper.from_array(np.array([4, 3], np.int64), "split")]
    graph = helper.make_graph(
        nodes, "megadetector_v6c_standin",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, SIDE, SIDE])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 7, 8400])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(folder / "model.onnx"))
    (folder / "labels.txt").write_text("\n".join(LABELS) + "\n", encoding="utf-8")
    return folder


def measure(folder: Path, threads: int = 2, runs: int = 5) -> dict[str, float]:
    """Median ms per frame of the session alone and of Detector.detect, after one warm-up."""
    from edge.detect.model import Detector, resolve_detector

    detector = Detector(resolve_detector(folder, bird_labels=("animal",), person_labels=("person",),
                                         vehicle_labels=("vehicle",)), threads=threads)
    assert detector.layout == "yolov8" and detector.input_size == (SIDE, SIDE)
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8)
    batch = detector.to_input(frame)
    detector.engine.run(batch)  # warm-up (allocations, kernel selection)
    invoke, detect = [], []
    for _ in range(runs):
        started = time.perf_counter()
        detector.engine.run(batch)
        invoke.append((time.perf_counter() - started) * 1000.0)
        detector.detect(frame)
        detect.append(detector.last_ms)
    return {"invoke_ms": statistics.median(invoke), "detect_ms": statistics.median(detect), "runs": runs,
            "threads": threads}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads (default 2)")
    parser.add_argument("--runs", type=int, default=5, help="timed frames after one warm-up (default 5)")
    args = parser.parse_args(argv)
    import onnxruntime

    params, gflops = cost()
    with tempfile.TemporaryDirectory(prefix="megadetector-cost-") as tmp:
        result = measure(build_model(Path(tmp) / "standin"), args.threads, args.runs)
    print(f"MegaDetector v6-c stand-in: 640x640, {params / 1e6:.1f} M parameters, {gflops:.0f} GFLOPs, "
          f"[1, 7, 8400]; onnxruntime {onnxruntime.__version__}, {args.threads} threads, "
          f"{platform.machine()} {platform.processor() or ''}".rstrip())
    print(f"ms per invoke (median of {args.runs}): {result['invoke_ms']:.0f}")
    print(f"ms per Detector.detect (median of {args.runs}): {result['detect_ms']:.0f}")
    print("(random weights: the cost of such a model here, not MegaDetector's accuracy, which cannot be measured here)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
