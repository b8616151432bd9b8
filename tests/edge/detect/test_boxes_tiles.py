"""edge.detect's pure parts: box overlap, NMS, containment, the tile plan and the crop geometry."""

from __future__ import annotations

import numpy as np
import pytest

from edge.detect.boxes import iou, nms, suppress_contained
from edge.detect.finder import FinderSettings, crop_box
from edge.detect.model import Box, _tell_classes
from edge.detect.tiles import Tile, parse_tiles, plan_tiles, tile_grid


def test_iou_of_single_boxes_and_of_box_sets() -> None:
    a = np.array([0.0, 0.0, 1.0, 1.0])
    b = np.array([0.0, 0.5, 1.0, 1.5])
    assert iou(a, b) == pytest.approx(0.5 / 1.5)
    assert iou(a, a) == 1.0
    assert iou(a, np.array([2.0, 2.0, 3.0, 3.0])) == 0.0
    assert iou(np.zeros(4), np.zeros(4)) == 0.0  # two empty boxes: no division by zero
    matrix = iou(np.stack([a, b]), np.stack([a, b, a]))
    assert matrix.shape == (2, 3)
    assert matrix[1, 0] == pytest.approx(1 / 3) and matrix[1, 1] == 1.0


def test_nms_keeps_the_best_of_overlapping_boxes_and_every_separate_one() -> None:
    boxes = np.array([
        [0.0, 0.0, 1.0, 1.0],     # 0: duplicate of 1, lower score
        [0.0, 0.05, 1.0, 1.05],   # 1: best of the pair
        [5.0, 5.0, 6.0, 6.0],     # 2: alone
        [0.0, 0.6, 1.0, 1.6],     # 3: IoU 0.4 with 0: kept at threshold 0.5
    ])
    scores = np.array([0.7, 0.9, 0.5, 0.6])
    assert nms(boxes, scores, 0.5).tolist() == [1, 3, 2]
    assert nms(boxes, scores, 0.25).tolist() == [1, 2]  # 3 overlaps 1 by IoU 0.29 > 0.25
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []
    # Equal scores keep input order (stable), so results never depend on sort internals.
    assert nms(boxes[[2, 2]], np.array([0.5, 0.5]), 0.5).tolist() == [0]
    with pytest.raises(ValueError, match="3 boxes but 2 scores"):
        nms(boxes[:3], scores[:2], 0.5)


def test_suppress_contained_drops_a_part_box_inside_a_bigger_box_whatever_its_score() -> None:
    whole = [0.1, 0.1, 0.6, 0.5]      # a whole bird, found by the full-frame pass
    half = [0.1, 0.1, 0.6, 0.3]       # a tile's half of it: wholly inside, higher score
    mostly = [0.1, 0.35, 0.6, 0.55]     # 0.75 of it inside `whole`: stays at containment 0.8
    other = [0.7, 0.7, 0.9, 0.9]      # a second bird elsewhere
    boxes = np.array([whole, half, mostly, other])
    scores = np.array([0.6, 0.9, 0.7, 0.55])
    assert suppress_contained(boxes, scores, 0.8).tolist() == [2, 0, 3]  # best score first
    assert suppress_contained(boxes, scores, 0.7).tolist() == [0, 3]
    # Two equal boxes: neither is bigger, both stay (NMS is what merges duplicates).
    assert sorted(suppress_contained(boxes[[0, 0]], np.array([0.5, 0.6])).tolist()) == [0, 1]


def test_parse_tiles_accepts_auto_off_and_a_grid_and_says_what_is_wrong() -> None:
    assert parse_tiles("auto") == "auto"
    assert parse_tiles(" OFF ") == "off"
    assert parse_tiles("3x2") == (3, 2)
    assert parse_tiles("4X3") == (4, 3)
    assert parse_tiles((2, 2)) == (2, 2)
    for bad in ("3", "3x", "x2", "three", "3x2x1", "", "-1x2"):
        with pytest.raises(ValueError, match=r"not \"auto\", \"off\" or COLSxROWS"):
            parse_tiles(bad)
    for bad in ("0x2", "17x1"):
        with pytest.raises(ValueError, match="must each be 1..16"):
            parse_tiles(bad)


def test_plan_tiles_cover_the_frame_with_the_overlap_and_never_include_the_full_frame() -> None:
    tiles = plan_tiles((1920, 1080), (300, 300), (3, 2), overlap=0.2)
    assert len(tiles) == 6
    assert tiles[0] == Tile(0, 0, 738, 600) and tiles[-1].x1 == 1920 and tiles[-1].y1 == 1080
    widths = {t.width for t in tiles}
    assert max(widths) - min(widths) <= 1  # equal tiles, up to rounding
    # Neighbours share 20 % of a tile.
    assert tiles[0].x1 - tiles[1].x0 == pytest.approx(0.2 * tiles[0].width, abs=1)
    assert tiles[0].y1 - tiles[3].y0 == pytest.approx(0.2 * tiles[0].height, abs=1)
    covered = np.zeros((1080, 1920), bool)
    for t in tiles:
        covered[t.y0:t.y1, t.x0:t.x1] = True
    assert covered.all()
    assert plan_tiles((1920, 1080), (300, 300), "off") == []
    assert plan_tiles((1920, 1080), (300, 300), (1, 1)) == []  # 1x1 is the full-frame pass
    assert len(plan_tiles((1920, 1080), (300, 300), (2, 1), overlap=0.0)) == 2
    with pytest.raises(ValueError, match="overlap"):
        plan_tiles((1920, 1080), (300, 300), (3, 2), overlap=0.95)


