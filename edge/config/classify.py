"""[classify] section: when a prediction counts as a species."""

from __future__ import annotations

from pydantic import BaseModel, Field, model_validator

from edge.config.base import SECTION_CONFIG


class ClassifyConfig(BaseModel):
    model_config = SECTION_CONFIG

    # Top-1 score needed to name a species; below it the frame is `unknown`.
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    # Per-species overrides, keyed by label (e.g. a look-alike that needs more certainty).
    thresholds: dict[str, float] = Field(default_factory=dict)
    # Only these species are counted (empty = all); others become `unknown`.
    allow: list[str] = Field(default_factory=list)
    # These species are never counted; they become `unknown`.
    deny: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> "ClassifyConfig":
        for label, value in self.thresholds.items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"thresholds.{label}: must be between 0 and 1, got {value}")
        both = sorted(set(self.allow) & set(self.deny))
        if both:
            raise ValueError(f"species both allowed and denied: {', '.join(both)}")
        return self
