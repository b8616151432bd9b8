"""Cutting a wide frame into overlapping tiles so that a small bird stays big enough to detect.

A detector sees a fixed small input (300x300 for the COCO SSD). A 1920x1080 frame shrunk to it
leaves a bird covering 3 % of the frame about 40 pixels wide, which it mostly misses; the same
bird in one of six overlapping tiles is two and a half times bigger. The full-frame pass always
runs as well (it finds the big birds a tile would cut in half), so it is never one of the tiles.

The "auto" rule: per axis, as many tiles as the frame holds of twice the detector's input,
rounded to the nearest whole number (halves up), at least 1 and at most MAX_AUTO_TILES (3), and
at most MAX_AUTO_TOTAL (6) in all (the shorter axis gives way: 3x2 for landscape, 2x3 for
portrait frames); with the overlap each tile then comes out at about 2x the detector input or,
on big frames, larger. 1920x1080 against a 300x300 SSD: 1920 / 600 = 3.2 → 3 columns,
1080 / 600 = 1.8 → 2 rows (tiles 738x600); a 300x300 or 640x480 frame gets no tiles (1x1 is the
full-frame pass); a 4000x3000 (12 MP) frame 3x2, the same 7 invokes as 1920x1080. An explicit
grid of 1x1 is the full frame too, so it plans no tiles.

Why the cap: what a detector misses is a bird small *in proportion to the frame*, whatever the
pixel count; a 12 MP camera sees the same bird at the same fraction of its frame. Measured on
benchmarks/scenes.py 12 MP frames (birds at 3/8/20 % of the frame) with the COCO SSD: 7x5 tiles
(2x the input each) found 25 of 30 birds with 22 extra boxes (tiles seeing parts of a bird) in
36 invokes; 3x2 found 28 with 3 extra in 7; 3x3 27 with 11 in 10; 4x3 29 with 18 in 13.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

TileSetting = Literal["auto", "off"] | tuple[int, int]

MAX_GRID_SIDE = 16  # an explicit grid beyond 16x16 is a typo, not a plan
MAX_AUTO_TILES = 3  # per axis; see the module docstring for the measurement
MAX_AUTO_TOTAL = 6  # tiles in all: 3x2 found more birds than 3x3 on 12 MP frames, with fewer extra boxes
_GRID = re.compile(r"^\s*(\d+)\s*[xX×]\s*(\d+)\s*$")


@dataclass(frozen=True)
class Tile:
    """A rectangle of the decoded frame, in its pixels: x0, y0 inclusive, x1, y1 exclusive."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0


def parse_tiles(value: str | tuple[int, int]) -> TileSetting:
    """"auto", "off" or "COLSxROWS" (e.g. "3x2") → "auto" | "off" | (cols, rows).
    A (cols, rows) tuple is checked and passed through. Raises ValueError saying what is accepted."""
    if isinstance(value, tuple):
        cols, rows = value
        return _grid(int(cols), int(rows), repr(value))
    if not isinstance(value, str):
        raise ValueError(f"tiles: expected \"auto\", \"off\" or COLSxROWS such as \"3x2\", got {value!r}")  # noqa: TRY004 (config validators turn ValueError into a key error)
    folded = value.strip().casefold()
    if folded in ("auto", "off"):
        return folded  # type: ignore[return-value]
    match = _GRID.match(value)
    if not match:
        raise ValueError(f"tiles: {value!r} is not \"auto\", \"off\" or COLSxROWS such as \"3x2\"")
    return _grid(int(match.group(1)), int(match.group(2)), repr(value))


def _grid(cols: int, rows: int, shown: str) -> tuple[int, int]:
    if not (1 <= cols <= MAX_GRID_SIDE and 1 <= rows <= MAX_GRID_SIDE):
        raise ValueError(f"tiles: {shown}: columns and rows must each be 1..{MAX_GRID_SIDE}")
    return cols, rows


def _round_half_up(value: float) -> int:
    return math.floor(value + 0.5)


def tile_grid(frame_size: tuple[int, int], detector_input: tuple[int, int], tiles: TileSetting) -> tuple[int, int] | None:
    """The (cols, rows) a setting means for this frame, or None when only the full frame runs.
    "auto" is resolved here (see the module docstring), so a caller that decodes the frame at a
    smaller draft scale plans the same grid on the smaller image."""
    tiles = parse_tiles(tiles)
    if tiles == "off":
        return None
    if tiles == "auto":
        width, height = frame_size
        det_w, det_h = detector_input
        cols = min(MAX_AUTO_TILES, max(1, _round_half_up(width / (2 * det_w))))
        rows = min(MAX_AUTO_TILES, max(1, _round_half_up(height / (2 * det_h))))
        if cols * rows > MAX_AUTO_TOTAL:  # 3x3 → 3x2 (landscape) or 2x3 (portrait)
            if width >= height:
                rows = max(1, MAX_AUTO_TOTAL // cols)
            else:
                cols = max(1, MAX_AUTO_TOTAL // rows)
        grid = (cols, rows)
    else:
        grid = tiles
    return None if grid == (1, 1) else grid


def _spans(length: int, count: int, overlap: float) -> list[tuple[int, int]]:
    """`count` equal spans covering 0..length, neighbours sharing `overlap` of a span."""
    if count == 1:
        return [(0, length)]
    span = length / (count - (count - 1) * overlap)
    step = span * (1 - overlap)
    spans = []
    for i in range(count):
        start = round(i * step)
        end = length if i == count - 1 else round(i * step + span)
        spans.append((start, max(end, start + 1)))
    return spans


def plan_tiles(
    frame_size: tuple[int, int], detector_input: tuple[int, int], tiles: TileSetting, overlap: float = 0.2
) -> list[Tile]:
    """The tiles to run the detector on besides the full frame, row by row: [] for "off", for a
    1x1 grid and where "auto" finds the frame small enough; else cols x rows tiles of equal size
    covering the frame, neighbours sharing `overlap` (0..0.9) of a tile's width or height."""
    if not 0.0 <= overlap < 0.9:
        raise ValueError(f"tile overlap {overlap!r} must be in 0..0.9 (a fraction of a tile)")
    width, height = frame_size
    if width <= 0 or height <= 0:
        raise ValueError(f"invalid frame size {width}x{height}")
    grid = tile_grid(frame_size, detector_input, tiles)
    if grid is None:
        return []
    cols, rows = grid
    return [
        Tile(x0, y0, x1, y1)
        for (y0, y1) in _spans(height, rows, overlap)
        for (x0, x1) in _spans(width, cols, overlap)
    ]
