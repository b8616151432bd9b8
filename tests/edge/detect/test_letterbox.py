"""Fitting a frame to the detector's input: letterbox (YOLO family) or stretch (TF SSDs), and the
boxes mapped back exactly (issue 21, item 2).

The synthetic detectors (tests/edge/detect/synthetic_detectors.py) see their 64x64 input as a 4x4
grid of 16-pixel cells and put a box on a cell that is bright. So a white rectangle drawn on a
frame exactly where a cell lands after fitting (letterboxed or stretched) is detected as that
cell, and the box mapped back must be the rectangle, exactly, in the frame's normalised
coordinates. Where the cell lands is worked out by hand in each case below; the padding (grey
114) is darker than a detection (mean brightness 0.45 < the 0.5 threshold).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edge.config import EdgeConfig
from edge.detect.finder import BirdFinder, FinderSettings
from edge.detect.model import LETTERBOX_GREY, Box, Detector, DetectorError, Placement, fit_input, resolve_detector
from tests.fixtures.models import _tensorflow


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tf = _tensorflow()
    from tests.edge.detect.synthetic_detectors import build_all

    return build_all(tf, tmp_path_factory.mktemp("letterbox-detectors"), names=("yolo_v8", "yolo_v5", "ssd"))


def _detector(synthetic: dict[str, Path], name: str, resize: str = "auto", **kwargs) -> Detector:
    birds = ("bird",) if name == "ssd" else ("animal",)
    return Detector(resolve_detector(synthetic[name], bird_labels=birds), resize=resize, **kwargs)  # type: ignore[arg-type]


def _picture(size: tuple[int, int], rect: tuple[int, int, int, int], background: int = 40) -> Image.Image:
    """A dark frame of `size` (w, h) with a white rectangle (x0, y0, x1, y1) in pixels."""
    pixels = np.full((size[1], size[0], 3), background, np.uint8)
    x0, y0, x1, y1 = rect
    pixels[y0:y1, x0:x1] = 255
    return Image.fromarray(pixels)


def _normalised(size: tuple[int, int], rect: tuple[int, int, int, int]) -> tuple[float, float, float, float]:
    width, height = size
    x0, y0, x1, y1 = rect
    return (y0 / height, x0 / width, y1 / height, x1 / width)


# (frame size, resize, the rectangle that lands exactly on one cell of the 64x64 input; the cells
# are of even index, "bird" for the SSD layout)
CASES = [
    # Wide 128x64 letterboxed: scaled by 0.5 to 64x32, 16 rows of grey above and below; cell
    # (row 2, col 2), input x 32..48, y 32..48, is frame x 64..96, y (32-16)*2..(48-16)*2.
    ((128, 64), "letterbox", (64, 32, 96, 64)),
    # Tall 64x128 letterboxed: scaled to 32x64, 16 columns of grey left and right; cell (3, 2),
    # input x 32..48, y 48..64, is frame x (32-16)*2..(48-16)*2, y 96..128.
    ((64, 128), "letterbox", (32, 96, 64, 128)),
    # Square 128x128: no padding either way; cell (1, 2) is frame x 64..96, y 32..64.
    ((128, 128), "letterbox", (64, 32, 96, 64)),
    # Stretched, x and y scale apart: wide 128x64 → cell (2, 2) is frame x 64..96, y 32..48;
    ((128, 64), "stretch", (64, 32, 96, 48)),
    # tall 64x128 → cell (3, 2) is frame x 32..48, y 96..128;
    ((64, 128), "stretch", (32, 96, 48, 128)),
    # square: the same as letterboxed.
    ((128, 128), "stretch", (64, 32, 96, 64)),
]


@pytest.mark.parametrize("name", ["yolo_v8", "yolo_v5", "ssd"])
@pytest.mark.parametrize(("size", "resize", "rect"), CASES)
def test_a_box_drawn_at_a_known_place_comes_back_there(synthetic: dict[str, Path], name: str,
                                                       size: tuple[int, int], resize: str,
                                                       rect: tuple[int, int, int, int]) -> None:
    """Pixel boxes (yolo_v8), normalised boxes (yolo_v5) and the SSD layout alike: either resize
    can be asked of either kind of detector."""
    detector = _detector(synthetic, name, resize)
    assert detector.resize == resize
    boxes = detector.detect_picture(_picture(size, rect))
    assert len(boxes) == 1
    assert boxes[0].coords == pytest.approx(_normalised(size, rect), abs=1e-9)
    assert boxes[0].score > 0.8  # the white cell (YOLOv5 layout: times its fixed class score 0.9)


def test_the_wrong_fit_puts_the_box_elsewhere(synthetic: dict[str, Path]) -> None:
    """The fit matters: the wide letterbox case's rectangle (frame y 32..64), stretched, covers
    two cells (input y 32..64) and comes back as two birds, each half of it."""
    size, rect = (128, 64), (64, 32, 96, 64)
    stretched = _detector(synthetic, "yolo_v8", "stretch").detect_picture(_picture(size, rect))
    assert sorted(b.coords for b in stretched) == [(0.5, 0.5, 0.75, 0.75), (0.75, 0.5, 1.0, 0.75)]


def test_auto_letterboxes_yolo_layouts_and_stretches_ssd_layouts(synthetic: dict[str, Path]) -> None:
    assert _detector(synthetic, "yolo_v8").resize == "letterbox"
    assert _detector(synthetic, "yolo_v5").resize == "letterbox"
    assert _detector(synthetic, "ssd").resize == "stretch"
    # Under auto, the letterboxed rectangle comes back exactly from a YOLO layout.
    size, rect = (128, 64), (64, 32, 96, 64)
    boxes = _detector(synthetic, "yolo_v8").detect_picture(_picture(size, rect))
    assert [b.coords for b in boxes] == [pytest.approx(_normalised(size, rect), abs=1e-9)]
    with pytest.raises(DetectorError, match="resize: expected one of auto, letterbox, stretch, got 'pad'"):
        _detector(synthetic, "yolo_v8", "pad")


def test_fit_input_pads_like_ultralytics() -> None:
    """Scale min(in_w / w, in_h / h), size rounded, padding split evenly, the odd pixel right and
    below (Ultralytics' LetterBox: top = round(dh - 0.1), bottom = round(dh + 0.1))."""
    frame = Image.new("RGB", (1920, 1080), (200, 10, 10))
    fitted, placement = fit_input(frame, (640, 640), letterbox=True)
    assert fitted.size == (640, 640) and placement == Placement((640, 640), 0, 140, 640, 360)
    pixels = np.asarray(fitted)
    assert (pixels[:140] == LETTERBOX_GREY).all() and (pixels[500:] == LETTERBOX_GREY).all()
    assert (pixels[140:500] == (200, 10, 10)).all()
    # 300x300 (the COCO SSD's input): 1920x1080 → 300x169 (168.75 rounded); 131 rows of padding,
    # 65 above and 66 below.
    _, odd = fit_input(frame, (300, 300), letterbox=True)
    assert odd == Placement((300, 300), 0, 65, 300, 169)
    _, tall = fit_input(frame.transpose(Image.Transpose.ROTATE_90), (300, 300), letterbox=True)
    assert tall == Placement((300, 300), 65, 0, 169, 300)
    # A picture of the input's aspect is scaled with no padding; stretch never pads.
    assert fit_input(Image.new("RGB", (1000, 1000)), (300, 300), letterbox=True)[1].whole
    stretched, whole = fit_input(frame, (300, 300), letterbox=False)
    assert stretched.size == (300, 300) and whole == Placement((300, 300), 0, 0, 300, 300) and whole.whole
    # A picture already at the input size is passed through untouched.
    same = Image.new("RGB", (300, 300))
    assert fit_input(same, (300, 300), letterbox=True)[0] is same


def test_boxes_are_unpadded_unscaled_and_clipped_to_the_frame() -> None:
    """1920x1080 letterboxed into 640x640 lies at y 140..500 of the input (scale 1/3)."""
    placement = Placement((640, 640), 0, 140, 640, 360)

    def box(y0: float, x0: float, y1: float, x1: float) -> Box:  # input pixels → normalised
        return Box(y0 / 640, x0 / 640, y1 / 640, x1 / 640, 0.9, 0, "animal")

    inside, straddling, in_padding = placement.to_picture([
        box(140, 320, 320, 480),  # frame y 0..540, x 960..1440
        box(100, 0, 200, 64),  # starts in the top padding: clipped at the frame's top edge
        box(450, 600, 560, 640),  # ends in the bottom padding: clipped at the bottom edge
    ])
    assert inside.coords == pytest.approx((0.0, 0.5, 0.5, 0.75), abs=1e-12)
    assert straddling.coords == pytest.approx((0.0, 0.0, 60 / 360, 0.1), abs=1e-12)
    assert in_padding.coords == pytest.approx((310 / 360, 600 / 640, 1.0, 1.0), abs=1e-12)
    # A box wholly in the padding is no bird of the frame; score, class and label travel along.
    assert placement.to_picture([box(0, 0, 100, 640), box(510, 10, 640, 20)]) == []
    assert inside.score == 0.9 and inside.class_index == 0 and inside.label == "animal"


@pytest.mark.parametrize(("resize", "rect"), [("letterbox", (224, 32, 256, 64)), ("stretch", (224, 32, 256, 48))])
def test_each_tile_is_fitted_the_same_way_and_mapped_back_to_the_frame(synthetic: dict[str, Path], resize: str,
                                                                       rect: tuple[int, int, int, int]) -> None:
    """A 256x64 frame in two 128x64 tiles: the rectangle lands on cell (2, 3) of the right-hand
    tile fitted by `resize` (tile x 96..128; y 32..64 letterboxed, 32..48 stretched). The
    full-frame pass sees it at a quarter of a cell, below the threshold."""
    detector = _detector(synthetic, "yolo_v8", resize, score_threshold=0.7)
    buffer = io.BytesIO()
    _picture((256, 64), rect).save(buffer, format="PNG")
    located = BirdFinder(detector, FinderSettings(tiles=(2, 1), tile_overlap=0.0)).locate(buffer.getvalue(), (32, 32))
    assert located.invokes == 3
    assert [b.box.coords for b in located.birds] == [pytest.approx(_normalised((256, 64), rect), abs=1e-9)]
    assert located.birds[0].crop.shape == (32, 32, 3)


def test_the_real_ssd_is_stretched_under_auto_exactly_as_before(ssd_detector_dir: Path, birds25_dir: Path) -> None:
    """The COCO SSD MobileNet was trained on stretched 300x300 input: auto keeps that, and
    detect_picture gives the very boxes the finder's old resize-then-detect gave (the composed
    scenes of test_finder.py and test_scenes.py then find what they found before)."""
    from benchmarks.scenes import compose

    detector = Detector(resolve_detector(ssd_detector_dir))
    assert detector.resize == "stretch"
    picture = compose(birds25_dir, (1920, 1080), 1, (0.20,), seed=2).image
    before = detector.detect(np.asarray(picture.resize(detector.input_size, Image.BILINEAR), dtype=np.uint8))
    assert before and detector.detect_picture(picture) == before


def test_the_configured_resize_reaches_the_detector(synthetic: dict[str, Path]) -> None:
    from edge.daemon.preflight import check_detector, load_configured_finder

    section = {"path": str(synthetic["yolo_v8"]), "bird_labels": ["animal"]}
    auto = EdgeConfig.model_validate({"detector": section})
    assert auto.detector.resize == "auto"
    finder = load_configured_finder(auto)
    assert finder is not None and finder.detector.resize == "letterbox"
    stretch = EdgeConfig.model_validate({"detector": {**section, "resize": "stretch"}})
    finder = load_configured_finder(stretch)
    assert finder is not None and finder.detector.resize == "stretch"
    findings, _ = check_detector(auto)
    assert "yolo outputs" in findings[0].message and "resize letterbox" in findings[0].message
