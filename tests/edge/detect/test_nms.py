"""Greedy NMS remembers every suppression (issue 22): runs in `make test-min` (no TensorFlow).

A box suppressed by the best box must stay suppressed after a second, separate box is kept; an
NMS that keeps only the latest kept box's overlaps would bring it back as a second bird."""

from __future__ import annotations

import numpy as np
import pytest

from edge.detect.boxes import iou, nms

A = [0.0, 0.0, 1.0, 1.0]      # the best box
D = [0.0, 5.0, 1.0, 6.0]      # a separate bird, second best: overlaps neither A nor C
C = [0.0, 0.1, 1.0, 1.1]      # a duplicate of A (IoU 0.82), third
E = [0.0, 5.1, 1.0, 6.1]      # a duplicate of D (IoU 0.82), fourth


@pytest.mark.parametrize(("scores", "kept"), [
    ([0.9, 0.8, 0.7, 0.6], [0, 1]),   # A, D kept; C (A's duplicate) and E (D's) stay suppressed
    ([0.9, 0.8, 0.6, 0.7], [0, 1]),   # the duplicates' order swapped: the same two birds
    ([0.6, 0.8, 0.9, 0.7], [2, 1]),   # C best now: A is C's duplicate, remembered past D
])
def test_a_box_suppressed_earlier_stays_suppressed_after_another_box_is_kept(scores: list[float],
                                                                            kept: list[int]) -> None:
    boxes = np.array([A, D, C, E])
    assert iou(np.array(A), np.array(C)) > 0.5 and iou(np.array(D), np.array(E)) > 0.5
    assert iou(np.array(D), np.array(C)) == 0.0
    assert nms(boxes, np.array(scores), 0.5).tolist() == kept


@pytest.mark.parametrize(("threshold", "kept"), [
    (0.5, [0, 1]),    # IoU(A, B) = 0.5 is not above 0.5: both kept
    (0.49, [0]),      # above the threshold: suppressed
])
def test_a_box_overlapping_by_exactly_the_threshold_is_kept(threshold: float, kept: list[int]) -> None:
    boxes = np.array([[0.0, 0.0, 1.0, 3.0], [0.0, 1.0, 1.0, 4.0]])  # intersection 2, union 4: IoU 0.5
    assert iou(boxes[0], boxes[1]) == 0.5
    assert nms(boxes, np.array([0.9, 0.8]), threshold).tolist() == kept
