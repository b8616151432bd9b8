"""`edge thresholds suggest`: per-species confidence thresholds from what reviewers said.

Why: `[classify] threshold` is one number for every species, but a look-alike needs more
certainty than a bird nothing resembles. Reviews record, for each reviewed event or bird, the
machine's species and confidence and whether it was right: confirmed = right; corrected or
rejected = wrong. For a precision goal P, the suggested threshold of a species is the lowest
reviewed confidence t at which the share of right ones among its reviewed outcomes at or above
t is >= P. Only what the machine named is reviewed (outcomes below today's threshold were
`unknown`, with no species to score), so a suggestion below the current threshold is an
extrapolation to the lowest confidence that was reviewed, never below it.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from dataclasses import dataclass

UNKNOWN = "unknown"


@dataclass(frozen=True)
class Outcome:
    species: str  # what the machine said
    confidence: float
    right: bool


@dataclass(frozen=True)
class Suggestion:
    species: str
    reviews: int
    right: int
    threshold: float | None  # None: too few reviews, or no threshold reaches the goal
    precision: float | None  # the share right at or above `threshold`
    kept: int  # right outcomes at or above `threshold` (what the threshold still counts)
    status: str  # "ok" | "too few reviews" | "unreachable"


def reviewed_outcomes(conn: sqlite3.Connection) -> list[Outcome]:
    """Every effective review verdict of an event or a detection the machine gave a species.

    The review caches (events/detections.review_state) hold the effective verdict (undone
    reviews no longer count); the machine's columns are never changed by a review."""
    outcomes = []
    for table in ("events", "detections"):
        rows = conn.execute(
            f"""SELECT species, confidence, review_state FROM {table}
                WHERE review_state IN ('confirmed', 'corrected', 'rejected')
                  AND species IS NOT NULL AND species != ? AND confidence IS NOT NULL""", (UNKNOWN,))
        outcomes += [Outcome(species, float(confidence), state == "confirmed") for species, confidence, state in rows]
    return outcomes


def lowest_threshold(outcomes: list[Outcome], precision: float) -> tuple[float, float, int] | None:
    """(threshold, precision at it, right ones kept) for the lowest reviewed confidence reaching
    the goal, or None when not even the most confident outcome alone does."""
    ordered = sorted(outcomes, key=lambda o: -o.confidence)
    best = None
    right = total = 0
    for i, outcome in enumerate(ordered):
        right += outcome.right
        total += 1
        # Ties: a threshold at this confidence keeps every outcome of the same confidence.
        if i + 1 < len(ordered) and ordered[i + 1].confidence == outcome.confidence:
            continue
        if right / total >= precision:
            best = (outcome.confidence, right / total, right)
    return best


def suggest(outcomes: list[Outcome], precision: float, min_reviews: int) -> list[Suggestion]:
    """One Suggestion per species reviewed, sorted by species."""
    by_species: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        by_species[outcome.species].append(outcome)
    result = []
    for species, items in sorted(by_species.items()):
        right = sum(o.right for o in items)
        if len(items) < min_reviews:
            result.append(Suggestion(species, len(items), right, None, None, 0, "too few reviews"))
            continue
        found = lowest_threshold(items, precision)
        if found is None:
            result.append(Suggestion(species, len(items), right, None, None, 0, "unreachable"))
        else:
            result.append(Suggestion(species, len(items), right, round(found[0], 4), found[1], found[2], "ok"))
    return result


def toml_lines(suggestions: list[Suggestion]) -> list[str]:
    """The [classify] thresholds lines for the species that have a suggestion."""
    from edge.config.reference import (
        toml_value,  # quoting as the configuration reference quotes
    )

    entries = ", ".join(f"{toml_value(s.species)} = {s.threshold}" for s in suggestions if s.threshold is not None)
    return ["[classify]", f"thresholds = {{ {entries} }}"]
