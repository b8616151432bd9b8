"""From a model's top predictions to what the frame counts as: a species, `unknown`, or nothing.

- top-1 is the no-bird label (AIY "background")        → none (not counted)
- top-1 is on the deny list                             → none (the operator never wants it counted)
- an allow list is set and top-1 is not on it           → unknown (most likely a look-alike)
- top-1 score below its threshold (per species or global):
    roll-up ([taxonomy] rollup, `context.rollup`): the lowest-rank taxon whose summed score
    reaches its rank's threshold (subspecies into their species, then genus, family, order;
    edge/classify/taxonomy.py)                          → that taxon ("Turdus sp.", rank genus)
    no taxon does                                       → unknown
- otherwise                                             → the species

The roll-up is one step (`_roll_up`) at the one place a frame would otherwise become
`unknown` for want of confidence: it never replaces a species the model is sure of, nor a
no-bird, denied or not-allowed decision. Its Decision keeps the model's own top-1 in
`model_species`/`model_confidence`.

With a species prior (`context.occurrence`, edge/classify/prior.py), one more step runs after the
no-bird and deny checks: a top-1 that is out of range at the station that week gives way to
the best in-range prediction (its share of the belief left), which then meets the allow list
and threshold like any top-1; a top-1 scored >= `[prior] rarity_confidence` is `unknown` and
flagged OUT_OF_RANGE (a possible rarity). The decision keeps the model's own top-1 in
`model_species`/`model_confidence`. Without a prior the decision is exactly as above.

With a detector, each bird's crop is decided by the same rules (`decide_bird`), and the
classifier may veto the detector (issue 21: nothing that is not a bird is counted as one).
A crop is **not a bird** when
- its top-1 is the no-bird label (AIY "background"), or
- its total bird probability, 1 - the no-bird label's score, is below `[classify]
  min_bird_probability` (only for a model with a no-bird label, and only when that label's
  score is among the predictions given: the pipeline passes every score for such a model).
Such a detection is kind `none` with flag NOT_BIRD (`not_bird`), species None, confidence =
the no-bird score (how sure the classifier is that it is not a bird), the model's own top-1
kept in `model_species`: it is recorded with its box and top-k and never counted (no event,
tally or MQTT message). Why kind `none` plus a flag rather than a new kind: `detections.kind`
has a CHECK ('species', 'unknown', 'none') since schema 3, which SQLite cannot alter without
rebuilding the table, and `none` already means "counts as nothing" to every reader; the flag
says why (a denied species has no flag). Camtrap DP exports such a detection as an `animal`
observation without a scientificName (edge/exports/camtrap_dp.py). A denied species still
counts as nothing; a crop with no predictions at all stays `unknown`, counted (the classifier
said nothing either way) when the detector is sure of it.

A detector's box is also no bird when **neither model is sure** of it: the classifier cannot
name it (kind `unknown`, top-1 below `[classify] threshold`, no rarity flag) and the detector
scored it below `[classify] unnamed_min_detector_score` (0.6). Kind `none`, flag UNCONFIRMED
(`unconfirmed`), recorded and never counted, like NOT_BIRD; Camtrap DP exports it as an
`unknown` observation (the standard's type for "not sure there is an animal"). Why: AIY's
no-bird label means an empty picture, so a squirrel's or an opossum's crop has a bird
probability >= 0.996 and the veto above never fires on mammals; what tells them apart from a
real bird on real frames is that both models hesitate (docs/edge.md, "Not a bird").
Whole frames (no detector) are decided by `decide` alone, as before.

Names in allow, deny and thresholds are matched case-sensitively against a label and its
scientific and common names; `unknown_species` checks them against the model at start and
at every model reload, so a misspelt name is refused instead of silently matching nothing.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from edge.classify.labels import Label
from edge.classify.model import Prediction
from edge.classify.prior import RangeChoice, range_aware
from edge.config.classify import ClassifyConfig

UNKNOWN = "unknown"


# The ranks a counted name may have: a species, or a higher taxon when only that is certain
# (taxonomic roll-up, edge/classify/taxonomy.py).
RANKS: tuple[str, ...] = ("species", "genus", "family", "order", "class")

# Decision.flag values.
OUT_OF_RANGE = "out_of_range"  # the model named, confidently, a species the prior says is not expected here
NOT_BIRD = "not_bird"  # a detector's box the classifier judges not to be a bird: recorded, never counted
UNCONFIRMED = "unconfirmed"  # a detector's box neither model is sure of (weak box, no name): recorded, never counted
# The flags of a detector's box that is recorded but never counted as a bird (kind `none`).
NOT_COUNTED_FLAGS = frozenset({NOT_BIRD, UNCONFIRMED})


@dataclass(frozen=True)
class Decision:
    kind: Literal["species", "unknown", "none"]
    species: str | None  # the label counted: a species (or a rolled-up taxon), "unknown", or None for none
    confidence: float | None
    reason: str
    # The classifier's own top-1 label and score, whatever the prior or the roll-up made of it
    # (None: the same as species/confidence). Kept so that both can be shown and reviewed.
    model_species: str | None = None
    model_confidence: float | None = None
    rank: str = "species"  # the rank of `species` (RANKS); a roll-up gives "genus", "family", ...
    flag: str | None = None  # OUT_OF_RANGE: a possible rarity, flagged for review, never dropped;
    # NOT_BIRD (kind none): a detection the classifier vetoed as not a bird; UNCONFIRMED (kind
    # none): a weak box the classifier could not name either

    @property
    def not_bird(self) -> bool:
        """A detector's box that is recorded and never counted as a bird: the classifier judged
        it not to be one (NOT_BIRD), or neither model was sure of it (UNCONFIRMED)."""
        return self.flag in NOT_COUNTED_FLAGS


@dataclass(frozen=True)
class DecisionContext:
    """What decide() knows beyond the model's scores, for the frame at hand.

    occurrence: the species prior at this station and week (edge/classify/prior.py): label →
    occurrence score 0..1; a label absent from the mapping has no prior opinion (never excluded
    for that). None: no prior configured.
    rollup: the taxonomic roll-up (edge/classify/taxonomy.py), None: off.
    """

    occurrence: Any = None  # Mapping[str, float] | None
    rollup: Any = None      # edge.classify.taxonomy.RollUp | None


def decide(
    predictions: Sequence[Prediction],
    config: ClassifyConfig,
    no_bird_labels: frozenset[str] = frozenset(),
    aliases: dict[str, set[str]] | None = None,
    *,
    context: DecisionContext | None = None,
) -> Decision:
    """`aliases` maps a label to its other names (scientific/common) so config may use either.
    `context`: what is known beyond the scores (the species prior, the roll-up); None: neither."""
    if not predictions:
        return Decision("none", None, None, "no predictions")
    top = predictions[0]
    names = {top.label} | (aliases or {}).get(top.label, set())
    if names & no_bird_labels:
        return Decision("none", None, top.score, "no bird")
    if names & set(config.deny):
        return Decision("none", None, top.score, "denied")
    # The species prior (edge/classify/prior.py): an out-of-range top-1 gives way to the in-range rest.
    if context is not None and context.occurrence is not None:
        ranged = range_aware(predictions, context.occurrence, no_bird_labels)
        if ranged is not None:
            return _out_of_range(ranged, config, no_bird_labels, aliases, context)
    if config.allow and not names & set(config.allow):
        return Decision("unknown", UNKNOWN, top.score, "not on the allow list")
    threshold = config.threshold
    for name in names:
        if name in config.thresholds:
            threshold = config.thresholds[name]
            break
    if top.score < threshold:
        rolled = _roll_up(predictions, top, threshold, context)
        if rolled is not None:
            return rolled
        return Decision("unknown", UNKNOWN, top.score, f"score {top.score:.3f} below threshold {threshold:.2f}")
    return Decision("species", top.label, top.score, "ok")


def _roll_up(predictions: Sequence[Prediction], top: Prediction, threshold: float,
             context: DecisionContext | None) -> Decision | None:
    """The roll-up step: the taxon `context.rollup` finds (edge.classify.taxonomy.RollUp.find,
    summing over every prediction given), counted at its rank; None: no roll-up, or no taxon
    certain enough. `threshold` is the top-1's own, which subspecies summed into a species need."""
    if context is None or context.rollup is None:
        return None
    found = context.rollup.find(predictions, threshold)
    if found is None:
        return None
    taxon, score = found
    return Decision("species", taxon.name, score,
                    f"roll-up: {taxon.rank} {taxon.scientific_name} sums {score:.3f} "
                    f"(top-1 {top.label} {top.score:.3f} below {threshold:.2f})",
                    model_species=top.label, model_confidence=top.score, rank=taxon.rank)


