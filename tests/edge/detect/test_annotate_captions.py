"""Annotated pictures (`edge classify --annotate`, the web app's frames with boxes): a caption's
text grows with the picture, so it reads the same on a 4000x3000 frame shrunk to a screen as on
a 640x480 one shown as it is (the fixed 11 px bitmap font was a speck on a 4000 px frame).

Measured on the drawn pixels of a real photo (birds25): the text is every pixel of the caption's
label that is neither the photo nor the label's fill colour."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edge.detect.annotate import COLOURS, caption_size, draw
from edge.detect.model import Box

CAPTION = "1: Northern Cardinal 93 %"
BOX = Box(ymin=0.4, xmin=0.3, ymax=0.8, xmax=0.7, score=0.9, class_index=16, label="bird")


def _photo(birds25_dir: Path, size: tuple[int, int]) -> Image.Image:
    with Image.open(birds25_dir / "NORTHERN CARDINAL" / "1.jpg") as source:
        return source.convert("RGB").resize(size, Image.BILINEAR)


def _text_box(photo: Image.Image) -> tuple[int, int]:
    """(width, height) in pixels of the caption's drawn text above the box."""
    drawn = np.asarray(draw(photo, [BOX], [CAPTION]), dtype=np.int16)
    original = np.asarray(photo, dtype=np.int16)
    top = round(BOX.ymin * photo.height)
    changed = np.any(drawn != original, axis=2)
    fill = np.all(drawn == np.array(COLOURS[0]), axis=2)
    text = changed & ~fill
    text[top:, :] = False  # the caption lies above the box; below is the outline
    rows, cols = np.nonzero(text)
    assert rows.size, "no caption drawn above the box"
    return int(cols.max() - cols.min() + 1), int(rows.max() - rows.min() + 1)


def test_caption_text_grows_with_the_picture(birds25_dir: Path) -> None:
    small = _text_box(_photo(birds25_dir, (640, 480)))
    large = _text_box(_photo(birds25_dir, (4000, 3000)))
    scale = 3000 / 480
    # Height and width of the text in proportion to the picture (within rounding of the font).
    assert 0.8 * scale <= large[1] / small[1] <= 1.25 * scale, (small, large)
    assert 0.8 * scale <= large[0] / small[0] <= 1.25 * scale, (small, large)
    # Readable where it is shown: on a 4000x3000 frame shrunk to 1280 px wide, the text's capitals
    # are still more than 8 px high (the old font: 11 px of 3000, under 4 px on screen).
    assert large[1] * 1280 / 4000 > 8, large
    # And on the small one not tiny either: at least the 12 px floor's text height.
    assert small[1] >= 8, small


@pytest.mark.parametrize(("width", "height"), [(640, 480), (4000, 3000), (3000, 4000), (100, 60)])
def test_caption_size_follows_the_shorter_side(width: int, height: int) -> None:
    size = caption_size(width, height)
    assert size >= 12
    assert size == max(12, round(min(width, height) / 40))


def test_a_caption_at_the_right_edge_stays_in_the_picture(birds25_dir: Path) -> None:
    photo = _photo(birds25_dir, (640, 480))
    edge = Box(ymin=0.5, xmin=0.9, ymax=0.9, xmax=1.0, score=0.9, class_index=16, label="bird")
    drawn = np.asarray(draw(photo, [edge], [CAPTION]), dtype=np.int16)
    fill = np.all(drawn == np.array(COLOURS[0]), axis=2)
    fill[round(0.5 * 480):, :] = False
    cols = np.nonzero(fill)[1]
    # The label was moved left to fit: it starts left of the box and ends at the picture's edge.
    assert cols.min() < round(0.9 * 640) and cols.max() == 639
