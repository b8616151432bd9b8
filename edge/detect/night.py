"""Infrared night frames recognised from their pixels, so they can be flagged and judged apart.

A trail camera at night switches its IR-cut filter out and lights the scene with infrared
LEDs: the frame is monochrome (its three channels carry the same picture) and lit like a flash,
bright near the camera and dark beyond it. Neither alone is enough: some cameras (the Reconyx
"NRC" frames of ../shared/data/trailcam-nobird) also shoot monochrome by day, evenly lit.

The rule (is_night), on the picture without its banner, shrunk to ANALYSIS_SIZE:
  - monochrome: each channel scaled to the mean of the three (a tinted infrared frame, slightly
    pink or green, is still one picture per channel), the largest mean absolute difference
    between two channels is below MONOCHROME_MAX grey levels;
  - lit like a flash: at least DARK_SHARE_MIN of its pixels are darker than DARK_LEVEL.

Measured on the 27 real frames of ../shared/data/trailcam-nobird (tests/edge/detect/test_night.py)
and the 125 birds25 day photos: infrared nights have a channel difference of 0.17-1.6 and
23-75 % dark pixels; the four monochrome day frames 0.17-0.27 and 0.6-3.4 %; colour frames a
channel difference of 4.7 (a washed-out day) to 113, birds25 at least 8.4. One frame the
manifest calls a night is not infrared: a colour dusk exposure (Reconyx at 18:35, ISO 400,
channel difference 5.0); it is not flagged, as what it shows is a colour frame.

The check reads about 12,000 pixels: well under a millisecond, on any decode of the frame.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

ANALYSIS_SIZE = (128, 96)  # (w, h) the picture is shrunk to (BILINEAR) before the statistics
MONOCHROME_MAX = 3.0  # grey levels between gain-matched channels; IR nights <= 1.6, colour >= 4.7
DARK_LEVEL = 55  # luma below this is a dark pixel
DARK_SHARE_MIN = 0.12  # IR nights have >= 23 % dark pixels, monochrome days <= 3.4 %


def channel_difference(rgb: np.ndarray) -> float:
    """The largest mean absolute difference between two gain-matched channels of an RGB array
    (grey levels): 0 for a grey picture, whatever its tint."""
    pixels = rgb.reshape(-1, 3).astype(np.float32)
    means = pixels.mean(axis=0)
    matched = pixels / np.maximum(means, 1.0) * float(means.mean())
    r, g, b = matched[:, 0], matched[:, 1], matched[:, 2]
    return float(max(np.abs(r - g).mean(), np.abs(g - b).mean(), np.abs(r - b).mean()))


def dark_share(rgb: np.ndarray) -> float:
    """Share of the pixels whose luma (ITU-R 601, as Pillow's "L") is below DARK_LEVEL."""
    pixels = rgb.reshape(-1, 3).astype(np.float32)
    luma = pixels @ np.asarray([0.299, 0.587, 0.114], np.float32)
    return float((luma < DARK_LEVEL).mean())


def is_night_rgb(rgb: np.ndarray) -> bool:
    """Whether an RGB array (uint8, h x w x 3, any size; small is enough) is an infrared night frame."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.size == 0:
        raise ValueError(f"expected an RGB array (height, width, 3), got shape {rgb.shape}")
    return channel_difference(rgb) < MONOCHROME_MAX and dark_share(rgb) >= DARK_SHARE_MIN


def is_night(picture: Image.Image) -> bool:
    """Whether a decoded picture (best without its banner: its white letters are not the scene)
    is an infrared night frame (module docstring)."""
    small = picture.convert("RGB")
    if small.size[0] > ANALYSIS_SIZE[0] or small.size[1] > ANALYSIS_SIZE[1]:
        small = small.resize(ANALYSIS_SIZE, Image.Resampling.BILINEAR)
    return is_night_rgb(np.asarray(small, dtype=np.uint8))
