"""The repeat-detection rule (edge/detect/repeats.py), pure: the look of real crops, the match of a
detection against a camera's places, the search window, the size limit, the due rule and the
decision a suppressed detection gets.

Looks are made from real photographs: ../shared/data/birds25 (birds: every photo of a species is
another bird or pose) and ../shared/data/trailcam-nobird (real trail-camera scenes: a rock, a
stump, a sign is a crop of one)."""

from __future__ import annotations

import io
import itertools
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from edge.classify.decision import Decision
from edge.detect.boxes import iou
from edge.detect.repeats import (
    CANDIDATE,
    LOOK_BYTES,
    RELEASED,
    REPEAT,
    SUPPRESSED,
    Place,
    RepeatRules,
    blend,
    due,
    look_of,
    match,
    similarity,
    suppressed,
    trackable,
    window,
)

RULES = RepeatRules()
BOX = (0.40, 0.30, 0.50, 0.38)


def _crop(image: Image.Image, box: tuple[int, int, int, int]) -> np.ndarray:
    return np.asarray(image.crop(box).resize((224, 224), Image.BILINEAR).convert("RGB"), dtype=np.uint8)


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return Image.open(io.BytesIO(out.getvalue())).convert("RGB")


def _seen_again(image: Image.Image, box: tuple[int, int, int, int], rng: np.random.Generator) -> np.ndarray:
    """The same thing in another frame: other light and contrast, JPEG noise, the box off by up to
    2 % of its side (a detector's jitter between frames; IoU >= 0.92, so the same place)."""
    x0, y0, x1, y1 = box
    side = x1 - x0
    dx, dy = (int(v) for v in rng.integers(-side // 50, side // 50 + 1, 2))
    lit = ImageEnhance.Brightness(image).enhance(float(rng.uniform(0.7, 1.3)))
    lit = ImageEnhance.Contrast(lit).enhance(float(rng.uniform(0.8, 1.2)))
    return _crop(_jpeg(lit, 60), (x0 + dx, y0 + dy, x1 + dx, y1 + dy))


def _species_photos(birds25_dir: Path) -> list[list[Path]]:
    return [sorted(folder.glob("*.jpg")) for folder in sorted(birds25_dir.iterdir()) if folder.is_dir()]


def test_a_look_is_a_small_grey_thumbnail(birds25_dir: Path) -> None:
    photo = Image.open(_species_photos(birds25_dir)[0][0]).convert("RGB")
    look = look_of(np.asarray(photo))
    assert isinstance(look, bytes) and len(look) == LOOK_BYTES
    assert similarity(look, look) == pytest.approx(1.0)
    # Blind to brightness and contrast: the same picture darker and flatter is the same look.
    darker = look_of(np.asarray(ImageEnhance.Contrast(ImageEnhance.Brightness(photo).enhance(0.6)).enhance(0.7)))
    assert similarity(look, darker) > 0.98
    flat = bytes(LOOK_BYTES)  # fog, a blank wall: correlates with nothing
    assert similarity(flat, look) == 0.0
    with pytest.raises(ValueError, match="256 bytes"):
        similarity(look, look[:10])


def test_the_same_thing_looks_alike_and_other_birds_do_not(birds25_dir: Path, trailcam_nobird_dir: Path) -> None:
    """The margin the default min_similarity (0.85) stands in: a real scene's object seen again
    (other light, JPEG, box jitter) stays above it; any two photos of one species (another bird,
    another pose: a feeder's visitors perching at the same place) stay below it."""
    rng = np.random.default_rng(7)
    same = []
    for path in sorted(trailcam_nobird_dir.glob("*.[jJ][pP]*[gG]"))[:12]:
        scene = Image.open(path).convert("RGB")
        width, height = scene.size
        side = min(width, height) // 6
        box = (width // 3, height // 2, width // 3 + side, height // 2 + side)  # a patch of the scene: the "rock"
        reference = look_of(_crop(scene, box))
        same += [similarity(reference, look_of(_seen_again(scene, box, rng))) for _ in range(3)]
    others = []
    for photos in _species_photos(birds25_dir):
        looks = [look_of(np.asarray(Image.open(p).convert("RGB"))) for p in photos]
        others += [similarity(a, b) for a, b in itertools.combinations(looks, 2)]
    assert len(same) >= 30 and len(others) >= 200
    assert min(same) >= RULES.min_similarity, sorted(same)[:5]
    assert max(others) < RULES.min_similarity, sorted(others)[-5:]


def _place(place_id: int, box=BOX, look: bytes = b"", state: str = CANDIDATE, repeats: int = 5) -> Place:
    return Place(place_id, box, look, repeats, 2, state)


@pytest.fixture(scope="module")
def looks(birds25_dir: Path) -> list[bytes]:
    """Looks of five different robins (or whatever the first species is)."""
    return [look_of(np.asarray(Image.open(p).convert("RGB"))) for p in _species_photos(birds25_dir)[3]]


def test_match_needs_the_same_place_and_the_same_look(looks: list[bytes]) -> None:
    rock, bird = looks[0], looks[1]
    places = [_place(1, look=rock)]
    assert match(BOX, rock, places, RULES).place.id == 1
    assert match(BOX, rock, places, RULES).similarity == pytest.approx(1.0)
    # The same look a little to the side (IoU < 0.9): another place.
    moved = (BOX[0], BOX[1] + 0.01, BOX[2], BOX[3] + 0.01)
    assert float(iou(np.array(BOX), np.array(moved))) < 0.9
    assert match(moved, rock, places, RULES).place is None
    # Another bird at exactly the place (a feeder's perch): not the same thing.
    assert match(BOX, bird, places, RULES).place is None


def test_a_released_place_matches_by_its_box_whatever_the_look(looks: list[bytes]) -> None:
    rock, bird = looks[0], looks[1]
    places = [_place(1, look=rock, state=SUPPRESSED), _place(2, look=rock, state=RELEASED)]
    for look in (rock, bird):
        found = match(BOX, look, places, RULES)
        assert found.place.id == 2 and found.released and found.similarity is None


def test_the_most_alike_place_wins(looks: list[bytes]) -> None:
    rock = looks[0]
    nearly = blend(rock, looks[2], 0.05)  # the same rock's reference, drifted a little
    places = [_place(5, look=nearly), _place(3, look=rock)]
    assert match(BOX, rock, places, RULES).place.id == 3
    assert match(BOX, rock, [_place(5, look=rock), _place(3, look=rock)], RULES).place.id == 3  # tie: older


def test_the_search_window_holds_every_box_that_can_match() -> None:
    """window() bounds the xmin and ymin of every box with IoU >= iou_threshold, so the store's
    indexed search misses none (random boxes, three thresholds)."""
    rng = np.random.default_rng(3)
    for threshold in (0.55, 0.9, 0.97):
        rules = RepeatRules(iou_threshold=threshold)
        checked = 0
        for _ in range(4000):
            y, x = rng.uniform(0.1, 0.7, 2)
            h, w = rng.uniform(0.02, 0.2, 2)
            box = (y, x, y + h, x + w)
            other = tuple(np.asarray(box) + rng.normal(0, 0.25 * min(h, w) * (1 - threshold) * 4, 4))
            if float(iou(np.array(box), np.array(other))) < threshold:
                continue
            checked += 1
            (x_low, x_high), (y_low, y_high) = window(box, rules)
            assert x_low <= other[1] <= x_high and y_low <= other[0] <= y_high
        assert checked > 200


def test_big_boxes_are_never_tracked() -> None:
    assert trackable(BOX, RULES)
    assert trackable((0.0, 0.0, 0.4, 0.5), RULES)  # 0.2 of the frame: still
    assert not trackable((0.0, 0.0, 0.5, 0.5), RULES)  # a bird close to the lens
    assert not trackable((0.3, 0.3, 0.3, 0.4), RULES)  # empty


def test_due_needs_repeats_and_days() -> None:
    assert not due(19, 5, RULES)
    assert not due(500, 2, RULES)  # a bird sitting still all afternoon
    assert due(20, 3, RULES)


def test_a_suppressed_detection_counts_nothing_and_keeps_what_it_was() -> None:
    decision = suppressed(Decision("species", "Turdus migratorius", 0.8, "ok"), 12, 20, 3)
    assert (decision.kind, decision.species, decision.flag) == ("none", None, REPEAT)
    assert (decision.model_species, decision.model_confidence) == ("Turdus migratorius", 0.8)
    assert "place 12" in decision.reason


def test_rules_refuse_what_makes_no_sense() -> None:
    with pytest.raises(ValueError, match="repeats.iou_threshold"):
        RepeatRules(iou_threshold=0.4)
    with pytest.raises(ValueError, match="repeats.min_repeats"):
        RepeatRules(min_repeats=1)
