"""[classify] section: when a prediction counts as a species (rules: edge/classify/decision.py)."""

from __future__ import annotations

from pydantic import Field, model_validator

from edge.config.base import Section

# Measured on trailcam-nobird and birds25 (docs/edge.md "Detection", issue 21).
MIN_BIRD_PROBABILITY = 0.5
UNNAMED_MIN_DETECTOR_SCORE = 0.6


class ClassifyConfig(Section):
    threshold: float = Field(
        default=0.5, ge=0.0, le=1.0,
        description="Top-1 score a prediction needs to name a species; below it the frame counts as `unknown`")
    thresholds: dict[str, float] = Field(
        default_factory=dict,
        description="Per-species thresholds (0 to 1) that replace `threshold`, keyed by label, scientific or "
                    'common name, e.g. { "Corvus corone" = 0.8 } for a look-alike that needs more certainty')
    allow: list[str] = Field(
        default_factory=list,
        description="Only these species are counted (empty = all); a frame whose top-1 is another species "
                    "counts as `unknown`")
    deny: list[str] = Field(
        default_factory=list,
        description="These species are never counted: a frame whose top-1 is one of them counts as nothing "
                    "(like a no-bird frame: no species, no event); a name may not be in allow and deny both")
    min_bird_probability: float = Field(
        default=MIN_BIRD_PROBABILITY, ge=0.0, le=1.0,
        description="With a detector: a bird whose crop the classifier gives less total bird probability "
                    "than this (1 - the no-bird label's score; a model without a no-bird label is never "
                    "vetoed this way) is not a bird: recorded with its box, never counted (0 = off)")
    unnamed_min_detector_score: float = Field(
        default=UNNAMED_MIN_DETECTOR_SCORE, ge=0.0, le=1.0,
        description="With a detector: a box the classifier cannot name (its top-1 below `threshold`) is "
                    "counted as an `unknown` bird only when the detector scored it at least this; below, "
                    "neither model is sure: recorded as `unconfirmed`, never counted (0 = off). Calibrated "
                    "for the COCO SSD's scores; set it with the detector's own score scale in mind")

    @model_validator(mode="after")
    def _consistent(self) -> ClassifyConfig:
        for label, value in self.thresholds.items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"thresholds.{label}: must be between 0 and 1, got {value}")
        both = sorted(set(self.allow) & set(self.deny))
        if both:
            raise ValueError(f"species both allowed and denied: {', '.join(both)}")
        return self
