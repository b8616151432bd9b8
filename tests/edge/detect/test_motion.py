"""Motion regions between the frames of a camera's burst (edge/detect/motion.py) and the
finder's motion route (edge/detect/finder.py): birds25 photos pasted on real bird-free
camera-trap frames (../shared/data/trailcam-nobird), moving a little from frame to frame, and
the shared COCO SSD detector. Real pictures, real JPEG round trips, a real detector."""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from benchmarks.scenes import Scene, compose, species_photos
from edge.config import ConfigError, EdgeConfig, load_config
from edge.detect.analyse import load_configured_finder
from edge.detect.banner import find_banner
from edge.detect.boxes import iou
from edge.detect.finder import BirdFinder, FinderSettings
from edge.detect.model import Detector, resolve_detector
from edge.detect.motion import (
    MAX_CHANGED,
    MotionSettings,
    Region,
    Seen,
    blocks_of,
    compare,
    grey_of,
    label,
    square_region,
)

CROP = (224, 224)
T0 = datetime(2026, 5, 28, 6, 0, tzinfo=UTC)
# A bright empty day frame (1280x1024, a bottom banner), and a day frame with a squirrel (Reconyx banners).
EMPTY_DAY = ("md__test_images_island_conservation_camera_traps_dominicanrepublic_camara04_cam0425abril2015_"
             "dominicanrepublic_cam0425abril2015_20130824_043601_sunp5152.jpg")
SQUIRREL_DAY = "zamba__tests_assets_images_ena24_small_596.jpg"
SETTINGS = MotionSettings()
DETECTOR_SIDE = 300.0


def _backdrop(trailcam_nobird_dir: Path, name: str) -> Image.Image:
    with Image.open(trailcam_nobird_dir / name) as opened:
        return opened.convert("RGB")


def _scene(birds25_dir: Path, backdrop: Image.Image, size: tuple[int, int], boxes: list[tuple[int, int, int, int]],
           species: str = "EASTERN BLUEBIRD") -> Scene:
    """The backdrop at `size` with the same bird photo pasted into each pixel box."""
    source = species_photos(birds25_dir)[species][0]
    return compose(birds25_dir, size, len(boxes), (0.001,) * len(boxes), sources=[source] * len(boxes),
                   backdrop=backdrop, boxes=boxes)


def _seen(image: Image.Image, at: datetime | None, night: bool = False) -> Seen:
    """What the finder keeps of a frame: grey and small, with the rows of its picture (the frame
    without the banner, whose clock text changes from frame to frame)."""
    grey = grey_of(image)
    top, bottom = find_banner(image).rows(image.size[1])
    rows = (top / image.size[1], (image.size[1] - bottom) / image.size[1])
    return Seen((*image.size, grey.shape[1], grey.shape[0]), grey, at, night, rows)


def _frame_px(image: Image.Image) -> tuple[float, float]:
    return float(image.size[0]), float(image.size[1])


def _decoded(scene: Scene) -> Image.Image:
    """The scene through a JPEG round trip, as the finder sees it."""
    return Image.open(io.BytesIO(scene.jpeg())).convert("RGB")


def _config(tmp_path: Path, text: str) -> EdgeConfig:
    path = tmp_path / "edge.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path, environ={})


def _inside(region: Region, box: tuple[float, float, float, float]) -> bool:
    ymin, xmin, ymax, xmax = box
    return region.x0 <= xmin and region.y0 <= ymin and region.x1 >= xmax and region.y1 >= ymax


# ---- motion regions (no detector) ---------------------------------------------------------------


def test_a_bird_that_moves_makes_one_region_around_both_of_its_places(birds25_dir: Path,
                                                                      trailcam_nobird_dir: Path) -> None:
    backdrop = _backdrop(trailcam_nobird_dir, EMPTY_DAY)
    size = backdrop.size  # 1280x1024
    first = _scene(birds25_dir, backdrop, size, [(500, 400, 560, 460)])
    second = _scene(birds25_dir, backdrop, size, [(515, 395, 575, 455)])  # a hop of 15 px
    motion = compare(_seen(_decoded(first), T0), _seen(_decoded(second), T0 + timedelta(seconds=1)), SETTINGS,
                     _frame_px(backdrop), DETECTOR_SIDE)
    assert motion.outcome == "measured"
    assert len(motion.regions) == 1
    region = motion.regions[0]
    assert _inside(region, first.birds[0].box) and _inside(region, second.birds[0].box)
    # A square of at least the detector's input in the frame's pixels, and little of the frame.
    width, height = (region.x1 - region.x0) * size[0], (region.y1 - region.y0) * _frame_px(backdrop)[1]
    assert abs(width - height) <= 1.0 and width >= DETECTOR_SIDE - 0.5
    assert width * height <= 0.1 * size[0] * size[1]
    assert 0.0 < motion.changed < 0.02


