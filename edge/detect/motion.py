"""Where something moved between the frames of a camera's burst: the regions the detector
looks at closely instead of tiling the whole frame.

A trail camera shoots a burst of stills (3 to 10, a second or a few apart) when its PIR sensor
fires. What changed from one frame of a burst to the next is where a bird is; the rest of the
scene is still. Frigate finds motion the same way on video (frigate/motion/improved_motion.py:
a small blurred grey frame, an absolute difference against the background, a threshold, the
changed areas' bounding boxes) and runs its detector on square regions around it, each at least
the model's input and about 1.35-2x the motion box (frigate/util/image.py calculate_region,
frigate/util/object.py get_cluster_region). Here, for stills:

    grey_of(frame)              the frame shrunk to WORK_WIDTH columns, grey, box-blurred: what
                                is kept per camera; only the rows that are picture (not banner:
                                its clock changes every frame) in both frames are compared
    changed_pixels(old, new)    the difference after the global brightness change is taken out
                                (the old picture's grey levels mapped to the new one's by
                                matching their histograms: a flash, an auto-exposure step,
                                highlights clipped are not motion), each pixel changed when it
                                differs by more than `threshold` times the noise (the residual's
                                robust spread, at least MIN_DELTA grey levels)
    blocks_of(changed)          on a grid of BLOCK x BLOCK blocks: a block changed when
                                BLOCK_SHARE of its pixels did
    regions(...)                changed blocks, and the blocks under the camera's birds of the
                                previous frame (a bird that sits still is looked at again),
                                joined with their 8 neighbours and labelled (a breadth-first
                                labelling over a grid of at most 40 x 30 blocks: no OpenCV, no
                                SciPy on the edge); each group's box becomes a square of
                                REGION_SCALE x its longer side, at least the detector's input in
                                the frame's full-resolution pixels, moved inside the picture
    MotionMemory                per camera: the last frame's grey frame, capture time, size,
                                picture rows, night flag and birds (thread-safe; a detector reload forgets it)

When is a frame compared (compare): the camera's previous frame has the same size,
the same night flag (an infrared switch changes everything) and a capture time within
`window_s` of this one's (either order: a backlog need not come in time order). Otherwise
(first frame of a burst, a lone frame) the finder searches as without motion: the full frame
and its tiles. When the frame is compared:
  - more than MAX_CHANGED of the picture's blocks changed, or the noise left after the
    brightness matching is above MAX_NOISE (wind in all the leaves, a flash the matching cannot
    undo, the camera knocked, another scene altogether), or one region's motion spans more than
    MAX_GROUP of the picture, or there are more than `max_regions` regions: the motion says
    nothing useful, tiles as without motion ("scattered");
  - else the full frame plus the regions, and no tiles: a still frame with no bird before costs
    one detector invoke instead of 1 + 6.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import numpy as np
from PIL import Image, ImageFilter

MotionSetting = Literal["auto", "off"]

WORK_WIDTH = 320  # columns of the grey frame kept per camera (a 2 % bird is 6 of them)
BLOCK = 8  # pixels of the grey frame per block side: a 40 x 30 grid for a 4:3 frame
BLOCK_SHARE = 0.15  # share of a block's pixels that must change for the block to count
MIN_DELTA = 10.0  # grey levels: the least change that counts, whatever the measured noise
MAX_CHANGED = 0.25  # share of the blocks: more changed is the whole scene, not a bird
MAX_GROUP = 0.25  # share of the picture's area one group's box may cover: more is not a bird's hop
# Grey levels of residual noise above which two frames are not one still scene (the noise
# estimate itself is then the scene's change): bursts on one backdrop measure 0-0.2, two
# different real camera-trap frames 25-86, two generated foliage scenes 21-34.
MAX_NOISE = 8.0
REGION_SCALE = 1.5  # a region's side over its motion box's longer side (Frigate: 1.35-2)
MotionOutcome = Literal["off", "first", "scattered", "measured"]


@dataclass(frozen=True)
class MotionSettings:
    """`mode` "auto" | "off"; `window_s`: the longest time between two frames of a camera that
    are compared; `threshold`: how many times the noise a pixel must change by; `max_regions`:
    more regions than this means scattered motion (tiles instead)."""

    mode: MotionSetting = "auto"
    window_s: float = 5.0
    threshold: float = 4.0
    max_regions: int = 4

    def check(self) -> None:
        """Raises ValueError naming the setting."""
        if self.mode not in ("auto", "off"):
            raise ValueError(f'motion {self.mode!r} must be "auto" or "off"')
        if not 0.0 < self.window_s <= 3600.0:
            raise ValueError(f"motion_window_s {self.window_s!r} must be in (0, 3600] seconds")
        if not 1.0 <= self.threshold <= 50.0:
            raise ValueError(f"motion_threshold {self.threshold!r} must be in 1..50 (times the noise)")
        if not 1 <= self.max_regions <= 16:
            raise ValueError(f"motion_max_regions {self.max_regions!r} must be in 1..16")


@dataclass(frozen=True)
class Region:
    """A rectangle of the frame, normalised to it: (x0, y0, x1, y1), x1/y1 exclusive."""

    x0: float
    y0: float
    x1: float
    y1: float


@dataclass(frozen=True)
class Seen:
    """What a camera's last frame left for the next: its grey frame and what it was."""

    key: tuple[int, int, int, int]  # full frame (w, h) and grey frame (w, h): the same size class
    grey: np.ndarray  # uint8 (h, w), WORK_WIDTH columns, the whole frame (banner included)
    at: datetime | None
    night: bool
    rows: tuple[float, float] = (0.0, 1.0)  # the picture (the frame without its banner): top, end
    birds: tuple[Region, ...] = ()  # the birds found in it, normalised to the frame