def test_auto_tiles_about_twice_the_detector_input_at_most_three_per_axis_and_six_in_all() -> None:
    assert tile_grid((1920, 1080), (300, 300), "auto") == (3, 2)
    assert plan_tiles((300, 300), (300, 300), "auto") == []
    assert plan_tiles((640, 480), (300, 300), "auto") == []
    assert tile_grid((4000, 3000), (300, 300), "auto") == (3, 2)  # 12 MP: 3 per axis at most, 6 in all
    assert tile_grid((3000, 4000), (300, 300), "auto") == (2, 3)  # portrait: the shorter axis gives way
    assert tile_grid((1080, 1920), (300, 300), "auto") == (2, 3)  # portrait frames turn the grid
    assert tile_grid((1920, 1080), (640, 640), "auto") == (2, 1)  # a YOLO's bigger input: fewer
    assert tile_grid((900, 300), (300, 300), "auto") == (2, 1)  # 1.5 rounds up, not to even
    assert len(plan_tiles((4000, 3000), (300, 300), "auto")) == 6


def _box(ymin: float, xmin: float, ymax: float, xmax: float) -> Box:
    return Box(ymin, xmin, ymax, xmax, 0.9, 15, "bird")


def test_crop_box_is_a_square_with_margin_shifted_inside_then_clamped() -> None:
    # 100x50 px box in the middle of a 1000x800 frame: square of 100 * 1.3 = 130 px.
    x0, y0, x1, y1 = crop_box(_box(0.5, 0.4, 0.5625, 0.5), (1000, 800), 0.15)
    assert (x1 - x0, y1 - y0) == (130, 130)
    assert (x0 + x1) / 2 == pytest.approx(450, abs=1) and (y0 + y1) / 2 == pytest.approx(425, abs=1)
    # At the left edge: shifted right, still square.
    assert crop_box(_box(0.5, 0.0, 0.6, 0.05), (1000, 800), 0.15) == (0, 388, 104, 492)
    # Taller than the frame once the margin is added: clamped to the frame's height.
    x0, y0, x1, y1 = crop_box(_box(0.0, 0.3, 1.0, 0.5), (1000, 800), 0.15)
    assert (y0, y1) == (0, 800) and x1 - x0 == 1000
    # crop_size's aspect, for a classifier that is not square.
    x0, y0, x1, y1 = crop_box(_box(0.5, 0.4, 0.5625, 0.5), (1000, 800), 0.0, aspect=2.0)
    assert (x1 - x0, y1 - y0) == (100, 50)


def test_finder_settings_defaults_are_the_configuration_defaults() -> None:
    """The library (FinderSettings) and the daemon ([detector]) search frames alike by default."""
    from edge.config.detector import DetectorConfig

    settings, config = FinderSettings(), DetectorConfig()
    assert (settings.tiles, settings.tile_overlap, settings.iou_threshold, settings.containment,
            settings.crop_margin, settings.draft) == (config.tiles, config.tile_overlap, config.iou_threshold,
                                                      config.containment, config.crop_margin, True)


def test_classes_and_scores_are_told_apart_by_their_values() -> None:
    classes = np.array([15.0, 0.0, 15.0])
    scores = np.array([0.81, 0.4, 0.35])
    assert _tell_classes(classes, scores) is True
    assert _tell_classes(scores, classes) is False
    assert _tell_classes(np.array([1.0, 0.0]), np.array([15.0, 2.0])) is False  # both whole: scores <= 1
    assert _tell_classes(np.zeros(3), np.zeros(3)) is None  # nothing to tell: the op order decides
    assert _tell_classes(np.zeros(0), np.zeros(0)) is None


def test_pieces_cut_by_a_tile_border_are_joined() -> None:
    from edge.detect.boxes import join_tile_cuts

    none = (False, False, False, False)
    right, left = (False, False, False, True), (False, True, False, False)
    # A bird across the border x = 0.40..0.35 of two tiles: left piece cut at its right edge,
    # right piece cut at its left edge, lined up vertically.
    halves = np.array([[0.20, 0.25, 0.50, 0.40], [0.22, 0.35, 0.48, 0.55]])
    boxes, scores, origins = join_tile_cuts(halves, np.array([0.6, 0.8]), [right, left])
    assert boxes.tolist() == [[0.20, 0.25, 0.50, 0.55]] and scores.tolist() == [0.8] and origins == [1]
    # The same boxes uncut (two birds side by side, seen whole): left alone.
    assert len(join_tile_cuts(halves, np.array([0.6, 0.8]), [none, none])[0]) == 2
    # Cut, but not lined up along the border (one high, one low): two birds.
    apart = np.array([[0.05, 0.25, 0.20, 0.40], [0.60, 0.35, 0.80, 0.55]])
    assert len(join_tile_cuts(apart, np.array([0.6, 0.8]), [right, left])[0]) == 2
    # Cut on the wrong side (the right piece's cut faces away): two birds.
    assert len(join_tile_cuts(halves, np.array([0.6, 0.8]), [right, right])[0]) == 2
    # A bird under a tile corner, in four pieces: one box.
    tl, tr = (False, False, True, True), (False, True, True, False)
    bl, br = (True, False, False, True), (True, True, False, False)
    quarters = np.array([[0.10, 0.10, 0.42, 0.42], [0.11, 0.38, 0.41, 0.70],
                         [0.38, 0.09, 0.70, 0.41], [0.39, 0.39, 0.69, 0.71]])
    boxes, _, _ = join_tile_cuts(quarters, np.array([0.7, 0.6, 0.5, 0.9]), [tl, tr, bl, br])
    assert boxes.tolist() == [[0.10, 0.09, 0.70, 0.71]]