def test_identical_frames_have_no_region(trailcam_nobird_dir: Path) -> None:
    frame = _backdrop(trailcam_nobird_dir, EMPTY_DAY)
    still = _seen(frame, T0)
    motion = compare(still, _seen(frame, T0 + timedelta(seconds=2)), SETTINGS, _frame_px(frame), DETECTOR_SIDE)
    assert (motion.outcome, motion.regions, motion.changed) == ("measured", (), 0.0)


@pytest.mark.parametrize("factor", [0.6, 0.8, 1.15])
def test_a_global_brightness_jump_is_not_motion_but_the_bird_still_is(birds25_dir: Path, trailcam_nobird_dir: Path,
                                                                      factor: float) -> None:
    """An auto-exposure step or a dimmer flash: the whole frame darker or brighter. Without a
    bird no region at all; with a moving bird one region, around it, never the whole frame."""
    backdrop = _backdrop(trailcam_nobird_dir, SQUIRREL_DAY)  # 2048x1536, a Reconyx day frame
    size = backdrop.size
    first = _decoded(_scene(birds25_dir, backdrop, size, [(900, 700, 980, 780)]))
    moved = _scene(birds25_dir, backdrop, size, [(920, 690, 1000, 770)])
    second = ImageEnhance.Brightness(_decoded(moved)).enhance(factor)
    unmoved = ImageEnhance.Brightness(first).enhance(factor)
    picture = _frame_px(backdrop)

    still = compare(_seen(first, T0), _seen(unmoved, T0 + timedelta(seconds=1)), SETTINGS, picture, DETECTOR_SIDE)
    assert (still.outcome, still.regions) == ("measured", ())

    motion = compare(_seen(first, T0), _seen(second, T0 + timedelta(seconds=1)), SETTINGS, picture, DETECTOR_SIDE)
    assert motion.outcome == "measured" and len(motion.regions) == 1
    assert _inside(motion.regions[0], moved.birds[0].box)
    region = motion.regions[0]
    assert (region.x1 - region.x0) * (region.y1 - region.y0) < 0.1


def test_an_exposure_that_clips_the_highlights_never_makes_the_frame_one_region(trailcam_nobird_dir: Path) -> None:
    """Brighter by 35-60 %: highlights clip, and a shrunk picture's pixels (averages of clipped
    and unclipped ones) no longer follow one tone curve. What changes is scattered over the
    textured bright parts: either a few small regions or, usually, no motion route at all
    (tiles), never the whole frame as a region."""
    for name in (SQUIRREL_DAY, "zamba__tests_assets_images_ena24_small_49.jpg",
                 "md__test_images_wellington_camera_traps_261215104310005bs372.JPG"):
        frame = _backdrop(trailcam_nobird_dir, name)
        picture = _frame_px(frame)
        for factor in (1.35, 1.6):
            brighter = ImageEnhance.Brightness(frame).enhance(factor)
            motion = compare(_seen(frame, T0), _seen(brighter, T0 + timedelta(seconds=1)), SETTINGS, picture,
                             DETECTOR_SIDE)
            assert motion.outcome in ("measured", "scattered"), (name, factor)
            assert all((r.x1 - r.x0) * (r.y1 - r.y0) < 0.25 for r in motion.regions), (name, factor, motion)


def test_frames_of_another_scene_say_nothing_and_the_tiles_search_them(trailcam_nobird_dir: Path) -> None:
    """Two different camera frames of one size (a camera moved, a card of mixed cameras): the
    residual noise is the scene itself, so the route keeps its tiles ("scattered")."""
    names = sorted(p.name for p in trailcam_nobird_dir.glob("zamba__*_5*.jpg"))[:2]
    first, second = (_backdrop(trailcam_nobird_dir, n) for n in names)
    assert first.size == second.size
    motion = compare(_seen(first, T0), _seen(second, T0 + timedelta(seconds=1)), SETTINGS,
                     _frame_px(first), DETECTOR_SIDE)
    assert motion.outcome == "scattered" and motion.regions == ()


