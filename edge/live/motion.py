"""The motion gate: is something moving in front of the camera?

A cheap test, run on a few frames a second of a stream that is mostly an empty feeder: each
frame is scaled down to a small grey copy (FFmpeg's swscale does it while converting, so the
full-size picture is never turned into RGB), compared with a background learnt as a running
average, and "moving" when enough of its pixels differ by more than a threshold. The average
follows slow changes (light, clouds, shadows) within `background_s`, so they stop counting as
motion; a bird arriving changes a block of pixels at once. This is the classic approach of
Frigate's and motion's detectors, without their masks and contours: the detector behind the gate
decides what moved; the gate only decides whether it is worth asking.
"""

from __future__ import annotations

import numpy as np


class MotionGate:
    """Frame differencing against a running-average background of small grey frames.

    `pixel_threshold`: grey levels (0-255) a pixel must differ by to count as changed;
    `motion_threshold`: the share of changed pixels that means motion; `alpha`: how much of each
    new frame goes into the background (1 / (background_s x motion_fps))."""

    def __init__(self, pixel_threshold: int, motion_threshold: float, alpha: float) -> None:
        self.pixel_threshold = float(pixel_threshold)
        self.motion_threshold = float(motion_threshold)
        self.alpha = min(1.0, max(0.0, float(alpha)))
        self._background: np.ndarray | None = None
        self.last_changed = 0.0  # share of pixels changed in the last frame looked at

    @classmethod
    def of(cls, live, motion_fps: float | None = None) -> MotionGate:
        """From a camera's [cameras.live] table."""
        fps = motion_fps if motion_fps is not None else live.motion_fps
        return cls(live.pixel_threshold, live.motion_threshold, 1.0 / max(1.0, live.background_s * fps))

    def reset(self) -> None:
        """Forget the background (a reconnect, an over-long episode): the next frame is the new one."""
        self._background = None

    def moving(self, grey: np.ndarray) -> bool:
        """Look at one small grey frame (uint8, 2-D); True when enough of it differs from the
        background. The first frame after a reset only becomes the background."""
        frame = grey.astype(np.float32, copy=False)
        background = self._background
        if background is None or background.shape != frame.shape:
            self._background = frame.copy()
            self.last_changed = 0.0
            return False
        difference = np.abs(frame - background)
        changed = float(np.count_nonzero(difference > self.pixel_threshold)) / difference.size
        # In place: no new full-size array per frame on a Pi.
        background += self.alpha * (frame - background)
        self.last_changed = changed
        return changed >= self.motion_threshold
