"""Boxes and captions drawn on a picture, for people checking what the detector found
(`edge classify --annotate DIR`). Pillow's ImageDraw with its default font: nothing to install."""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

from edge.detect.model import Box

COLOURS = ((255, 64, 64), (64, 200, 255), (255, 210, 0), (120, 255, 120), (255, 120, 255))


def draw(image: Image.Image, boxes: Sequence[Box], captions: Sequence[str]) -> Image.Image:
    """A copy of `image` (as RGB) with each box (normalised to it) outlined and its caption
    written above it (inside the box when the box touches the top edge). The original is left
    alone: it may still be needed for the crops. Raises ValueError when the counts differ."""
    if len(boxes) != len(captions):
        raise ValueError(f"{len(boxes)} boxes but {len(captions)} captions")
    canvas = image.convert("RGB") if image.mode != "RGB" else image.copy()
    pen = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    width, height = canvas.size
    line = max(2, round(min(width, height) / 300))
    for number, (box, caption) in enumerate(zip(boxes, captions)):
        colour = COLOURS[number % len(COLOURS)]
        x0, y0 = round(box.xmin * width), round(box.ymin * height)
        x1, y1 = max(x0 + 1, round(box.xmax * width) - 1), max(y0 + 1, round(box.ymax * height) - 1)
        pen.rectangle((x0, y0, x1, y1), outline=colour, width=line)
        if caption:
            left, top, right, bottom = pen.textbbox((0, 0), caption, font=font)
            text_w, text_h = right - left + 4, bottom - top + 4
            ty = y0 - text_h if y0 - text_h >= 0 else y0 + line
            pen.rectangle((x0, ty, x0 + text_w, ty + text_h), fill=colour)
            pen.text((x0 + 2 - left, ty + 2 - top), caption, fill=(0, 0, 0), font=font)
    return canvas
