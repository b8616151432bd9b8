"""Real ONNX detectors (built with onnx.helper, run by ONNX Runtime) and a real end-to-end
TFLite one, whose outputs are known exactly: MegaDetector's classes as colour channels.

Each model looks at a 64x64 picture as an 8x8 grid of 8-pixel cells; a cell's score for class
c is the mean of colour channel c over it (AveragePool, kernel = stride = cell): red is
"animal", green "person", blue "vehicle". Each cell is one anchor whose box is the cell, so a
red square filling a cell is an animal with that cell's box, a green one a person. The graphs
put these scores and the constant boxes into each layout a detector exports:

    yolov8    [1, 4+C, N]  cx, cy, w, h in input pixels, then class scores (MegaDetector v6 yolov9)
    yolov5    [1, N, 5+C]  normalised boxes, objectness (the cell's brightest channel), class
                           scores that the objectness multiplies (MegaDetector v5a)
    rtdetr    [1, N, 4+C]  normalised cx, cy, w, h and final scores (Ultralytics' RT-DETR)
    rtdetr2   RT-DETRv2's deploy export (MegaDetector v6 Apache): inputs images and
              orig_target_sizes [1, 2]; outputs labels [1, Q], boxes [1, Q, 4] x1 y1 x2 y2
              scaled to orig_target_sizes, scores [1, Q]: TopK over every (query, class) score
    end2end   [1, K, 6] x1, y1, x2, y2 (pixels), score, class: the best class per anchor, TopK
              inside the model (NMS-free export, Ultralytics nms=True / YOLOv10 style)

Labels: animal, person, vehicle in labels.txt beside the model, except "metadata", a yolov8
model carrying Ultralytics' `names` metadata instead, and "dynamic", a yolov8 model whose input
dimensions are symbolic.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import numpy as np

SIDE = 64
CELL = 8
GRID = SIDE // CELL
N = GRID * GRID
LABELS = ("animal", "person", "vehicle")
C = len(LABELS)
TOP_K = 10
# The colour of each class's square (what its channel scores).
COLOURS = {"animal": (255, 0, 0), "person": (0, 255, 0), "vehicle": (0, 0, 255)}
OPSET = 13
IR_VERSION = 7  # readable by every onnxruntime since 1.8


def geometry(normalised: bool) -> np.ndarray:
    """[4, N] cx, cy, w, h of the cells, row-major."""
    centres = [((c + 0.5) * CELL, (r + 0.5) * CELL) for r in range(GRID) for c in range(GRID)]
    values = np.array([[cx, cy, CELL, CELL] for cx, cy in centres], np.float32).T
    return values / SIDE if normalised else values


def xyxy(normalised: bool) -> np.ndarray:
    """[N, 4] x1, y1, x2, y2 of the cells."""
    cx, cy, w, h = geometry(normalised)
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1).astype(np.float32)


def _scores(helper, nodes: list, name: str = "scores") -> None:
    """images [1,3,S,S] → `name` [1, 3, N]: each channel's mean over each cell."""
    nodes.append(helper.make_node("AveragePool", ["images"], ["pooled"], kernel_shape=[CELL, CELL], strides=[CELL, CELL]))
    nodes.append(helper.make_node("Reshape", ["pooled", "shape_scores"], [name]))


def _model(onnx, helper, numpy_helper, nodes, outputs, initialisers, *, dynamic: bool = False,
           extra_inputs=(), metadata: dict[str, str] | None = None):
    from onnx import TensorProto

    dims = [1, 3, "height", "width"] if dynamic else [1, 3, SIDE, SIDE]
    inputs = [helper.make_tensor_value_info("images", TensorProto.FLOAT, dims), *extra_inputs]
    inits = [numpy_helper.from_array(np.asarray(v), name=k) for k, v in initialisers.items()]
    inits.append(numpy_helper.from_array(np.array([1, C, N], np.int64), name="shape_scores"))
    graph = helper.make_graph(nodes, "colour_detector", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="trailcam-tests")
    model.ir_version = IR_VERSION
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    return model