@dataclass(frozen=True)
class Motion:
    """What motion made of one frame: `outcome` first (nothing to compare with), scattered
    (compared, but it tells nothing: tiles), measured (regions, no tiles); `changed`: share of
    the blocks that changed; `regions`: where to look closer (measured only)."""

    outcome: MotionOutcome
    regions: tuple[Region, ...] = ()
    changed: float = 0.0
    ms: float = 0.0


def grey_of(frame: Image.Image) -> np.ndarray:
    """The frame shrunk to WORK_WIDTH columns (its aspect kept), grey, box-blurred by one pixel
    (JPEG blocks and sensor noise are not motion): uint8 (h, w). The whole frame, so that a
    banner learned a row taller between two frames changes nothing; its rows are left out of
    the comparison instead (its clock changes every second)."""
    width, height = frame.size
    columns = min(WORK_WIDTH, width)
    rows = max(1, round(height * columns / width))
    small = frame.resize((columns, rows), Image.Resampling.BILINEAR) if (columns, rows) != frame.size else frame
    return np.asarray(small.convert("L").filter(ImageFilter.BoxBlur(1)), dtype=np.uint8)


def tone_curve(old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """A lookup table (256 floats): the grey level of `new` that each level of `old` became,
    by matching the two histograms (the level at the same rank). A monotone change of the whole
    picture (a gain, an offset, a gamma) maps exactly; a bird covers too few pixels to move the
    ranks. Highlights clipped by a brighter exposure do not quite (a shrunk pixel averages clipped
    and unclipped ones): what is left is scattered and ends as "scattered"."""
    levels = np.arange(256, dtype=np.float64)
    old_cdf = np.bincount(old.ravel(), minlength=256).cumsum() / old.size
    new_cdf = np.bincount(new.ravel(), minlength=256).cumsum() / new.size
    # The middle rank of each old level, looked up in new's ranks (strictly increasing for interp).
    middle = old_cdf - np.bincount(old.ravel(), minlength=256) / (2.0 * old.size)
    return np.interp(middle, new_cdf - 0.5 * np.diff(np.concatenate([[0.0], new_cdf])) + levels * 1e-12, levels)


def changed_pixels(old: np.ndarray, new: np.ndarray, threshold: float,
                   rows: slice = slice(None)) -> tuple[np.ndarray, float]:
    """(boolean (h, w), noise): the pixels of `new` that changed from `old` by more than
    `threshold` times the noise (at least MIN_DELTA), after the global brightness change is
    taken out (tone_curve), judged on `rows` only (the picture: banners left out; other rows
    are False). The noise is the residual's robust spread (1.4826 x its median absolute
    deviation) in grey levels."""
    changed = np.zeros(new.shape, bool)
    a, b = old[rows], new[rows]
    if not a.size:
        return changed, 0.0
    residual = b.astype(np.float32) - tone_curve(a, b).astype(np.float32)[a]
    spread = 1.4826 * float(np.median(np.abs(residual - np.median(residual))))
    changed[rows] = np.abs(residual) > max(MIN_DELTA, threshold * spread)
    return changed, spread


def blocks_of(pixels: np.ndarray) -> np.ndarray:
    """Boolean grid (ceil(h / BLOCK), ceil(w / BLOCK)): blocks where at least BLOCK_SHARE of the
    pixels are set (a partial block at the edge by its own pixels)."""
    height, width = pixels.shape
    rows, cols = -(-height // BLOCK), -(-width // BLOCK)
    padded = np.zeros((rows * BLOCK, cols * BLOCK), np.float32)
    padded[:height, :width] = pixels
    counts = np.zeros_like(padded)
    counts[:height, :width] = 1.0
    share = padded.reshape(rows, BLOCK, cols, BLOCK).sum(axis=(1, 3)) / counts.reshape(rows, BLOCK, cols, BLOCK).sum(axis=(1, 3))
    return share >= BLOCK_SHARE


def _dilate(grid: np.ndarray) -> np.ndarray:
    """Each set block and its 8 neighbours."""
    padded = np.pad(grid, 1)
    rows, cols = grid.shape
    out = np.zeros_like(grid)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            out |= padded[dy:dy + rows, dx:dx + cols]
    return out


def label(grid: np.ndarray) -> list[np.ndarray]:
    """The 8-connected groups of set blocks, each as an array of (row, col), in raster order of
    their first block (breadth-first; the grid is at most a few thousand blocks)."""
    seen = np.zeros_like(grid)
    rows, cols = grid.shape
    groups = []
    for start in zip(*np.nonzero(grid)):
        if seen[start]:
            continue
        seen[start] = True
        queue, members = deque([start]), []
        while queue:
            r, c = queue.popleft()
            members.append((r, c))
            for nr in (r - 1, r, r + 1):
                for nc in (c - 1, c, c + 1):
                    if 0 <= nr < rows and 0 <= nc < cols and grid[nr, nc] and not seen[nr, nc]:
                        seen[nr, nc] = True
                        queue.append((nr, nc))
        groups.append(np.asarray(members))
    return groups


def _paint(grid: np.ndarray, boxes: Sequence[Region]) -> np.ndarray:
    """A copy of `grid` with the blocks under each box (normalised) set."""
    out = grid.copy()
    rows, cols = grid.shape
    for box in boxes:
        r0, r1 = int(box.y0 * rows), min(rows, int(np.ceil(box.y1 * rows)))
        c0, c1 = int(box.x0 * cols), min(cols, int(np.ceil(box.x1 * cols)))
        out[max(0, r0):max(r0 + 1, r1), max(0, c0):max(c0 + 1, c1)] = True
    return out


def square_region(box: Region, frame_px: tuple[float, float], min_side: float,
                  rows: tuple[float, float] = (0.0, 1.0)) -> Region:
    """A square around `box` (normalised to a frame of `frame_px` full-resolution pixels):
    REGION_SCALE x its longer side, at least `min_side` pixels, moved inside the picture (the
    frame's `rows`, top and end, as fractions: its banner left out), clamped to it along an axis
    where it is bigger (Frigate's calculate_region)."""
    width, height = frame_px
    x0, x1, y0, y1 = box.x0 * width, box.x1 * width, box.y0 * height, box.y1 * height
    side = max(max(x1 - x0, y1 - y0) * REGION_SCALE, min_side)

    def place(centre: float, low: float, high: float) -> tuple[float, float]:
        if side >= high - low:
            return low, high
        start = min(max(centre - side / 2, low), high - side)
        return start, start + side

    left, right = place((x0 + x1) / 2, 0.0, width)
    top, bottom = place((y0 + y1) / 2, rows[0] * height, rows[1] * height)
    return Region(left / width, top / height, right / width, bottom / height)


def regions(changed: np.ndarray, birds: Sequence[Region], frame_px: tuple[float, float], min_side: float,
            rows: tuple[float, float] = (0.0, 1.0)) -> list[Region] | None:
    """The regions to search (module docstring): the changed blocks and the previous birds'
    blocks, grouped, each group's own blocks boxed and squared within the picture's `rows`;
    None when a group's box covers more than MAX_GROUP of the frame (changes strung all over
    it: light, wind)."""
    grid = _paint(changed, birds)
    grid_rows, grid_cols = grid.shape
    found = []
    for group in label(_dilate(grid)):
        own = group[grid[group[:, 0], group[:, 1]]]  # the group's blocks before the dilation
        if not len(own):
            continue
        (r0, c0), (r1, c1) = own.min(axis=0), own.max(axis=0) + 1
        if (r1 - r0) * (c1 - c0) > MAX_GROUP * grid_rows * grid_cols:
            return None
        box = Region(c0 / grid_cols, r0 / grid_rows, c1 / grid_cols, r1 / grid_rows)
        found.append(square_region(box, frame_px, min_side, rows))
    return found


def compare(previous: Seen | None, current: Seen, settings: MotionSettings, frame_px: tuple[float, float],
            min_side: float) -> Motion:
    """What motion says of `current` against the camera's `previous` frame (module docstring);
    regions normalised to the frame, inside the picture. `frame_px`: the frame's full size."""
    started = time.perf_counter()

    def done(outcome: MotionOutcome, found: Sequence[Region] = (), changed: float = 0.0) -> Motion:
        return Motion(outcome, tuple(found), changed, (time.perf_counter() - started) * 1000.0)

    if (previous is None or previous.key != current.key or previous.night != current.night
            or previous.at is None or current.at is None
            or abs((current.at - previous.at).total_seconds()) > settings.window_s):
        return done("first")
    pixels, noise = changed_pixels(previous.grey, current.grey, settings.threshold, _common_rows(previous, current))
    grid = blocks_of(pixels)
    share = float(grid.mean())
    if noise > MAX_NOISE or share > MAX_CHANGED:
        return done("scattered", changed=share)
    found = regions(grid, previous.birds, frame_px, min_side, current.rows)
    if found is None or len(found) > settings.max_regions:
        return done("scattered", changed=share)
    return done("measured", found, share)


def _common_rows(previous: Seen, current: Seen) -> slice:
    """The grey rows that are picture in both frames, one row in from each banner (the blur
    spreads a banner's letters over the next row)."""
    height = current.grey.shape[0]
    top = math.ceil(max(previous.rows[0], current.rows[0]) * height - 1e-9)
    end = math.floor(min(previous.rows[1], current.rows[1]) * height + 1e-9)
    top, end = top + (1 if top > 0 else 0), end - (1 if end < height else 0)
    return slice(top, max(top, end))


class MotionMemory:
    """Each camera's last frame (Seen), kept as long as the finder. Thread-safe."""

    def __init__(self) -> None:
        self._cameras: dict[str, Seen] = {}
        self._lock = threading.Lock()

    def last(self, camera: str) -> Seen | None:
        with self._lock:
            return self._cameras.get(camera)

    def keep(self, camera: str, seen: Seen) -> None:
        with self._lock:
            self._cameras[camera] = seen

    def forget(self) -> None:
        with self._lock:
            self._cameras.clear()
