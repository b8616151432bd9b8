"""benchmarks.scenes: the synthetic trail-camera scenes the detect benchmark scores against.

Real photos (../shared/data/birds25) pasted into generated foliage; the ground truth must be
exact (boxes, sizes, empty frames), reproducible byte for byte, and the background must not
itself look like a bird to the real COCO SSD detector, or every empty frame would score wrong.
"""

from __future__ import annotations

import io
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.scenes import (
    PastedBird,
    Scene,
    background,
    compose,
    scene_set,
    species_photos,
)

SSD_BIRD_CLASS = 15  # labels.txt line 16 ("bird"): the model zoo's class + 1 convention
DETECTOR_THRESHOLD = 0.5  # edge.detect's default score_threshold


def _pixel_box(bird: PastedBird, size: tuple[int, int]) -> tuple[int, int, int, int]:
    ymin, xmin, ymax, xmax = bird.box
    return round(xmin * size[0]), round(ymin * size[1]), round(xmax * size[0]), round(ymax * size[1])


def _disjoint(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]


def test_same_seed_gives_identical_jpeg_bytes_and_another_seed_does_not(birds25_dir: Path) -> None:
    first = compose(birds25_dir, (960, 540), 2, (0.05, 0.1), seed=11)
    again = compose(birds25_dir, (960, 540), 2, (0.05, 0.1), seed=11)
    other = compose(birds25_dir, (960, 540), 2, (0.05, 0.1), seed=12)
    assert first.jpeg() == again.jpeg()
    assert first.birds == again.birds
    assert first.jpeg() != other.jpeg()
    sets = [scene_set(birds25_dir, (640, 360), count=6, seed=3) for _ in range(2)]
    assert [s.jpeg() for s in sets[0]] == [s.jpeg() for s in sets[1]]
    assert [s.birds for s in sets[0]] == [s.birds for s in sets[1]]


@pytest.mark.parametrize("size", [(1920, 1080), (4000, 3000)], ids=["1080p", "12MP"])
def test_boxes_have_the_asked_area_lie_inside_the_frame_and_do_not_overlap(birds25_dir: Path, size: tuple[int, int]) -> None:
    fractions = (0.03, 0.08, 0.20)
    scene = compose(birds25_dir, size, 3, fractions, seed=5)
    assert scene.image.size == size and scene.image.mode == "RGB"
    assert [b.area_fraction for b in scene.birds] == pytest.approx(fractions, rel=0.01)
    for bird in scene.birds:
        ymin, xmin, ymax, xmax = bird.box
        assert 0.0 <= ymin < ymax <= 1.0 and 0.0 <= xmin < xmax <= 1.0
        assert (ymax - ymin) * (xmax - xmin) == pytest.approx(bird.area_fraction, rel=1e-6)
        assert bird.species == bird.source.parent.name and bird.source.is_file()
    for a, b in combinations(scene.birds, 2):
        assert _disjoint(a.box, b.box), (a.box, b.box)


