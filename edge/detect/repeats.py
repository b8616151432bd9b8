"""Repeat-detection elimination, the rule: when is a detection "the same thing at the same place"
of a camera, and when has that thing recurred often enough to be no bird? Pure functions; the
memory of each camera's places lives in the store (edge/store/repeats.py), which applies this
rule in a frame's transaction.

A trail camera sees the same scene thousands of times, so a detector that takes a rock, a stump
or a sign for a bird takes it for one in hundreds of frames, at exactly the same place.
MegaDetector's repeat detection elimination (RDE) finds such boxes after the fact: boxes of one
camera that overlap with IoU >= 0.9, seen at least 20 times (its occurrenceThreshold), and no
bigger than a fifth of the frame (maxSuspiciousDetectionSize: an animal close to the lens fills
the frame the same way every time), then a person looks at one picture per place and deletes
the ones that are animals. This station runs unattended and decides as frames arrive, so it
asks for more than the box before it drops anything on its own:

- the same place: IoU >= `iou_threshold` (0.9) with the place's box;
- the same thing: the *look* of the crop, a 16x16 grey thumbnail, correlates >= `min_similarity`
  (0.85) with the place's (Pearson correlation: blind to overall brightness and contrast, so the
  light of the day matters little, the shape does). At a feeder real birds perch at the same
  place every day, with boxes as alike as a rock's; but each visit is another bird in another
  pose: two photos of one species scored 0.80 at most (all pairs of ../shared/data/birds25), a
  patch of a real trail-camera scene (../shared/data/trailcam-nobird) under other light, JPEG
  noise and a box up to 2 % off 0.87 or more (tests/edge/detect/test_repeats_rule.py measures both);
- recurring: at least `min_repeats` (20) such detections on at least `min_days` (3) distinct
  station-local days, so a bird sitting still for an afternoon is never taken for a rock;
- small: boxes larger than `max_box_area` (0.2) of the frame are never tracked.

A place is `candidate` until then, `suppressed` from then on (its detections are recorded with
flag REPEAT, kind none, never counted), and `released` once a person said it is a bird place:
a released place is matched by its box alone, whatever the look, and never suppressed again.
The place's box and look follow its detections slowly (a running mean over the last
LOOK_MEMORY detections), so a rock's look can follow the seasons' light.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from edge.classify.decision import Decision
from edge.detect.boxes import iou

if TYPE_CHECKING:
    from edge.config.repeats import RepeatsConfig

REPEAT = "repeat"  # Decision.flag (and detections.flag) of a detection suppressed as a repeat
LOOK_SIDE = 16  # the look: a LOOK_SIDE x LOOK_SIDE grey thumbnail of the crop, one byte a pixel
LOOK_BYTES = LOOK_SIDE * LOOK_SIDE
LOOK_MEMORY = 20  # the place's box and look are a running mean over about this many detections

CANDIDATE, SUPPRESSED, RELEASED = "candidate", "suppressed", "released"
STATES = (CANDIDATE, SUPPRESSED, RELEASED)

BoxTuple = tuple[float, float, float, float]  # ymin, xmin, ymax, xmax normalised to the frame


@dataclass(frozen=True)
class RepeatRules:
    """The [repeats] settings the rule runs with (edge/config/repeats.py says what each does)."""

    iou_threshold: float = 0.9
    min_similarity: float = 0.85
    min_repeats: int = 20
    min_days: int = 3
    max_box_area: float = 0.2
    forget_after_days: float = 30.0

    def __post_init__(self) -> None:
        # Below 0.5 two boxes side by side would be "the same place"; config validates the same.
        if not 0.5 < self.iou_threshold <= 1.0:
            raise ValueError(f"repeats.iou_threshold: {self.iou_threshold!r} must be in (0.5, 1]")
        if not 0.0 < self.min_similarity <= 1.0:
            raise ValueError(f"repeats.min_similarity: {self.min_similarity!r} must be in (0, 1]")
        if self.min_repeats < 2 or self.min_days < 1:
            raise ValueError("repeats.min_repeats must be >= 2 and repeats.min_days >= 1")

    @classmethod
    def of(cls, config: RepeatsConfig) -> RepeatRules | None:
        """The rules of [repeats]; None when it is off."""
        if not config.enabled:
            return None
        return cls(config.iou_threshold, config.min_similarity, config.min_repeats, config.min_days,
                   config.max_box_area, config.forget_after_days)


@dataclass(frozen=True)
class Place:
    """A place of one camera's frame where the same thing was detected (a row of repeat_places)."""

    id: int
    box: BoxTuple
    look: bytes
    repeats: int
    days: int
    state: str  # CANDIDATE | SUPPRESSED | RELEASED


@dataclass(frozen=True)
class Match:
    """What a detection is, against a camera's places: `place` None = nothing known there."""

    place: Place | None = None
    similarity: float | None = None  # None for a released place (matched by its box alone)

    @property
    def released(self) -> bool:
        return self.place is not None and self.place.state == RELEASED