def _out_of_range(ranged: RangeChoice, config: ClassifyConfig, no_bird_labels: frozenset[str],
                  aliases: dict[str, set[str]] | None, context: DecisionContext) -> Decision:
    """The decision when the model's top-1 is out of range: the in-range rest decided by the
    same rules (the prior has had its say, the roll-up still may), the model's top-1 kept, and
    the flag for a possible rarity. Nothing in range left, or a rarity: `unknown`."""
    top = ranged.top
    flag = OUT_OF_RANGE if ranged.rarity else None
    if not ranged.predictions:
        reason = ranged.reason if ranged.rarity else f"{ranged.reason}; nothing in range among the top predictions"
        return Decision("unknown", UNKNOWN, top.score, reason, model_species=top.label,
                        model_confidence=top.score, flag=flag)
    decision = decide(ranged.predictions, config, no_bird_labels, aliases,
                      context=dataclasses.replace(context, occurrence=None))
    return dataclasses.replace(decision, reason=f"{ranged.reason}; {decision.reason}",
                               model_species=top.label, model_confidence=top.score, flag=flag)


def decide_bird(
    predictions: Sequence[Prediction],
    config: ClassifyConfig,
    no_bird_labels: frozenset[str] = frozenset(),
    aliases: dict[str, set[str]] | None = None,
    *,
    context: DecisionContext | None = None,
    every_score: Sequence[Prediction] | None = None,
    detector_score: float | None = None,
) -> Decision:
    """The decision for a detector's bird: as `decide`, except that the classifier may veto the
    detector (not a bird: kind none, flag NOT_BIRD, see the module's docstring), a crop
    without predictions is `unknown`, and a weak box the classifier cannot name is no bird
    either (`detector_score` below `[classify] unnamed_min_detector_score`: kind none, flag
    UNCONFIRMED). `every_score`: more of the model's scores than `predictions` (all of them),
    for the bird probability, when `decide` is to see only the top-k."""
    if not predictions:
        return _confirmed(Decision("unknown", UNKNOWN, None, "the detector's bird, no predictions"),
                          None, config, detector_score)
    top = predictions[0]
    probability = bird_probability(every_score if every_score is not None else predictions, no_bird_labels)
    no_bird_score = 1.0 - probability if probability is not None else None
    decision = decide(predictions, config, no_bird_labels, aliases, context=context)
    if decision.kind == "none" and decision.reason == "no bird":
        return Decision("none", None, no_bird_score if no_bird_score is not None else top.score,
                        f"not a bird: top-1 is the no-bird label {top.label} {top.score:.3f}",
                        model_species=top.label, model_confidence=top.score, flag=NOT_BIRD)
    if decision.kind == "none":  # denied
        return decision
    if probability is not None and probability < config.min_bird_probability:
        return Decision("none", None, no_bird_score,
                        f"not a bird: bird probability {probability:.3f} below {config.min_bird_probability:.2f}",
                        model_species=top.label, model_confidence=top.score, flag=NOT_BIRD)
    return _confirmed(decision, top, config, detector_score)


