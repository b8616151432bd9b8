"""Grouping frames into visits (events), as camera-trap practice does.

A trail camera shoots bursts: a bird in front of the lens for 30 s is one visit, not 30.
Frames of one camera whose capture times are within `independence_s` of an event's span join
that event; a longer gap starts a new one. An event's species comes from its frames: the
species with the highest summed confidence over the event's frames (so one misread frame in a
burst does not split or relabel the visit); `unknown` only when no frame named a species.
Frames that show no bird neither join nor extend events.

These are pure functions; edge/store.py applies them inside the frame's transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from edge.decision import UNKNOWN


def joins(started_at: datetime, ended_at: datetime, captured_at: datetime, independence: timedelta) -> bool:
    """True when a frame captured at `captured_at` belongs to an event spanning [start, end]."""
    return started_at - independence <= captured_at <= ended_at + independence


def choose_species(votes: Mapping[str, tuple[float, float]]) -> tuple[str, float]:
    """votes: species → (summed confidence, best confidence). Returns (species, best confidence).

    Named species beat `unknown`; among them the highest summed confidence wins, ties go to
    the alphabetically first label so the choice is deterministic.
    """
    named = {label: vote for label, vote in votes.items() if label != UNKNOWN}
    pool = named or dict(votes)
    if not pool:
        return UNKNOWN, 0.0
    label = min(pool, key=lambda name: (-pool[name][0], name))
    return label, pool[label][1]
