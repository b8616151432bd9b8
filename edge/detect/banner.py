"""The information strip a trail camera burns into its frames, found and learned per camera.

Trail cameras (Bushnell, Reconyx, Stealth Cam, ...) write make, temperature, moon phase and
date/time into a strip of rows at the top and/or bottom of every frame: a uniform background
(black, white, sometimes grey) with sparse high-contrast text and a logo. The detector should
never see it: its letters and logos are boxes waiting to happen, and its rows shrink the
picture the detector gets. BirdFinder crops the strip away before the full-frame pass and the
tiles and maps the boxes back to the whole frame (edge/detect/finder.py).

The rule (find_banner), on the grey rows of one edge of the frame, outermost row first:
  - the strip's background is the median of the outermost row;
  - a row belongs to the strip while at least FLAT_MIN of its pixels are within FLAT_TOLERANCE
    grey levels of that background and at most MID_MAX are neither background nor text (at
    least INK_CONTRAST away): a banner row is background and letters, with few values in
    between, where a picture row (even a dark, noisy night one) is mostly in-between values;
    over the whole run at most MID_MEAN_MAX are in between (a blown-out sky with tree trunks
    passes row by row, but its leaves put a quarter of its pixels in between);
  - the run must be at least MIN_FRACTION and at most MAX_FRACTION of the frame height (a
    longer run is a uniform picture, a sky or a dark night, and finds nothing on that side),
    and hold text: between MIN_INK and MAX_INK of its pixels at least INK_CONTRAST away from
    the background (a clipped sky or a black night has none).
Measured on the 27 real frames of ../shared/data/trailcam-nobird (tests/edge/detect/test_banner.py).

One frame can still fool the rule (a white sky under a white strip makes the strip look
taller), so a camera's banner is learned (BannerMemory): a finding becomes the camera's banner
only after CONFIRM_FRAMES frames in a row agree (within MATCH_TOLERANCE of the height), and
stays until as many frames in a row agree on something else; one odd frame neither sets nor
clears it. A camera not learned yet (its first frames, or a lone frame of `edge classify`) uses
each frame's own finding. A frame of another size resets what was learned: a camera set to
another resolution draws another strip.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from PIL import Image

from edge.detect.model import Box

BannerSetting = Literal["auto", "off"]

FLAT_TOLERANCE = 6  # grey levels around the background that count as background (JPEG ringing)
FLAT_MIN = 0.4  # share of a banner row that is background (big letters cover up to about half)
INK_CONTRAST = 80  # grey levels from the background that count as text or logo
MID_MAX = 0.3  # share of a banner row neither background nor text; night picture rows: about 0.55
MID_MEAN_MAX = 0.2  # the same over the whole strip: banners 0.004-0.16, a blown-out sky with trunks 0.26
MIN_FRACTION = 0.01  # a strip shorter than 1 % of the height is an edge artefact, not a banner
MAX_FRACTION = 0.15  # measured banners are 1.5 to 6.5 %; a longer uniform run is picture
MIN_INK = 0.003  # the strip holds text: at least this share of its pixels ...
MAX_INK = 0.5  # ... and at most this share (more is a picture of two tones, not letters)
ANALYSIS_WIDTH = 512  # columns kept for the row statistics (rows are never merged: precision)
CONFIRM_FRAMES = 3
MATCH_TOLERANCE = 0.01  # of the height: two findings this close are the same strip


@dataclass(frozen=True)
class Banner:
    """The strip at the top and at the bottom, each as a fraction of the frame's height (so it
    applies to any decode scale of the frame); 0 = none on that side."""

    top: float = 0.0
    bottom: float = 0.0

    def __bool__(self) -> bool:
        return self.top > 0 or self.bottom > 0

    def rows(self, height: int) -> tuple[int, int]:
        """(top, bottom) rows of an image `height` rows tall that the strip covers, rounded
        outwards so that a strip is never cut in half by the scale."""
        top = min(height, math.ceil(self.top * height - 1e-6)) if self.top > 0 else 0
        bottom = min(height - top, math.ceil(self.bottom * height - 1e-6)) if self.bottom > 0 else 0
        return top, bottom

    def matches(self, other: Banner) -> bool:
        return abs(self.top - other.top) <= MATCH_TOLERANCE and abs(self.bottom - other.bottom) <= MATCH_TOLERANCE


NO_BANNER = Banner()


def _edge_run(rows: np.ndarray, height: int) -> int:
    """How many rows of `rows` (outermost first, int16 grey) are a banner strip; 0 = none."""
    limit = int(MAX_FRACTION * height)
    background = float(np.median(rows[0]))
    distance = np.abs(rows - background)
    flat = (distance <= FLAT_TOLERANCE).mean(axis=1)
    ink = (distance >= INK_CONTRAST).mean(axis=1)
    banner_like = (flat >= FLAT_MIN) & (1.0 - flat - ink <= MID_MAX)
    breaks = np.flatnonzero(~banner_like)
    run = int(breaks[0]) if len(breaks) else len(rows)
    if run > limit or run < max(1, math.ceil(MIN_FRACTION * height)):
        return 0
    share = float(ink[:run].mean())
    between = 1.0 - float(flat[:run].mean()) - share
    return run if MIN_INK <= share <= MAX_INK and between <= MID_MEAN_MAX else 0


def find_banner(image: Image.Image) -> Banner:
    """The strip in this one frame (any decode scale of it), NO_BANNER when there is none.
    Reads only the top and bottom MAX_FRACTION (+ 1 row) of the frame, narrowed to
    ANALYSIS_WIDTH columns: a few milliseconds on a Raspberry Pi."""
    width, height = image.size
    if height < 20 or width < 20:
        return NO_BANNER
    band = min(height // 2, int(MAX_FRACTION * height) + 2)
    step = max(1, width // ANALYSIS_WIDTH)

    def grey(box: tuple[int, int, int, int]) -> np.ndarray:
        region = image.crop(box).convert("L")
        if step > 1:
            region = region.reduce((step, 1))
        return np.asarray(region, dtype=np.int16)

    top = _edge_run(grey((0, 0, width, band)), height)
    bottom = _edge_run(grey((0, height - band, width, height))[::-1], height)
    return Banner(top / height, bottom / height)


@dataclass
class _Camera:
    size: tuple[int, int]
    learned: Banner | None = None  # None: not learned yet
    candidate: Banner = NO_BANNER
    seen: int = 0  # frames in a row that agreed with the candidate
    found: list[Banner] = field(default_factory=list)  # the candidate's agreeing findings


class BannerMemory:
    """Each camera's banner, learned over its frames (see the module docstring). Thread-safe:
    `edge run` has one processing thread, but the finder may be shared."""

    def __init__(self, confirm_frames: int = CONFIRM_FRAMES) -> None:
        self.confirm_frames = confirm_frames
        self._cameras: dict[str, _Camera] = {}
        self._lock = threading.Lock()

    def observe(self, camera: str, size: tuple[int, int], found: Banner) -> Banner:
        """Record one frame's finding for `camera` (its oriented full size) and return the
        banner to crop from this frame: the learned one, or the frame's own until learned."""
        with self._lock:
            state = self._cameras.get(camera)
            if state is None or state.size != size:
                state = self._cameras[camera] = _Camera(size)
            if state.learned is not None and found.matches(state.learned):
                state.candidate, state.seen, state.found = NO_BANNER, 0, []
                return state.learned
            if state.seen and found.matches(state.candidate):
                state.seen += 1
                state.found.append(found)
            else:
                state.candidate, state.seen, state.found = found, 1, [found]
            if state.seen >= self.confirm_frames:
                # The widest of the agreeing findings: a strip covered whole beats a row saved.
                state.learned = Banner(max(b.top for b in state.found), max(b.bottom for b in state.found))
                state.candidate, state.seen, state.found = NO_BANNER, 0, []
                return state.learned
            return state.learned if state.learned is not None else found

    def learned(self, camera: str) -> Banner | None:
        """The camera's learned banner, None while it is not learned (for status and tests)."""
        with self._lock:
            state = self._cameras.get(camera)
            return None if state is None else state.learned


def uncrop(box: Box, top: int, picture_height: int, height: int) -> Box:
    """A box normalised to the picture (rows top..top+picture_height of a frame `height` rows
    tall) normalised to the whole frame; columns are never cropped."""
    if top == 0 and picture_height == height:
        return box
    return Box(ymin=(top + box.ymin * picture_height) / height, xmin=box.xmin,
               ymax=(top + box.ymax * picture_height) / height, xmax=box.xmax,
               score=box.score, class_index=box.class_index, label=box.label, kind=box.kind)