def _confirmed(decision: Decision, top: Prediction | None, config: ClassifyConfig,
               detector_score: float | None) -> Decision:
    """The decision, or UNCONFIRMED when neither model is sure: the classifier could not name the
    crop (kind `unknown`, its top-1 below `[classify] threshold`, no rarity flag) and the
    detector's score is below `unnamed_min_detector_score`. Either model alone may carry a bird:
    a confident box the classifier cannot name stays an `unknown` bird, and a weak box the
    classifier names stays that species. Measured on ../shared (issue 21): the mammals and the
    stone the COCO SSD boxed on trailcam-nobird scored 0.51-0.57 and were unnamed; 5 of the 95
    real birds it found in composed scenes were unnamed and below 0.6."""
    if decision.kind != "unknown" or decision.flag is not None or detector_score is None:
        return decision
    if top is not None and top.score >= config.threshold:  # a name the classifier is sure of, not allowed here
        return decision
    if detector_score >= config.unnamed_min_detector_score:
        return decision
    named = f"top-1 {top.label} {top.score:.3f}" if top is not None else "no predictions"
    return Decision("none", None, decision.confidence,
                    f"unconfirmed: the classifier cannot name it ({named}) and the detector's score "
                    f"{detector_score:.3f} is below {config.unnamed_min_detector_score:.2f}",
                    model_species=top.label if top is not None else None,
                    model_confidence=top.score if top is not None else None, flag=UNCONFIRMED)