def test_only_the_pasted_regions_differ_from_the_background(birds25_dir: Path) -> None:
    """The pastes change their own boxes (the bird at the centre) and not one pixel elsewhere."""
    size = (960, 540)
    scene = compose(birds25_dir, size, 2, (0.05, 0.1), seed=21)
    plain = np.asarray(background(size, 21), np.int16)
    pasted = np.asarray(scene.image, np.int16)
    outside = np.ones(plain.shape[:2], bool)
    for bird in scene.birds:
        left, top, right, bottom = _pixel_box(bird, size)
        outside[top:bottom, left:right] = False
        centre = np.abs(pasted[top:bottom, left:right] - plain[top:bottom, left:right])
        h, w = centre.shape[:2]
        assert centre[h // 3: 2 * h // 3, w // 3: 2 * w // 3].mean() > 10  # the photo is there
        assert centre[0, 0].max() <= 2  # the corner is background: the elliptical mask fades out
    assert np.array_equal(pasted[outside], plain[outside])


def test_scene_set_has_the_empty_fraction_one_to_three_birds_and_every_species(birds25_dir: Path) -> None:
    scenes = scene_set(birds25_dir, (480, 270), count=40, seed=0, empty_fraction=0.3, max_birds=3)
    assert len(scenes) == 40 and len({s.name for s in scenes}) == 40
    assert sum(not s.birds for s in scenes) == 12
    counts = {len(s.birds) for s in scenes if s.birds}
    assert counts <= {1, 2, 3} and len(counts) >= 2
    fractions = [b.area_fraction for s in scenes for b in s.birds]
    for value in fractions:
        assert min(abs(value - f) / f for f in (0.03, 0.08, 0.20)) < 0.02, value
    species = {b.species for s in scenes for b in s.birds}
    assert len(species) >= 20  # ~56 birds from one shuffled pass over 125 photos of 25 species
    assert species <= set(species_photos(birds25_dir))


def test_a_layout_that_cannot_fit_is_refused(birds25_dir: Path) -> None:
    with pytest.raises(ValueError, match="do not fit"):
        compose(birds25_dir, (640, 360), 3, (0.4, 0.4, 0.4), seed=0)
    with pytest.raises(ValueError, match="area_fractions"):
        compose(birds25_dir, (640, 360), 2, (0.1, 0.1, 0.1), seed=0)


def _tiles(image: Image.Image, columns: int, rows: int, overlap: float = 0.2) -> list[Image.Image]:
    width, height = image.size
    tile_w = width / (columns - (columns - 1) * overlap)
    tile_h = height / (rows - (rows - 1) * overlap)
    out = []
    for c in range(columns):
        for r in range(rows):
            left, top = c * tile_w * (1 - overlap), r * tile_h * (1 - overlap)
            out.append(image.crop((round(left), round(top), round(left + tile_w), round(top + tile_h))))
    return out


def test_the_background_is_no_bird_to_the_shared_ssd_detector(ssd_detector_dir: Path, birds25_dir: Path) -> None:
    """Whole frames and 3x2 tiles (what a tiled finder feeds the detector) of several seeds score
    below the detector's threshold for "bird"; a pasted photo in the same background does not."""
    from edge.classify.model import load_interpreter_class

    interpreter_class, _ = load_interpreter_class()
    interpreter = interpreter_class(model_path=str(ssd_detector_dir / "detect.tflite"), num_threads=2)
    interpreter.allocate_tensors()
    (inp,), outs = interpreter.get_input_details(), interpreter.get_output_details()
    assert (ssd_detector_dir / "labels.txt").read_text().splitlines()[SSD_BIRD_CLASS + 1] == "bird"

    def bird_score(image: Image.Image) -> float:
        pixels = np.asarray(image.resize((300, 300), Image.BILINEAR), np.uint8)[np.newaxis]
        interpreter.set_tensor(inp["index"], pixels)
        interpreter.invoke()
        _, classes, scores, count = (interpreter.get_tensor(o["index"]) for o in outs)
        n = int(count[0])
        return max((float(scores[0, i]) for i in range(n) if int(classes[0, i]) == SSD_BIRD_CLASS), default=0.0)

    for seed in range(6):
        frame = background((1920, 1080), seed)
        scores = [bird_score(frame)] + [bird_score(tile) for tile in _tiles(frame, 3, 2)]
        assert max(scores) < DETECTOR_THRESHOLD, (seed, scores)
    # The check can fail: a large pasted bird in the same kind of frame is found.
    scene = compose(birds25_dir, (1920, 1080), 1, (0.2,), seed=0, sources=[min(birds25_dir.glob("*/*.jpg"))])
    assert bird_score(scene.image) >= DETECTOR_THRESHOLD


def test_scene_jpeg_decodes_to_the_same_frame() -> None:
    scene = Scene(image=background((320, 180), 1), birds=[], name="empty")
    data = scene.jpeg(quality=95)
    with Image.open(io.BytesIO(data)) as decoded:
        assert decoded.format == "JPEG" and decoded.size == (320, 180)
        assert np.abs(np.asarray(decoded, np.int16) - np.asarray(scene.image, np.int16)).mean() < 3


@pytest.fixture(scope="module")
def nobird_dir() -> Path:
    from tests.conftest import SHARED_DIR
    from tests.fixtures.require import missing

    path = SHARED_DIR / "data" / "trailcam-nobird"
    if not path.is_dir():
        missing("SHARED", f"real camera-trap frames not available: {path} is absent (../shared is not beside the checkout)")
    return path


def test_real_bursts_keep_the_real_background_and_move_their_birds_a_little(birds25_dir: Path, nobird_dir: Path) -> None:
    """Bursts on the real bird-free frames (issue 21's benchmark set): deterministic, birds of
    2-10 % of the width away from the banner rows, moving at most a few % between frames, grey on
    an infrared night frame, and every pixel outside the pasted regions the real frame's own."""
    from benchmarks.scenes import real_bursts

    first = real_bursts(birds25_dir, nobird_dir, bursts=6, seed=3)
    again = real_bursts(birds25_dir, nobird_dir, bursts=6, seed=3)
    assert [[s.jpeg() for s in b] for b in first] == [[s.jpeg() for s in b] for b in again]
    birds = [bird for burst in first for scene in burst for bird in scene.birds]
    assert birds, "six bursts hold some birds"
    for burst in first:
        assert len(burst) == 3 and len({len(s.birds) for s in burst}) == 1
        for scene in burst:
            for bird in scene.birds:
                width = bird.box[3] - bird.box[1]
                assert 0.019 <= width <= 0.101 and bird.box[0] >= 0.119 and bird.box[2] <= 0.881
        for before, after in zip(burst, burst[1:]):
            for a, b in zip(before.birds, after.birds):
                assert abs(a.box[1] - b.box[1]) <= 0.02 and a.species == b.species
    for burst in first:
        scene = burst[0]
        pixels = np.asarray(scene.image, dtype=np.int16)
        outside = np.ones(pixels.shape[:2], bool)
        h, w = outside.shape
        for bird in scene.birds:
            outside[int(bird.box[0] * h):int(bird.box[2] * h) + 1, int(bird.box[1] * w):int(bird.box[3] * w) + 1] = False
        if not scene.birds:
            continue
        channels = np.abs(pixels[..., 0] - pixels[..., 1]).mean()
        if channels < 3:  # an infrared frame: the pasted birds are grey too
            assert np.abs(pixels[~outside][..., 0] - pixels[~outside][..., 2]).mean() < 3
