"""BirdFinder on the real COCO SSD and real bird photos pasted into wide frames
(benchmarks/scenes.py): where the boxes land, what tiling adds, one decode for an empty frame,
the JPEG draft scales, EXIF orientation, and crops identical to crop_birds'.

The scenes are deterministic (seeded); the particular seeds below were picked once by running
the finder over the first few, and each assertion states what that scene shows.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.scenes import Scene, background, compose
from edge.detect.annotate import draw
from edge.detect.boxes import iou
from edge.detect.finder import BirdFinder, FinderSettings, crop_birds, crops_of_frame
from edge.detect.model import Box, Detector, resolve_detector
from edge.ingest.imaging import ORIENTATION, FrameError, load_oriented, open_image

CROP = (224, 224)  # the AIY classifier's input: what the crops are cut for
MATCH_IOU = 0.3  # the pasted region is looser than a tight box around the bird (scenes.py)


@pytest.fixture(scope="module")
def detector(ssd_detector_dir: Path) -> Detector:
    return Detector(resolve_detector(ssd_detector_dir))


def _ious(scene: Scene, birds) -> np.ndarray:
    """[ground truth, found] IoU matrix."""
    truth = np.array([b.box for b in scene.birds]).reshape(-1, 4)
    found = np.array([b.box.coords for b in birds]).reshape(-1, 4)
    return iou(truth, found) if len(truth) and len(found) else np.zeros((len(truth), len(found)))


def _assert_crops(located, size=CROP) -> None:
    for bird in located.birds:
        assert bird.crop.shape == (size[1], size[0], 3) and bird.crop.dtype == np.uint8


@pytest.mark.parametrize(("fraction", "seed"), [(0.08, 0), (0.08, 2), (0.20, 2)])
def test_boxes_are_found_where_the_birds_were_pasted(detector: Detector, birds25_dir: Path, fraction: float, seed: int) -> None:
    scene = compose(birds25_dir, (1920, 1080), 1, (fraction,), seed=seed)
    located = BirdFinder(detector).locate(scene.jpeg(), CROP)
    assert len(located.birds) == 1
    assert _ious(scene, located.birds)[0, 0] >= MATCH_IOU
    assert located.original_size == (1920, 1080) and located.image.format == "JPEG"
    assert located.invokes == 7  # full frame + 3x2 tiles
    assert located.detector_ms > 0
    _assert_crops(located)
    x0, y0, x1, y1 = located.birds[0].crop_box
    assert 0 <= x0 < x1 <= 1920 and 0 <= y0 < y1 <= 1080 and abs((x1 - x0) - (y1 - y0)) <= 1  # square


def test_tiling_finds_a_small_bird_the_full_frame_pass_misses(detector: Detector, birds25_dir: Path) -> None:
    scene = compose(birds25_dir, (1920, 1080), 1, (0.03,), seed=3)  # one bird, 3 % of the frame
    data = scene.jpeg()
    whole = BirdFinder(detector, FinderSettings(tiles="off")).locate(data, CROP)
    assert whole.invokes == 1
    assert not (_ious(scene, whole.birds) >= MATCH_IOU).any()  # shrunk to 300x300 it is missed
    tiled = BirdFinder(detector, FinderSettings(tiles=(3, 2))).locate(data, CROP)
    assert tiled.invokes == 7
    assert len(tiled.birds) == 1 and _ious(scene, tiled.birds)[0, 0] >= MATCH_IOU
    # Detection ran on a half-size decode (tiles 369x300 >= the input); the 3 % bird's crop
    # needed more pixels than that, so the frame was decoded once more, at full size.
    assert tiled.decode_sizes == [(960, 540), (1920, 1080)]
    _assert_crops(tiled)


def test_two_birds_in_a_frame_are_two_birds(detector: Detector, birds25_dir: Path) -> None:
    scene = compose(birds25_dir, (1920, 1080), 2, (0.08, 0.20), seed=0)
    located = BirdFinder(detector).locate(scene.jpeg(), CROP)
    assert len(located.birds) == 2
    matrix = _ious(scene, located.birds)
    # Each pasted bird is matched by a different box.
    assert sorted(int(np.argmax(row)) for row in matrix) == [0, 1]
    assert (matrix.max(axis=1) >= MATCH_IOU).all()
    assert located.birds[0].box.score >= located.birds[1].box.score
    _assert_crops(located)


def test_a_frame_without_a_bird_costs_one_decode_and_gives_no_bird(detector: Detector) -> None:
    located = BirdFinder(detector).locate(Scene(background((1920, 1080), 0)).jpeg(), CROP)
    assert located.birds == []
    assert located.decode_sizes == [(960, 540)]
    assert located.invokes == 7


def test_a_12_megapixel_frame_is_never_decoded_whole_for_detection(detector: Detector, birds25_dir: Path) -> None:
    scene = compose(birds25_dir, (4000, 3000), 1, (0.20,), seed=0)
    data = scene.jpeg()
    tiled = BirdFinder(detector).locate(data, CROP)
    assert tiled.invokes == 7  # 3x2 tiles + the full frame
    # Tiles of about 385x416 at a quarter size: decoded once, one DCT step finer (half size),
    # the quarter-size picture its 2x2 reduction; the crop fits in that.
    assert tiled.decode_sizes == [(2000, 1500)]
    assert len(tiled.birds) == 1 and _ious(scene, tiled.birds)[0, 0] >= MATCH_IOU
    _assert_crops(tiled)
    # Without tiles detection needs only 500x375 (reduced from a quarter-size decode); the crop
    # needs a finer picture, yet not the full 12 MP: the bird's square crop is still >= 300 px
    # in the quarter-size decode already on hand, so there is no second decode.
    whole = BirdFinder(detector, FinderSettings(tiles="off")).locate(data, (300, 300))
    assert whole.decode_sizes == [(1000, 750)]
    assert len(whole.birds) == 1
    _assert_crops(whole, (300, 300))
    # Draft off: every pixel decoded (what the draft saves).
    full = BirdFinder(detector, FinderSettings(tiles="off", draft=False)).locate(data, CROP)
    assert full.decode_sizes == [(4000, 3000)]


def test_a_12_megapixel_frame_is_decoded_once_even_for_a_small_bird(detector: Detector, birds25_dir: Path) -> None:
    """Decode once: a 3 % bird's crop needs the half-size decode, which detection's picture was
    reduced from, so there is no second decode; the crops are crop_birds' on that decode (the
    trainer's crops_of_frame cuts the same), and the reduced picture is within a few grey
    levels of the quarter-size decode the JPEG decoder made for detection before."""
    scene = compose(birds25_dir, (4000, 3000), 1, (0.03,), seed=3)
    data = scene.jpeg()
    located = BirdFinder(detector).locate(data, CROP)
    assert located.decode_sizes == [(2000, 1500)]
    assert len(located.birds) == 1 and _ious(scene, located.birds)[0, 0] >= MATCH_IOU
    half = load_oriented(open_image(data), (2000, 1500))
    boxes = [b.box for b in located.birds]
    crops = crop_birds(half, boxes, CROP)
    for bird, crop, trainers in zip(located.birds, crops, crops_of_frame(data, boxes, CROP)):
        assert np.array_equal(bird.crop, crop) and np.array_equal(trainers, crop)
    reduced = np.asarray(half.reduce(2), dtype=np.int16)
    quarter = np.asarray(load_oriented(open_image(data), (1000, 750)), dtype=np.int16)
    assert reduced.shape == quarter.shape == (750, 1000, 3)
    assert np.abs(reduced - quarter).mean() < 2.0


def test_a_large_birds_crop_from_the_reduced_picture_is_the_quarter_decodes_within_a_tolerance(
        detector: Detector, birds25_dir: Path) -> None:
    """A crop that the quarter-size picture can give comes from it, as before; that picture is
    now the half-size decode's 2x2 reduction: the crop is within a few grey levels of the one
    the separate quarter-size decode gave."""
    scene = compose(birds25_dir, (4000, 3000), 1, (0.20,), seed=0)
    data = scene.jpeg()
    located = BirdFinder(detector).locate(data, CROP)
    assert len(located.birds) == 1
    boxes = [b.box for b in located.birds]
    reduced = load_oriented(open_image(data), (2000, 1500)).reduce(2)
    assert np.array_equal(located.birds[0].crop, crop_birds(reduced, boxes, CROP)[0])
    before = crop_birds(load_oriented(open_image(data), (1000, 750)), boxes, CROP)[0]
    difference = np.abs(located.birds[0].crop.astype(np.int16) - before.astype(np.int16))
    assert difference.mean() < 3.0 and np.percentile(difference, 99) < 30


def test_crops_equal_crop_birds_on_the_same_decoded_image(detector: Detector, birds25_dir: Path) -> None:
    scene = compose(birds25_dir, (1920, 1080), 2, (0.08, 0.20), seed=0)
    data = scene.jpeg()
    settings = FinderSettings()
    located = BirdFinder(detector, settings).locate(data, CROP)
    assert located.birds
    decoded = load_oriented(open_image(data), located.decode_sizes[-1])  # the trainer's side
    assert decoded.size == located.decode_sizes[-1]
    crops = crop_birds(decoded, [b.box for b in located.birds], CROP, settings.crop_margin)
    for bird, crop in zip(located.birds, crops):
        assert np.array_equal(bird.crop, crop)


def test_exif_orientation_is_applied_before_detection(detector: Detector, birds25_dir: Path) -> None:
    scene = compose(birds25_dir, (1920, 1080), 2, (0.08, 0.20), seed=0)
    upright = BirdFinder(detector).locate(scene.jpeg(), CROP)
    # Stored turned a quarter, with the EXIF tag (6) that turns it back for display.
    stored = scene.image.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    buffer = io.BytesIO()
    stored.save(buffer, format="JPEG", quality=90, exif=exif.tobytes())
    turned = BirdFinder(detector).locate(buffer.getvalue(), CROP)
    assert turned.original_size == (1080, 1920)  # as stored
    assert turned.decode_sizes[0] == (960, 540)  # as displayed
    assert len(turned.birds) == len(upright.birds) == 2
    for a, b in zip(turned.birds, upright.birds):
        np.testing.assert_allclose(a.box.coords, b.box.coords, atol=0.02)


def test_png_frames_are_decoded_whole_and_bad_bytes_are_frame_errors(detector: Detector, birds25_dir: Path) -> None:
    scene = compose(birds25_dir, (960, 540), 1, (0.20,), seed=1)
    buffer = io.BytesIO()
    scene.image.save(buffer, format="PNG")
    located = BirdFinder(detector).locate(buffer.getvalue(), CROP)
    assert located.decode_sizes == [(960, 540)]  # no draft for PNG; 960x540 gets 2x1 tiles
    assert located.invokes == 3
    assert len(located.birds) == 1 and _ious(scene, located.birds)[0, 0] >= MATCH_IOU
    finder = BirdFinder(detector)
    with pytest.raises(FrameError, match="not an image"):
        finder.locate(b"definitely not a picture", CROP)
    with pytest.raises(FrameError, match="corrupt or truncated"):
        finder.locate(scene.jpeg()[:5000], CROP)
    with pytest.raises(FrameError, match="empty file"):
        finder.locate(b"", CROP)


def test_bad_settings_fail_when_the_finder_is_built(detector: Detector) -> None:
    with pytest.raises(ValueError, match="overlap"):
        BirdFinder(detector, FinderSettings(tile_overlap=0.95))
    with pytest.raises(ValueError, match="COLSxROWS"):
        BirdFinder(detector, FinderSettings(tiles="lots"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="containment"):
        BirdFinder(detector, FinderSettings(containment=0.0))


def test_annotate_draws_boxes_and_captions_on_a_copy() -> None:
    picture = Image.new("RGB", (400, 300), (0, 0, 0))
    boxes = [Box(0.5, 0.25, 0.9, 0.75, 0.9, 15, "bird"), Box(0.0, 0.0, 0.2, 0.2, 0.6, 15, "bird")]
    drawn = draw(picture, boxes, ["robin 0.91", "wren 0.60"])
    assert drawn.size == picture.size and drawn is not picture
    assert picture.getpixel((100, 200)) == (0, 0, 0)  # the original is untouched
    pixels = np.asarray(drawn)
    assert pixels[150:270, 100].any(axis=1).all()  # the left edge of the first box is drawn
    assert pixels[200, 150:250].sum() == 0  # its inside is not filled
    assert pixels[130:150, 100:160].any()  # its caption sits above it
    with pytest.raises(ValueError, match="2 boxes but 1 captions"):
        draw(picture, boxes, ["one"])


def test_a_bird_cut_by_a_tile_border_is_one_bird(detector: Detector, birds25_dir: Path) -> None:
    """Scene 25 of the benchmark's set: two birds, each seen only in pieces by the tiles on
    either side of a border (the full-frame pass finds neither); each is one box once joined."""
    from benchmarks.scenes import scene_set

    scene = scene_set(birds25_dir, (1920, 1080), count=60, seed=0)[25]
    assert len(scene.birds) == 2
    located = BirdFinder(detector).locate(scene.jpeg(), CROP)
    matrix = _ious(scene, located.birds)
    assert len(located.birds) == 2
    assert ((matrix >= MATCH_IOU).sum(axis=1) == 1).all() and ((matrix >= MATCH_IOU).sum(axis=0) == 1).all()


def test_tiles_fitted_ahead_on_the_worker_give_the_same_birds(detector: Detector, birds25_dir: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """With `fit_ahead` each next tile is cut and fitted on the finder's worker thread while the
    detector runs on the one before: the same pixels, so the same boxes, scores and crops as
    fitting them in turn, and every tile's fitting (not the full frame's) off the caller's thread."""
    import threading

    scene = compose(birds25_dir, (1920, 1080), 2, (0.03, 0.08), seed=3)
    data = scene.jpeg()
    fitted_on: list[str] = []
    real_fit = detector.fit

    def fit(picture):
        fitted_on.append(threading.current_thread().name)
        return real_fit(picture)

    monkeypatch.setattr(detector, "fit", fit)
    caller = threading.current_thread().name
    in_turn = BirdFinder(detector, fit_ahead=False).locate(data, CROP)
    assert fitted_on == [caller] * 7
    fitted_on.clear()
    ahead = BirdFinder(detector, fit_ahead=True).locate(data, CROP)
    assert fitted_on[0] == caller  # the full frame's overview, which the night check reads
    assert len(fitted_on) == 7 and all(name.startswith("trailcam-fit") for name in fitted_on[1:]), fitted_on
    assert in_turn.birds and [b.box for b in ahead.birds] == [b.box for b in in_turn.birds]
    assert all(np.array_equal(a.crop, b.crop) for a, b in zip(ahead.birds, in_turn.birds))
    assert ahead.invokes == in_turn.invokes == 7
