"""Box arithmetic in pure NumPy: overlap, non-maximum suppression, boxes inside boxes.

Boxes are rows of (ymin, xmin, ymax, xmax), in any one unit (normalised or pixels), the order
the TF object-detection API and TFLite_Detection_PostProcess use.
"""

from __future__ import annotations

import numpy as np


def _as_boxes(boxes: np.ndarray) -> np.ndarray:
    array = np.asarray(boxes, dtype=np.float64)
    if array.ndim == 1:
        array = array[np.newaxis, :]
    if array.ndim != 2 or array.shape[1] != 4:
        raise ValueError(f"boxes must be shaped [N, 4] (ymin, xmin, ymax, xmax), got {list(np.shape(boxes))}")
    return array


def areas(boxes: np.ndarray) -> np.ndarray:
    """Area of each box (0 for an inverted or empty one)."""
    b = _as_boxes(boxes)
    return np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)


def intersections(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[N, M] areas of the intersection of every box of `a` with every box of `b`."""
    a, b = _as_boxes(a), _as_boxes(b)
    top = np.maximum(a[:, None, 0], b[None, :, 0])
    left = np.maximum(a[:, None, 1], b[None, :, 1])
    bottom = np.minimum(a[:, None, 2], b[None, :, 2])
    right = np.minimum(a[:, None, 3], b[None, :, 3])
    return np.clip(bottom - top, 0, None) * np.clip(right - left, 0, None)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray | float:
    """Intersection over union: a float for two single boxes ([4] and [4]), else the [N, M]
    matrix of every box of `a` against every box of `b`. Two empty boxes have IoU 0."""
    single = np.ndim(a) == 1 and np.ndim(b) == 1
    inter = intersections(a, b)
    union = areas(a)[:, None] + areas(b)[None, :] - inter
    result = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return float(result[0, 0]) if single else result


def _best_first(scores: np.ndarray) -> np.ndarray:
    # Stable: equal scores keep their input order, so the result never depends on sort internals.
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression: the best box stays, every box overlapping a kept box by
    IoU > iou_threshold goes. Returns the kept indices into `boxes`, best score first."""
    b = _as_boxes(boxes) if len(boxes) else np.zeros((0, 4))
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(b) != len(s):
        raise ValueError(f"{len(b)} boxes but {len(s)} scores")
    order = _best_first(s)
    overlaps = iou(b, b) if len(b) else np.zeros((0, 0))
    suppressed = np.zeros(len(b), dtype=bool)
    kept = []
    for index in order:
        if suppressed[index]:
            continue
        kept.append(index)
        suppressed |= overlaps[index] > iou_threshold
    return np.asarray(kept, dtype=np.int64)


def suppress_contained(boxes: np.ndarray, scores: np.ndarray, containment: float = 0.8) -> np.ndarray:
    """Drop every box lying mostly inside a bigger kept box: intersection / its own area >=
    `containment`. Returns the kept indices, best score first.

    Why: a tile that sees only half a bird still calls it a bird, with a box around the half.
    NMS keeps it (its IoU with the whole bird's box is low because the boxes differ in size);
    measured on tiled frames, such part-boxes were where the false "second birds" came from.
    The bigger box wins whatever the scores: the whole bird is the better crop to classify.
    Boxes are visited biggest first, so a box can only be removed by one that is kept.
    """
    b = _as_boxes(boxes) if len(boxes) else np.zeros((0, 4))
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(b) != len(s):
        raise ValueError(f"{len(b)} boxes but {len(s)} scores")
    area = areas(b) if len(b) else np.zeros(0)
    inter = intersections(b, b) if len(b) else np.zeros((0, 0))
    by_size = np.argsort(-area, kind="stable")
    kept: list[int] = []
    for index in by_size:
        own = area[index]
        inside = any(
            area[k] > own and (own <= 0 or inter[index, k] / own >= containment) for k in kept
        )
        if not inside:
            kept.append(int(index))
    kept_array = np.asarray(kept, dtype=np.int64)
    return kept_array[_best_first(s[kept_array])] if len(kept_array) else kept_array