def look_of(crop: np.ndarray) -> bytes:
    """The look of a crop (uint8 RGB, as the classifier saw it): its LOOK_SIDE x LOOK_SIDE grey
    thumbnail (Pillow's BILINEAR, which averages over the pixels it shrinks), LOOK_BYTES bytes."""
    image = Image.fromarray(np.asarray(crop, dtype=np.uint8)).convert("L")
    return image.resize((LOOK_SIDE, LOOK_SIDE), Image.Resampling.BILINEAR).tobytes()


def _pixels(look: bytes) -> np.ndarray:
    if len(look) != LOOK_BYTES:
        raise ValueError(f"a look is {LOOK_BYTES} bytes, not {len(look)}")
    return np.frombuffer(look, dtype=np.uint8).astype(np.float64)


def similarity(a: bytes, b: bytes) -> float:
    """The Pearson correlation of two looks, -1..1: 1 for the same picture up to brightness and
    contrast. A flat look (no contrast: fog, a blank wall) correlates with nothing: 0."""
    x, y = _pixels(a), _pixels(b)
    x, y = x - x.mean(), y - y.mean()
    norm = float(np.sqrt((x * x).sum() * (y * y).sum()))
    return float((x * y).sum() / norm) if norm > 1e-9 else 0.0


def blend(reference: bytes, look: bytes, weight: float) -> bytes:
    """The reference look moved `weight` (0..1) of the way towards `look`."""
    mixed = _pixels(reference) * (1.0 - weight) + _pixels(look) * weight
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8).tobytes()


def blend_box(reference: BoxTuple, box: BoxTuple, weight: float) -> BoxTuple:
    """The place's box moved `weight` of the way towards a detection's."""
    return tuple(r * (1.0 - weight) + b * weight for r, b in zip(reference, box))  # type: ignore[return-value]


def memory_weight(repeats: int) -> float:
    """How much the detection that makes `repeats` moves the place's box and look: the plain mean
    of the first LOOK_MEMORY detections, then a running mean of about that many."""
    return 1.0 / min(max(repeats, 1), LOOK_MEMORY)


def area(box: BoxTuple) -> float:
    ymin, xmin, ymax, xmax = box
    return max(0.0, ymax - ymin) * max(0.0, xmax - xmin)


def trackable(box: BoxTuple, rules: RepeatRules) -> bool:
    """Whether a box may ever be a repeat: not empty, and no bigger than max_box_area of the frame."""
    size = area(box)
    return 0.0 < size <= rules.max_box_area


def window(box: BoxTuple, rules: RepeatRules) -> tuple[tuple[float, float], tuple[float, float]]:
    """((xmin low, high), (ymin low, high)): where the xmin and ymin of every place the box can
    match lie, for an indexed search. With t = iou_threshold: IoU >= t needs the overlap's
    width >= t times each box's width, so the other box is at most 1/t as wide and its left edge
    at most (1 - t)/t of this box's width away (likewise for heights)."""
    ymin, xmin, ymax, xmax = box
    slack = (1.0 - rules.iou_threshold) / rules.iou_threshold
    dx, dy = slack * (xmax - xmin) + 1e-9, slack * (ymax - ymin) + 1e-9
    return (xmin - dx, xmin + dx), (ymin - dy, ymin + dy)


def match(box: BoxTuple, look: bytes, places: Iterable[Place], rules: RepeatRules) -> Match:
    """The place a detection belongs to. A released place whose box overlaps >= iou_threshold
    wins whatever the look (a person said birds are there); else the candidate or suppressed
    place with the most similar look among those overlapping >= iou_threshold and looking at
    least min_similarity alike (ties: the bigger overlap, then the older place); else none."""
    here = np.asarray(box, dtype=np.float64)
    released: list[tuple[float, int, Place]] = []
    alike: list[tuple[float, float, int, Place]] = []
    for place in places:
        overlap = float(iou(here, np.asarray(place.box, dtype=np.float64)))
        if overlap < rules.iou_threshold:
            continue
        if place.state == RELEASED:
            released.append((-overlap, place.id, place))
            continue
        score = similarity(look, place.look)
        if score >= rules.min_similarity:
            alike.append((-score, -overlap, place.id, place))
    if released:
        return Match(min(released)[2])
    if alike:
        best = min(alike)
        return Match(best[3], -best[0])
    return Match()


def due(repeats: int, days: int, rules: RepeatRules) -> bool:
    """Whether a candidate has recurred enough to be suppressed."""
    return repeats >= rules.min_repeats and days >= rules.min_days


def suppressed(decision: Decision, place_id: int, repeats: int, days: int) -> Decision:
    """A detection's decision once its place is suppressed: kind none, flag REPEAT, never counted;
    what it would have counted as kept in `model_species`/`model_confidence` (like NOT_BIRD)."""
    return Decision("none", None, decision.confidence,
                    f"repeat: the same thing at place {place_id}, seen {repeats} times on {days} days",
                    model_species=decision.model_species or decision.species,
                    model_confidence=decision.model_confidence if decision.model_species else decision.confidence,
                    rank=decision.rank, flag=REPEAT)


__all__ = [
    "CANDIDATE", "LOOK_BYTES", "LOOK_SIDE", "Match", "Place", "RELEASED", "REPEAT", "RepeatRules", "STATES",
    "SUPPRESSED", "area", "blend", "blend_box", "due", "look_of", "match", "memory_weight", "similarity",
    "suppressed", "trackable", "window",
]