def build_onnx(root: Path, names: Collection[str] | None = None) -> dict[str, Path]:
    """Each layout above (or those `names` picks) as a folder with model.onnx (+ labels.txt);
    returns name → folder."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    def out(name: str, shape: list, kind=TensorProto.FLOAT):
        return helper.make_tensor_value_info(name, kind, shape)

    def yolov8(dynamic: bool = False, metadata: dict[str, str] | None = None):
        nodes: list = []
        _scores(helper, nodes)
        nodes.append(helper.make_node("Concat", ["geometry", "scores"], ["output0"], axis=1))
        return _model(onnx, helper, numpy_helper, nodes, [out("output0", [1, 4 + C, N])],
                      {"geometry": geometry(False)[np.newaxis]}, dynamic=dynamic, metadata=metadata)

    def yolov5():
        nodes: list = []
        _scores(helper, nodes)
        nodes += [
            helper.make_node("ReduceMax", ["scores"], ["objectness"], axes=[1], keepdims=1),  # [1, 1, N]
            helper.make_node("Concat", ["geometry", "objectness", "scores"], ["channels"], axis=1),  # [1, 5+C, N]
            helper.make_node("Transpose", ["channels"], ["output0"], perm=[0, 2, 1]),
        ]
        return _model(onnx, helper, numpy_helper, nodes, [out("output0", [1, N, 5 + C])],
                      {"geometry": geometry(True)[np.newaxis]})

    def rtdetr():
        nodes: list = []
        _scores(helper, nodes)
        nodes += [helper.make_node("Concat", ["geometry", "scores"], ["channels"], axis=1),
                  helper.make_node("Transpose", ["channels"], ["output0"], perm=[0, 2, 1])]
        return _model(onnx, helper, numpy_helper, nodes, [out("output0", [1, N, 4 + C])],
                      {"geometry": geometry(True)[np.newaxis]})

    def rtdetr2():
        nodes: list = []
        _scores(helper, nodes)
        nodes += [
            helper.make_node("Transpose", ["scores"], ["per_query"], perm=[0, 2, 1]),  # [1, N, C]
            helper.make_node("Reshape", ["per_query", "shape_flat"], ["flat"]),  # [1, N*C]
            helper.make_node("TopK", ["flat", "k"], ["top_scores", "top_index"], axis=1),
            helper.make_node("Mod", ["top_index", "classes"], ["labels"]),
            helper.make_node("Div", ["top_index", "classes"], ["query"]),
            helper.make_node("Gather", ["boxes_norm", "query"], ["gathered"], axis=1),  # [1, 1, Q, 4]
            helper.make_node("Squeeze", ["gathered", "axis1"], ["picked"]),  # [1, Q, 4]
            helper.make_node("Cast", ["orig_target_sizes"], ["sizes"], to=TensorProto.FLOAT),  # [1, 2]
            helper.make_node("Concat", ["sizes", "sizes"], ["scale"], axis=1),  # [1, 4]: w h w h
            helper.make_node("Unsqueeze", ["scale", "axis1"], ["scale3"]),
            helper.make_node("Mul", ["picked", "scale3"], ["boxes"]),
            helper.make_node("Identity", ["top_scores"], ["scores_out"]),
        ]
        sizes = helper.make_tensor_value_info("orig_target_sizes", TensorProto.INT64, [1, 2])
        return _model(onnx, helper, numpy_helper, nodes,
                      [out("labels", [1, TOP_K], TensorProto.INT64), out("boxes", [1, TOP_K, 4]),
                       out("scores_out", [1, TOP_K])],
                      {"boxes_norm": xyxy(True)[np.newaxis], "shape_flat": np.array([1, N * C], np.int64),
                       "k": np.array([TOP_K], np.int64), "classes": np.array(C, np.int64),
                       "axis1": np.array([1], np.int64)},
                      extra_inputs=[sizes])

    def end2end():
        nodes: list = []
        _scores(helper, nodes)
        nodes += [
            helper.make_node("ReduceMax", ["scores"], ["best"], axes=[1], keepdims=0),  # [1, N]
            helper.make_node("ArgMax", ["scores"], ["best_class"], axis=1, keepdims=0),  # [1, N] int64
            helper.make_node("Cast", ["best_class"], ["class_f"], to=TensorProto.FLOAT),
            helper.make_node("Unsqueeze", ["best", "axis2"], ["best3"]),
            helper.make_node("Unsqueeze", ["class_f", "axis2"], ["class3"]),
            helper.make_node("Concat", ["boxes_px", "best3", "class3"], ["rows"], axis=2),  # [1, N, 6]
            helper.make_node("TopK", ["best", "k"], ["top_scores", "top_index"], axis=1),
            helper.make_node("Gather", ["rows", "top_index"], ["gathered"], axis=1),  # [1, 1, K, 6]
            helper.make_node("Squeeze", ["gathered", "axis1"], ["output0"]),
        ]
        return _model(onnx, helper, numpy_helper, nodes, [out("output0", [1, TOP_K, 6])],
                      {"boxes_px": xyxy(False)[np.newaxis], "k": np.array([TOP_K], np.int64),
                       "axis1": np.array([1], np.int64), "axis2": np.array([2], np.int64)})

    builders = {
        "yolov8": yolov8, "yolov5": yolov5, "rtdetr": rtdetr, "rtdetr2": rtdetr2, "end2end": end2end,
        "metadata": lambda: yolov8(metadata={"names": str(dict(enumerate(LABELS))), "imgsz": f"[{SIDE}, {SIDE}]",
                                             "task": "detect"}),
        "dynamic": lambda: yolov8(dynamic=True),
    }
    folders = {}
    for name, build in builders.items():
        if names is not None and name not in names:
            continue
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        onnx.save(build(), str(folder / "model.onnx"))
        if name != "metadata":
            (folder / "labels.txt").write_text("\n".join(LABELS) + "\n", encoding="utf-8")
        folders[name] = folder
    return folders


def build_tflite_end2end(tf, root: Path) -> Path:
    """The end-to-end layout as a TFLite model (NHWC input, the same cells and scores, TopK
    inside), converted by TensorFlow: a folder with model.tflite + labels.txt."""
    spec = tf.TensorSpec([1, SIDE, SIDE, 3], tf.float32)
    boxes = tf.constant(xyxy(False)[np.newaxis])  # [1, N, 4]

    class EndToEnd(tf.Module):
        @tf.function(input_signature=[spec])
        def __call__(self, x):
            pooled = tf.nn.avg_pool2d(x, CELL, CELL, "VALID")  # [1, G, G, 3]
            scores = tf.reshape(pooled, [1, N, C])
            best = tf.reduce_max(scores, axis=2)  # [1, N]
            best_class = tf.cast(tf.argmax(scores, axis=2), tf.float32)
            rows = tf.concat([boxes, best[:, :, None], best_class[:, :, None]], axis=2)  # [1, N, 6]
            _, index = tf.math.top_k(best, k=TOP_K)
            return tf.gather(rows, index, axis=1, batch_dims=1)  # [1, K, 6]

    module = EndToEnd()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([module.__call__.get_concrete_function()], module)
    folder = root / "tflite_end2end"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.tflite").write_bytes(converter.convert())
    (folder / "labels.txt").write_text("\n".join(LABELS) + "\n", encoding="utf-8")
    return folder


def picture(width: int, height: int, squares: list[tuple[str, tuple[int, int, int, int]]],
            background: int = 40) -> np.ndarray:
    """A uint8 RGB picture (height, width, 3), dark grey, with coloured rectangles: (label,
    (x0, y0, x1, y1) in pixels), each filled with its class's colour."""
    image = np.full((height, width, 3), background, np.uint8)
    for label, (x0, y0, x1, y1) in squares:
        image[y0:y1, x0:x1] = COLOURS[label]
    return image
