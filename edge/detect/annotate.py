"""Boxes and captions drawn on a picture, for people checking what the detector found
(`edge classify --annotate DIR`, the web app's frames). Pillow's own font: nothing to install.

The captions grow with the picture: a caption is CAPTION_SHARE of the picture's shorter side
high (at least MIN_CAPTION_PX), so it reads the same whether a 640x480 frame is shown as it is
or a 4000x3000 one is shrunk to a screen (the fixed 11 px bitmap font was a speck on a
4000 px frame). Pillow's built-in scalable font needs FreeType (Pillow >= 10.1 wheels have it);
without FreeType the bitmap font is drawn small and enlarged by a whole factor.
"""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

from edge.detect.model import Box

COLOURS = ((255, 64, 64), (64, 200, 255), (255, 210, 0), (120, 255, 120), (255, 120, 255))
CAPTION_SHARE = 1 / 40  # caption font size : the picture's shorter side
MIN_CAPTION_PX = 12


def caption_size(width: int, height: int) -> int:
    """The caption's font size in pixels for a picture of this size."""
    return max(MIN_CAPTION_PX, round(min(width, height) * CAPTION_SHARE))


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        font = ImageFont.load_default(size=size)
    except (OSError, ImportError, TypeError):  # no FreeType
        return ImageFont.load_default()
    return font


def _label(caption: str, colour: tuple[int, int, int], size: int) -> Image.Image:
    """The caption as a filled label (text in black on the box's colour), `size` px text."""
    font = _font(size)
    pad = max(2, size // 6)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    # Pillow types the box as floats; for the fonts loaded here it is whole pixels.
    left, top, right, bottom = (int(edge) for edge in probe.textbbox((0, 0), caption, font=font))
    label = Image.new("RGB", (right - left + 2 * pad, bottom - top + 2 * pad), colour)
    ImageDraw.Draw(label).text((pad - left, pad - top), caption, fill=(0, 0, 0), font=font)
    if not isinstance(font, ImageFont.FreeTypeFont):  # a fixed bitmap font: enlarge it whole
        factor = max(1, round(size / max(1, bottom - top)))
        label = label.resize((label.width * factor, label.height * factor), Image.Resampling.NEAREST)
    return label


def draw(image: Image.Image, boxes: Sequence[Box], captions: Sequence[str]) -> Image.Image:
    """A copy of `image` (as RGB) with each box (normalised to it) outlined and its caption
    written above it (inside the box when the box touches the top edge; moved left to stay in
    the picture). The original is left alone: it may still be needed for the crops. Raises
    ValueError when the counts differ."""
    if len(boxes) != len(captions):
        raise ValueError(f"{len(boxes)} boxes but {len(captions)} captions")
    canvas = image.convert("RGB") if image.mode != "RGB" else image.copy()
    pen = ImageDraw.Draw(canvas)
    width, height = canvas.size
    line = max(2, round(min(width, height) / 300))
    size = caption_size(width, height)
    for number, (box, caption) in enumerate(zip(boxes, captions)):
        colour = COLOURS[number % len(COLOURS)]
        x0, y0 = round(box.xmin * width), round(box.ymin * height)
        x1, y1 = max(x0 + 1, round(box.xmax * width) - 1), max(y0 + 1, round(box.ymax * height) - 1)
        pen.rectangle((x0, y0, x1, y1), outline=colour, width=line)
        if caption:
            label = _label(caption, colour, size)
            ty = y0 - label.height if y0 - label.height >= 0 else y0 + line
            tx = max(0, min(x0, width - label.width))
            canvas.paste(label, (tx, ty))
    return canvas
