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
    overlaps = np.asarray(iou(b, b)) if len(b) else np.zeros((0, 0))  # [N, N]: b is 2-D here
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


# A box edge this close to its tile's inner border (fraction of the tile's side) is cut by it.
CUT_TOLERANCE = 0.04
# Two halves of one bird line up along the border they were cut at: their extents along it
# overlap at least this much (intersection over union of the two intervals).
CUT_ALIGNMENT = 0.5

Cuts = tuple[bool, bool, bool, bool]  # top, left, bottom, right: that edge lies on an inner tile border


def join_tile_cuts(boxes: np.ndarray, scores: np.ndarray, cuts: list[Cuts]) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Join the pieces of a bird that tile borders cut apart into one box (their union).

    Why: a bird lying across the border of two tiles is seen by each tile only in part, and
    each calls its part a bird. When the full-frame pass misses the bird (small birds, the
    reason tiles exist), NMS sees two boxes that hardly overlap and containment sees neither
    inside the other: one bird counted twice. Measured on benchmarks/scenes.py frames, most of
    the extra boxes of the tiled route were such pairs. Two boxes are joined only when each is
    cut at the side facing the other (box A's bottom edge on its tile's lower border, box B's top
    edge on its tile's upper border), they meet or overlap across that border, and they line up
    along it: two separate birds side by side rarely touch the tile borders that way.

    boxes [N,4] (ymin, xmin, ymax, xmax) in frame coordinates, scores [N], `cuts` per box. A joined
    box is the union of its pieces with the best piece's score (a bird cut into four by a tile
    corner is one group of four). Returns (boxes, scores, origins): origins[k] is the index of
    the input box whose score (and class) output box k carries; boxes keep their input order.
    """
    b = [list(map(float, row)) for row in _as_boxes(boxes)] if len(boxes) else []
    s = [float(v) for v in np.asarray(scores, dtype=np.float64).reshape(-1)]
    c = [tuple(bool(v) for v in cut) for cut in cuts]
    if not len(b) == len(s) == len(c):
        raise ValueError(f"{len(b)} boxes, {len(s)} scores, {len(c)} cut flags")
    # The pieces of one bird are the connected groups of cut pairs (a bird under a tile corner
    # is four pieces, each paired with two neighbours), found on the pieces as they came.
    parent = list(range(len(b)))

    def root(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for i in range(len(b)):
        for j in range(len(b)):
            if i != j and _cut_pair(b[i], c[i], b[j], c[j]):  # type: ignore[arg-type]
                parent[root(j)] = root(i)
    groups: dict[int, list[int]] = {}
    for k in range(len(b)):
        groups.setdefault(root(k), []).append(k)
    out_boxes, out_scores, origins = [], [], []
    for members in sorted(groups.values(), key=lambda m: min(m)):
        best = max(members, key=lambda k: (s[k], -k))
        out_boxes.append([min(b[k][0] for k in members), min(b[k][1] for k in members),
                          max(b[k][2] for k in members), max(b[k][3] for k in members)])
        out_scores.append(s[best])
        origins.append(best)
    return np.asarray(out_boxes, dtype=np.float64).reshape(-1, 4), np.asarray(out_scores, dtype=np.float64), origins


def _cut_pair(a: list[float], a_cuts: Cuts, b: list[float], b_cuts: Cuts) -> bool:
    """Whether `a` (cut below or right) and `b` (cut above or left) are one bird's two pieces."""
    top, left, bottom, right = 0, 1, 2, 3
    # a above b: a's bottom and b's top are cut, b starts before a ends, x extents line up.
    if a_cuts[bottom] and b_cuts[top] and b[0] <= a[2] and a[0] < b[0] and _aligned(a[1], a[3], b[1], b[3]):
        return True
    # a left of b: a's right and b's left are cut, b starts before a ends, y extents line up.
    return bool(a_cuts[right] and b_cuts[left] and b[1] <= a[3] and a[1] < b[1] and _aligned(a[0], a[2], b[0], b[2]))


def _aligned(a0: float, a1: float, b0: float, b1: float) -> bool:
    inter = max(0.0, min(a1, b1) - max(a0, b0))
    union = max(a1, b1) - min(a0, b0)
    return union > 0 and inter / union >= CUT_ALIGNMENT
