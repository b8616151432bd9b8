"""One frame analysed: decode → find → crop → classify → decide, the one function `edge run`
(edge/daemon/pipeline.py, FrameProcessor.process) and `edge classify` (edge/cli/classify.py)
both call, so that the two say the same of a frame by construction, not because tests say so
(issue 21). The trainer's crop tools build their finder with `load_configured_finder` here too.

    FrameAnalyser(classifier, classify_config, finder=None, top_k=5, rollup=None, draft=True)
      .analyse(data, context_for, camera, taken_at) -> FrameAnalysis

With a finder: BirdFinder.locate (the whole frame and its tiles; no bird: no classifier call),
each bird's crop classified and decided by `decide_bird` (the classifier may veto the detector:
not a bird). Without: the frame decoded at the classifier's input, classified and decided whole
by `decide`. `context_for(image)` is called once the frame is decoded, with the opened image
(its EXIF), and returns the DecisionContext (species prior + roll-up) for it: the capture time
that picks the prior's week is the caller's business (the daemon reads it by the camera's
clock, `edge classify` by --date or the file), so it stays out of here. `taken_at(image)` gives
that capture time to the finder before its detector runs: the frames of a camera's burst are
compared for motion (edge/detect/motion.py). Both routes say whether the frame is an infrared
night (edge/detect/night.py): `FrameAnalysis.night`.

Scores: with a roll-up, every label's score is classified (a family's mass is spread thin);
a detector's bird is also classified with every score when the model has a no-bird label, so
that its total bird probability is known, while its decision still sees the predictions it
always saw (top_k, or all with a roll-up). Only `top_k` predictions are kept in the result.

This module is in the detect layer (it needs detect and classify, and nothing later).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from edge.classify.decision import Decision, DecisionContext, decide, decide_bird, label_aliases
from edge.classify.model import Classifier, Prediction
from edge.config.classify import ClassifyConfig
from edge.detect.finder import BirdFinder, LocatedFrame, TakenAt
from edge.detect.model import Box
from edge.detect.night import is_night_rgb
from edge.ingest.imaging import decode

if TYPE_CHECKING:
    from edge.config import EdgeConfig

ContextFor = Callable[[Any], "DecisionContext | None"]


@dataclass(frozen=True)
class AnalysedBird:
    """One detector box and what the classifier made of its crop."""

    box: Box  # normalised to the EXIF-oriented frame, with the detector's score and label
    crop: np.ndarray  # the crop as the classifier saw it (uint8 RGB at its input size)
    predictions: list[Prediction]  # the top_k kept
    decision: Decision


@dataclass
class FrameAnalysis:
    """What one frame holds. `birds` None: classified whole (`predictions`, `decision`); a list
    (possibly empty: nothing found, no classifier call): the detector route."""

    image: Any  # the opened PIL image, for EXIF (capture time)
    birds: list[AnalysedBird] | None = None
    predictions: list[Prediction] = field(default_factory=list)  # whole frame: top_k
    decision: Decision | None = None  # whole frame
    inference_ms: float = 0.0  # detector and classifier invokes, summed
    context: DecisionContext | None = None  # what the decisions knew beyond the scores
    # People and vehicles the detector found (Box.kind "person" | "vehicle"): never classified
    # nor counted; the frame is recorded as one with a person / vehicle.
    others: list[Box] = field(default_factory=list)
    night: bool = False  # an infrared night frame (edge/detect/night.py)
    located: LocatedFrame | None = None  # the detector route: how it searched (invokes, motion, tiles)


class FrameAnalyser:
    """The classifier, the [classify] rules and the finder a frame is analysed with."""

    def __init__(self, classifier: Classifier, classify_config: ClassifyConfig, finder: BirdFinder | None = None,
                 top_k: int = 5, rollup: Any = None, draft: bool = True) -> None:
        self.classifier = classifier
        self.classify_config = classify_config
        self.finder = finder
        self.top_k = top_k
        self.rollup = rollup
        self.draft = draft
        spec = classifier.spec
        self.aliases = label_aliases(spec.labels)
        self.no_bird = frozenset({spec.no_bird_label}) if spec.no_bird_label else frozenset()
        every = len(spec.labels)
        # What decide() sees: every score with a roll-up, else top_k (as it always was).
        self.decide_k = every if rollup is not None else top_k
        # What a detector's bird is classified with: every score too when there is a no-bird
        # label, for its bird probability (decide_bird's veto).
        self.bird_k = every if (rollup is not None or self.no_bird) else top_k

    def analyse(self, data: bytes | Image.Image, context_for: ContextFor | None = None, camera: str | None = None,
                taken_at: TakenAt | None = None) -> FrameAnalysis:
        """The frame's birds and decisions (`data`: the file's bytes, or a picture already decoded:
        a clip's sampled frame). `taken_at(image)`: its capture time, for the motion of the
        camera's bursts (BirdFinder.locate). Raises edge.ingest.imaging.FrameError for a frame
        that cannot be decoded (and whatever the interpreter raises: the caller records it)."""
        classifier = self.classifier
        if self.finder is None:
            frame = decode(data, classifier.input_size, draft=self.draft)
            context = context_for(frame.image) if context_for is not None else None
            predictions, ms = classifier.classify(frame.rgb, self.decide_k)
            decision = decide(predictions, self.classify_config, self.no_bird, self.aliases, context=context)
            return FrameAnalysis(frame.image, None, predictions[:self.top_k], decision, ms, context,
                                 night=is_night_rgb(frame.rgb))
        # The camera: its banner is learned per camera (edge/detect/banner.py).
        if isinstance(data, Image.Image):
            located = self.finder.locate_picture(data, classifier.input_size, camera, taken_at)
        else:
            located = self.finder.locate(data, classifier.input_size, camera, taken_at)
        context = context_for(located.image) if context_for is not None else None
        analysis = FrameAnalysis(located.image, [], inference_ms=located.detector_ms, context=context,
                                 others=list(located.others), night=located.night, located=located)
        assert analysis.birds is not None
        for found in located.birds:
            scores, ms = classifier.classify(found.crop, self.bird_k)
            analysis.inference_ms += ms
            decision = decide_bird(scores[:self.decide_k], self.classify_config, self.no_bird, self.aliases,
                                   context=context, every_score=scores, detector_score=found.box.score)
            analysis.birds.append(AnalysedBird(found.box, found.crop, scores[:self.top_k], decision))
        return analysis

    def analyse_picture(self, picture: Image.Image, context_for: ContextFor | None = None,
                        camera: str | None = None, taken_at: TakenAt | None = None) -> FrameAnalysis:
        """analyse() for a picture already decoded (RGB, upright): a video clip's sampled frame
        (edge/daemon/clips.py) goes through the same analysis as a photo without being encoded
        to JPEG first. `context_for` and `taken_at` get the picture itself (it has no EXIF: the
        clip's time is the caller's); with `taken_at` a clip's samples are compared for motion
        like the frames of a burst."""
        return self.analyse(picture, context_for, camera, taken_at)


def load_configured_finder(config: EdgeConfig) -> BirdFinder | None:
    """The configured detector route, None without [detector] path; a DetectorError's
    message starts with the key it is about. Used at start and at every reload (SIGHUP), by
    `edge classify` and by the trainer's crop tools (trainer/crops.py)."""
    settings = config.detector
    if settings.path is None:
        return None
    from edge.detect.finder import FinderSettings
    from edge.detect.model import Detector, DetectorError, resolve_detector
    from edge.detect.motion import MotionSettings
    from edge.detect.tiles import parse_tiles

    if not settings.path.exists():
        raise DetectorError(f"detector.path: {settings.path}: detector not found (a .tflite or .onnx, or a folder "
                            "holding one)")
    if settings.labels is not None and not settings.labels.is_file():
        raise DetectorError(f"detector.labels: {settings.labels}: labels file not found")
    try:
        spec = resolve_detector(settings.path, settings.labels, settings.label_offset, settings.bird_labels,
                                settings.person_labels, settings.vehicle_labels)
        # With a night threshold the detector keeps the lower of the two; the finder applies each.
        floor = settings.threshold if settings.night_threshold is None else min(settings.threshold,
                                                                                 settings.night_threshold)
        detector = Detector(spec, threads=settings.threads, score_threshold=floor,
                            iou_threshold=settings.iou_threshold, resize=settings.resize, layout=settings.layout,
                            input_size=settings.input_size)
    except DetectorError as error:
        message = str(error)
        if message.startswith("detector."):
            raise
        bird = "bird label" in message or "bird_labels" in message
        key = "detector.labels" if settings.labels is not None and str(settings.labels) in message else (
            "detector.bird_labels" if bird else "detector.path")
        raise DetectorError(f"{key}: {message}") from None
    return BirdFinder(detector, FinderSettings(
        tiles=parse_tiles(settings.tiles), tile_overlap=settings.tile_overlap, iou_threshold=settings.iou_threshold,
        containment=settings.containment, crop_margin=settings.crop_margin, banner=settings.banner,
        motion=MotionSettings(settings.motion, settings.motion_window_s, settings.motion_threshold,
                              settings.motion_max_regions),
        threshold=settings.threshold, night_threshold=settings.night_threshold))
