"""Decoding as training did: EXIF orientation, greyscale/IR frames to RGB, draft mode for big
frames (>= 2x the input before the bilinear resize), and what draft decoding changes."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from edge.ingest.imaging import decode
from tests.edge.conftest import jpeg_bytes


def _half_red_half_blue(width: int, height: int) -> Image.Image:
    image = Image.new("RGB", (width, height), (0, 0, 230))
    image.paste((230, 0, 0), (0, 0, width // 2, height))  # left half red
    return image


def test_exif_orientation_applied_before_resize() -> None:
    upright = decode(jpeg_bytes(_half_red_half_blue(400, 300)), (64, 64)).rgb
    assert upright[32, 5, 0] > 200 and upright[32, 58, 2] > 200  # red left, blue right
    # Orientation 6: the stored pixels must be rotated 90° clockwise for display: red ends up on top.
    rotated = decode(jpeg_bytes(_half_red_half_blue(400, 300), orientation=6), (64, 64))
    assert rotated.original_size == (400, 300)
    assert rotated.rgb[5, 32, 0] > 200 and rotated.rgb[58, 32, 2] > 200


def test_greyscale_and_16bit_ir_frames_become_rgb() -> None:
    grey = Image.fromarray(np.tile(np.linspace(0, 255, 320, dtype=np.uint8), (240, 1)), mode="L")
    buffer = io.BytesIO()
    grey.save(buffer, "JPEG")
    rgb = decode(buffer.getvalue(), (32, 32)).rgb
    assert rgb.shape == (32, 32, 3) and np.array_equal(rgb[..., 0], rgb[..., 2])
    ir = Image.fromarray((np.tile(np.linspace(0, 65535, 64), (64, 1))).astype(np.uint16))
    buffer = io.BytesIO()
    ir.save(buffer, "PNG")
    rgb16 = decode(buffer.getvalue(), (64, 64)).rgb
    assert rgb16[0, -1, 0] >= 250 and rgb16[0, 0, 0] <= 5  # scaled to 8 bits, not clipped


def test_draft_keeps_at_least_twice_the_input_and_matches_full_decode(bird_photo) -> None:
    big = Image.open(bird_photo("NORTHERN CARDINAL", 3)).convert("RGB").resize((2000, 1500), Image.BICUBIC)
    data = jpeg_bytes(big, quality=90)
    opened = Image.open(io.BytesIO(data))
    opened.draft(None, (448, 448))
    assert opened.size == (1000, 750)  # scale 1/2: 1/4 would fall below 2x the 224 input
    drafted = decode(data, (224, 224), draft=True).rgb.astype(np.int16)
    full = decode(data, (224, 224), draft=False).rgb.astype(np.int16)
    assert drafted.shape == full.shape == (224, 224, 3)
    assert np.abs(drafted - full).mean() < 4.0  # same picture; draft's DCT scaling differs slightly
    # A frame already at the input size is passed through untouched (the Kaggle 224x224 case).
    small = Image.open(bird_photo("NORTHERN CARDINAL", 3)).convert("RGB")
    assert np.array_equal(decode(jpeg_bytes(small), (224, 224)).rgb,
                          np.asarray(Image.open(io.BytesIO(jpeg_bytes(small))).convert("RGB")))