def bird_probability(predictions: Sequence[Prediction], no_bird_labels: frozenset[str]) -> float | None:
    """The classifier's total probability that the crop is a bird: 1 - the no-bird label's score.
    None when it cannot be known: the model has no no-bird label, or that label's score is not
    among `predictions` (a top-k cut it off; then it is at most the k-th score, so the bird
    probability is high anyway)."""
    if not no_bird_labels:
        return None
    for prediction in predictions:
        if prediction.label in no_bird_labels:
            return min(max(1.0 - prediction.score, 0.0), 1.0)
    return None


def label_aliases(labels: Iterable[Label]) -> dict[str, set[str]]:
    """Label → its other names (scientific, common), the `aliases` decide() takes, so that a
    configuration may name a species either way. One function for the daemon and `edge
    classify`, so both decide a prediction alike."""
    aliases: dict[str, set[str]] = {}
    for label in labels:
        others = {n for n in (label.scientific_name, label.common_name) if n and n != label.name}
        if others:
            aliases[label.name] = others
    return aliases


def label_names(labels: Iterable[Label]) -> set[str]:
    """Every name a configuration may use for a class: its label, scientific and common name.

    The same names decide() matches (the pipeline passes the scientific and common names as
    `aliases`), and with the same case-sensitive comparison, so a name accepted here is one
    that can actually match a prediction.
    """
    names: set[str] = set()
    for label in labels:
        names.update(n for n in (label.name, label.scientific_name, label.common_name) if n)
    return names


def _suggestion(name: str, known: set[str]) -> str:
    folded = {n.casefold(): n for n in known}
    if name.casefold() in folded:  # only the case differs: matching is case-sensitive
        return f" (did you mean {folded[name.casefold()]!r}? names are case-sensitive)"
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown_species(config: ClassifyConfig, labels: Iterable[Label]) -> list[str]:
    """One line per name in allow, deny or thresholds that the model cannot predict.

    Such a name is always a mistake: a misspelt deny entry silently counts what the operator
    wanted ignored, and an allow list that matches nothing turns every frame into `unknown`.
    Each line names the dotted key, e.g.
    `classify.deny[0]: 'Turdus migratoriuss' is not a label of the model (did you mean 'Turdus migratorius'?)`.
    """
    known = label_names(labels)
    problems = []
    entries = [(f"classify.allow[{i}]", name) for i, name in enumerate(config.allow)]
    entries += [(f"classify.deny[{i}]", name) for i, name in enumerate(config.deny)]
    entries += [(f"classify.thresholds.{json.dumps(name, ensure_ascii=False)}", name) for name in config.thresholds]
    for key, name in entries:
        if name not in known:
            problems.append(f"{key}: {name!r} is not a label of the model{_suggestion(name, known)}")
    return problems
