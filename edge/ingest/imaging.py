"""Decode a camera frame into the RGB array a model wants, the same way training did.

Order matters for parity with the trainer: decode (JPEG draft mode first, to shrink big
frames by a power of two in the decoder itself while staying >= 2x the model input), apply the
EXIF orientation, convert to RGB (greyscale and IR night frames included), then
`Image.resize(size, BILINEAR)`. Draft decoding is what makes 12-20 MP trail-camera frames cheap
on a Pi: the decoder skips most of the IDCT work instead of decoding every pixel and throwing
most of them away.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Larger than any trail camera (12-48 MP) but far below what exhausts a Pi's memory: a
# "decompression bomb" (tiny file, huge declared size) is rejected before any pixel is decoded.
MAX_PIXELS = 80_000_000
IMAGE_FORMATS = frozenset({"JPEG", "MPO", "PNG", "WEBP", "TIFF", "BMP"})
ORIENTATION = 0x0112  # EXIF tag
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp"})


class FrameError(Exception):
    """A frame that cannot be turned into model input; the message says why."""


@dataclass
class DecodedFrame:
    rgb: np.ndarray  # uint8 (height, width, 3) at the model's input size
    original_size: tuple[int, int]  # (width, height) as stored in the file
    image: Image.Image  # the opened (not decoded-to-full-size) image, for EXIF


def open_image(data: bytes) -> Image.Image:
    """Open (header only) with format and size checks; raises FrameError."""
    if not data:
        raise FrameError("empty file (0 bytes)")
    with warnings.catch_warnings():
        # Our own limit (below) decides; Pillow still refuses outright above 2x its limit.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
        except UnidentifiedImageError:
            raise FrameError("not an image Pillow can read") from None
        except Image.DecompressionBombError as error:
            raise FrameError(f"decompression bomb refused: {error}") from None
        except (OSError, ValueError, SyntaxError) as error:
            raise FrameError(f"unreadable image header: {error}") from None
    if image.format not in IMAGE_FORMATS:
        raise FrameError(f"unsupported image format {image.format}")
    width, height = image.size
    if width <= 0 or height <= 0:
        raise FrameError(f"invalid image size {width}x{height}")
    if width * height > MAX_PIXELS:
        raise FrameError(
            f"decompression bomb refused: {width}x{height} = {width * height / 1e6:.0f} MP exceeds {MAX_PIXELS / 1e6:.0f} MP"
        )
    return image


def decode(data: bytes | Image.Image, size: tuple[int, int], *, draft: bool = True) -> DecodedFrame:
    """Bytes of a frame → uint8 RGB at `size` (width, height). Raises FrameError. An already
    decoded RGB picture (a video clip's sampled frame, edge/ingest/clips.py) takes the same
    path after decoding: it is not encoded to JPEG and decoded again."""
    image = data if isinstance(data, Image.Image) else open_image(data)
    original_size = image.size
    side = 2 * max(size)
    rgb = load_oriented(image, (side, side) if draft else None)
    try:
        if rgb.size != size:
            rgb = rgb.resize(size, Image.Resampling.BILINEAR)
        array = np.asarray(rgb, dtype=np.uint8)
    except (OSError, ValueError) as error:
        raise FrameError(f"corrupt or truncated image: {error}") from None
    if array.shape != (size[1], size[0], 3):
        raise FrameError(f"decoded to unexpected shape {array.shape}")
    return DecodedFrame(array, original_size, image)


def oriented_size(image: Image.Image) -> tuple[int, int]:
    """(width, height) after the EXIF orientation is applied (90° turns swap them); header only."""
    width, height = image.size
    return (height, width) if image.getexif().get(ORIENTATION, 1) in (5, 6, 7, 8) else (width, height)


def load_oriented(image: Image.Image, draft_size: tuple[int, int] | None) -> Image.Image:
    """An opened image → decoded, EXIF-oriented 8-bit RGB, in the one order every caller shares
    (draft, load, orientation, RGB), so the classifier's frames and the detector's tiles and
    crops are made alike. `draft_size` (stored orientation, before EXIF turns): for a JPEG, the
    decoder shrinks by the largest power of two (at most 8) that keeps the image >= that size;
    None decodes every pixel. Raises FrameError."""
    try:
        if draft_size is not None and image.format in ("JPEG", "MPO"):
            image.draft(None, draft_size)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image.load()
        # Only rotate when the EXIF says so (exif_transpose copies the image otherwise).
        orientation = image.getexif().get(ORIENTATION, 1)
        oriented = ImageOps.exif_transpose(image) if orientation in (2, 3, 4, 5, 6, 7, 8) else image
        return _to_rgb(oriented)
    except FrameError:
        raise
    except Image.DecompressionBombError as error:
        raise FrameError(f"decompression bomb refused: {error}") from None
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        # Pillow says "image file is truncated" / "broken data stream" for damaged JPEGs.
        raise FrameError(f"corrupt or truncated image: {error}") from None


def _to_rgb(image: Image.Image) -> Image.Image:
    """Greyscale and IR night frames (L, I;16, P, LA, RGBA, CMYK) → 8-bit RGB."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale: scale to 8 bits instead of clipping at 255.
        array = np.asarray(image, dtype=np.uint32)
        peak = 65535 if image.mode.startswith("I;16") else max(int(array.max()), 1)
        image = Image.fromarray((array * 255 // peak).astype(np.uint8), mode="L")
    return image.convert("RGB")