def test_frames_are_compared_only_within_the_window_at_one_size_and_by_day_or_night(trailcam_nobird_dir: Path) -> None:
    frame = _backdrop(trailcam_nobird_dir, EMPTY_DAY)
    before = _seen(frame, T0)
    picture = _frame_px(frame)

    def outcome(previous: Seen | None, current: Seen, settings: MotionSettings = SETTINGS) -> str:
        return compare(previous, current, settings, picture, DETECTOR_SIDE).outcome

    assert outcome(None, before) == "first"
    assert outcome(before, _seen(frame, T0 + timedelta(seconds=5))) == "measured"  # the window includes its end
    assert outcome(before, _seen(frame, T0 - timedelta(seconds=3))) == "measured"  # a backlog out of order
    assert outcome(before, _seen(frame, T0 + timedelta(seconds=6))) == "first"
    assert outcome(before, _seen(frame, T0 + timedelta(seconds=6)), MotionSettings(window_s=10)) == "measured"
    assert outcome(before, _seen(frame, None)) == "first"  # no capture time: nothing to compare by
    assert outcome(before, _seen(frame, T0, night=True)) == "first"  # the infrared switched on
    assert outcome(before, _seen(frame.resize((640, 512)), T0)) == "first"  # another size


def test_motion_everywhere_or_too_many_regions_is_scattered(trailcam_nobird_dir: Path) -> None:
    frame = _backdrop(trailcam_nobird_dir, EMPTY_DAY)
    previous = _seen(frame, T0)
    grey = previous.grey
    picture = _frame_px(frame)

    def with_spots(count: int) -> Seen:
        """The same frame with `count` dark spots far apart (leaves blown about)."""
        spotted = grey.copy()
        for k in range(count):
            row, col = 20 + (k // 4) * 60, 20 + (k % 4) * 75
            spotted[row:row + 10, col:col + 10] = 0
        return Seen(previous.key, spotted, T0 + timedelta(seconds=1), False, previous.rows)

    assert len(compare(previous, with_spots(4), SETTINGS, picture, DETECTOR_SIDE).regions) == 4
    assert compare(previous, with_spots(5), SETTINGS, picture, DETECTOR_SIDE).outcome == "scattered"
    assert compare(previous, with_spots(5), MotionSettings(max_regions=5), picture, DETECTOR_SIDE).outcome == "measured"
    # Half the picture changed: not a bird.
    half = grey.copy()
    half[: grey.shape[0] // 2] = 255 - half[: grey.shape[0] // 2]
    assert MAX_CHANGED < 0.5
    assert compare(previous, Seen(previous.key, half, T0, False, previous.rows), SETTINGS, picture,
                   DETECTOR_SIDE).outcome == "scattered"


def test_where_a_bird_was_is_searched_again_though_it_sat_still(trailcam_nobird_dir: Path) -> None:
    frame = _backdrop(trailcam_nobird_dir, EMPTY_DAY)
    bird = Region(0.70, 0.40, 0.74, 0.45)
    still = _seen(frame, T0)
    previous = Seen(still.key, still.grey, T0, False, still.rows, (bird,))
    motion = compare(previous, Seen(still.key, still.grey, T0 + timedelta(seconds=1), False, still.rows), SETTINGS,
                     _frame_px(frame), DETECTOR_SIDE)
    assert motion.outcome == "measured" and len(motion.regions) == 1
    assert _inside(motion.regions[0], (bird.y0, bird.x0, bird.y1, bird.x1))


def test_blocks_labels_and_squares() -> None:
    pixels = np.zeros((20, 30), bool)
    pixels[0:4, 0:3] = True  # 12 of 64 pixels of block (0, 0): >= 15 %
    pixels[16:18, 28:30] = True  # 4 of the 8 pixels of the partial corner block (2, 3)
    pixels[9, 9] = True  # 1 of 64: not a block
    grid = blocks_of(pixels)
    assert grid.shape == (3, 4)
    assert sorted(zip(*np.nonzero(grid))) == [(0, 0), (2, 3)]
    groups = label(np.array([[1, 1, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]], bool))
    assert [sorted(map(tuple, g)) for g in groups] == [[(0, 0), (0, 1)], [(1, 3), (2, 2)]]
    # A small box becomes the detector's input, square, moved inside the picture (below a banner
    # of the top 5 %).
    region = square_region(Region(0.98, 0.0, 1.0, 0.02), (1000.0, 800.0), 300.0, (0.05, 1.0))
    assert (round(region.x0, 6), region.y0, region.x1, round(region.y1, 6)) == (0.7, 0.05, 1.0, 0.425)
    # A box bigger than the picture along an axis is clamped to it there.
    assert square_region(Region(0.1, 0.1, 0.9, 0.9), (1000.0, 400.0), 300.0) == Region(0.0, 0.0, 1.0, 1.0)


def test_bad_motion_settings_are_refused_with_their_key(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="motion_window_s"):
        MotionSettings(window_s=0).check()
    with pytest.raises(ValueError, match="motion_max_regions"):
        MotionSettings(max_regions=0).check()
    for key, value in (("motion", '"sometimes"'), ("motion_window_s", "-1"), ("motion_threshold", "0.5"),
                       ("motion_max_regions", "40"), ("night_threshold", "1.5")):
        with pytest.raises(ConfigError, match=rf"detector\.{key}"):
            _config(tmp_path, f"[detector]\n{key} = {value}\n")


# ---- the finder's motion route (the shared SSD) -------------------------------------------------


@pytest.fixture(scope="module")
def detector(ssd_detector_dir: Path) -> Detector:
    return Detector(resolve_detector(ssd_detector_dir), threads=2)


def _at(seconds: float):
    return lambda _image: T0 + timedelta(seconds=seconds)


def test_a_small_bird_in_a_12_megapixel_burst_is_found_in_its_motion_region_without_tiles(
        detector: Detector, birds25_dir: Path, trailcam_nobird_dir: Path) -> None:
    """A bluebird 3 % of the frame's width (120 of 4000 px) hops on a real empty frame: the
    second frame of the burst is searched whole and in one region at full resolution, no tiles,
    and the bird is found there, where the full frame and its 3x2 tiles miss it."""
    backdrop = _backdrop(trailcam_nobird_dir, EMPTY_DAY)
    size = (4000, 3000)
    first = _scene(birds25_dir, backdrop, size, [(1800, 1500, 1920, 1620)])
    second = _scene(birds25_dir, backdrop, size, [(1850, 1480, 1970, 1600)])
    truth = np.asarray(second.birds[0].box)

    moving = BirdFinder(detector, FinderSettings())  # motion "auto"
    opening = moving.locate(first.jpeg(), CROP, "trail", _at(0))
    assert (opening.motion.outcome, opening.tiles, opening.regions, opening.invokes) == ("first", 6, 0, 7)
    located = moving.locate(second.jpeg(), CROP, "trail", _at(1))
    assert located.motion.outcome == "measured"
    assert (located.tiles, located.regions) == (0, 1)
    assert located.invokes == 2 < opening.invokes
    assert located.decode_sizes[-1] == size  # the region is searched at full resolution
    assert any(float(iou(np.asarray(b.box.coords), truth)) >= 0.3 for b in located.birds)
    assert all(b.crop.shape == (224, 224, 3) for b in located.birds)

    tiled = BirdFinder(detector, FinderSettings(motion=MotionSettings("off")))
    tiled.locate(first.jpeg(), CROP, "trail", _at(0))
    today = tiled.locate(second.jpeg(), CROP, "trail", _at(1))
    assert (today.motion.outcome, today.tiles, today.invokes) == ("off", 6, 7)
    assert not any(float(iou(np.asarray(b.box.coords), truth)) >= 0.3 for b in today.birds)


def test_motion_off_gives_the_boxes_of_the_route_without_motion(detector: Detector, birds25_dir: Path,
                                                                 trailcam_nobird_dir: Path) -> None:
    """"off": every frame of a burst searched as a lone frame is (the full frame and its tiles),
    box for box, with the camera and capture times given."""
    backdrop = _backdrop(trailcam_nobird_dir, SQUIRREL_DAY)
    frames = [_scene(birds25_dir, backdrop, backdrop.size, [(900 + 20 * k, 700, 980 + 20 * k, 780)],
                     species="AMERICAN ROBIN").jpeg() for k in range(3)]
    off = BirdFinder(detector, FinderSettings(motion=MotionSettings("off"), banner="off"))
    for k, data in enumerate(frames):
        with_camera = off.locate(data, CROP, "trail", _at(k))
        lone = BirdFinder(detector, FinderSettings(banner="off")).locate(data, CROP)  # no camera: no motion
        assert [b.box for b in with_camera.birds] == [b.box for b in lone.birds]
        assert [b.crop_box for b in with_camera.birds] == [b.crop_box for b in lone.birds]
        assert (with_camera.invokes, with_camera.tiles, with_camera.regions) == (lone.invokes, 6, 0)


def test_the_configured_finder_carries_the_motion_and_night_settings(tmp_path: Path, ssd_detector_dir: Path) -> None:
    config = _config(tmp_path, f"""
[detector]
path = "{ssd_detector_dir}"
threshold = 0.5
night_threshold = 0.35
motion_window_s = 8
motion_max_regions = 2
""")
    finder = load_configured_finder(config)
    assert finder is not None
    assert finder.settings.motion == MotionSettings("auto", 8.0, 4.0, 2)
    assert (finder.settings.threshold, finder.settings.night_threshold) == (0.5, 0.35)
    assert finder.detector.score_threshold == 0.35  # the lower of the two; the finder applies each
    off = load_configured_finder(_config(tmp_path, f'[detector]\npath = "{ssd_detector_dir}"\nmotion = "off"\n'))
    assert off is not None and off.settings.motion.mode == "off" and off.detector.score_threshold == 0.5


def test_every_later_frame_of_a_burst_is_compared_while_the_banner_is_learned(
        detector: Detector, birds25_dir: Path, trailcam_nobird_dir: Path) -> None:
    """The camera's banner becomes learned on the third frame (the widest of three findings, so
    the picture may lose a row): the frames are compared all the same, on the rows that are
    picture in both, and the banner's clock text is never motion."""
    backdrop = _backdrop(trailcam_nobird_dir, SQUIRREL_DAY)
    finder = BirdFinder(detector, FinderSettings())
    outcomes = []
    for k in range(4):
        data = _scene(birds25_dir, backdrop, backdrop.size, [(900 + 20 * k, 700, 980 + 20 * k, 780)]).jpeg()
        located = finder.locate(data, CROP, "trail", _at(k))
        outcomes.append((located.motion.outcome, located.tiles))
        assert all(0.0 <= r.y0 and r.y1 <= 1.0 for r in located.motion.regions)
    assert finder.banners.learned("trail") is not None
    assert outcomes == [("first", 6), ("measured", 0), ("measured", 0), ("measured", 0)]


class RecordingFinder(BirdFinder):
    """The real finder, keeping each LocatedFrame it returns (instrumentation, not a stand-in)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.located: list = []

    def locate(self, *args, **kwargs):
        found = super().locate(*args, **kwargs)
        self.located.append(found)
        return found


@pytest.mark.parametrize("apart_s, outcomes", [(1, ["first", "measured", "measured"]), (3600, ["first"] * 3)])
def test_the_daemon_gives_the_finder_each_frames_capture_time(apart_s: int, outcomes: list[str], tmp_path: Path,
                                                               detector: Detector, aiy_model_dir: Path,
                                                               birds25_dir: Path, trailcam_nobird_dir: Path) -> None:
    """`edge run`'s FrameProcessor hands the finder the capture time it records (here the files'
    mtimes, no EXIF): a burst a second apart is compared frame to frame (the later frames skip
    the tiles), the same frames an hour apart are not."""
    from edge.classify.model import Classifier, resolve_model
    from edge.config import ClassifyConfig
    from edge.daemon.pipeline import FrameProcessor
    from edge.store.writer import Store

    backdrop = _backdrop(trailcam_nobird_dir, SQUIRREL_DAY)
    camera = tmp_path / "trail"
    camera.mkdir()
    stamp = 1_780_000_000
    for k in range(3):
        scene = _scene(birds25_dir, backdrop, backdrop.size, [(900 + 20 * k, 700, 980 + 20 * k, 780)],
                       species="AMERICAN ROBIN")
        path = camera / f"IMG_{k:04d}.JPG"
        path.write_bytes(scene.jpeg())
        os.utime(path, (stamp + apart_s * k,) * 2)
    finder = RecordingFinder(detector, FinderSettings())
    store = Store(tmp_path / "e.db")
    try:
        processor = FrameProcessor(Classifier(resolve_model(aiy_model_dir)), store, ClassifyConfig(), finder=finder)
        for k in range(3):
            assert processor.process(camera / f"IMG_{k:04d}.JPG", "trail").status == "ok"
    finally:
        store.close()
    assert [found.motion.outcome for found in finder.located] == outcomes
    assert [found.tiles == 0 for found in finder.located] == [outcome == "measured" for outcome in outcomes]
    kept = finder.motions.last("trail")
    assert kept is not None and kept.at == datetime.fromtimestamp(stamp + 2 * apart_s, UTC)
