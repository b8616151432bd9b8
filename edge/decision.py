"""From a model's top predictions to what the frame counts as: a species, `unknown`, or nothing.

- top-1 is the no-bird label (AIY "background")        → none (not counted)
- top-1 is on the deny list                             → none (the operator never wants it counted)
- an allow list is set and top-1 is not on it           → unknown (most likely a look-alike)
- top-1 score below its threshold (per species or global) → unknown
- otherwise                                             → the species
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from edge.config.classify import ClassifyConfig
from edge.model import Prediction

UNKNOWN = "unknown"


@dataclass(frozen=True)
class Decision:
    kind: Literal["species", "unknown", "none"]
    species: str | None  # the label counted: a species, "unknown", or None for none
    confidence: float | None
    reason: str


def decide(
    predictions: Sequence[Prediction],
    config: ClassifyConfig,
    no_bird_labels: frozenset[str] = frozenset(),
    aliases: dict[str, set[str]] | None = None,
) -> Decision:
    """`aliases` maps a label to its other names (scientific/common) so config may use either."""
    if not predictions:
        return Decision("none", None, None, "no predictions")
    top = predictions[0]
    names = {top.label} | (aliases or {}).get(top.label, set())
    if names & no_bird_labels:
        return Decision("none", None, top.score, "no bird")
    if names & set(config.deny):
        return Decision("none", None, top.score, "denied")
    if config.allow and not names & set(config.allow):
        return Decision("unknown", UNKNOWN, top.score, "not on the allow list")
    threshold = config.threshold
    for name in names:
        if name in config.thresholds:
            threshold = config.thresholds[name]
            break
    if top.score < threshold:
        return Decision("unknown", UNKNOWN, top.score, f"score {top.score:.3f} below threshold {threshold:.2f}")
    return Decision("species", top.label, top.score, "ok")
