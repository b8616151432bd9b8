"""Grouping frames into visits (events), as camera-trap practice does.

A trail camera shoots bursts: a bird in front of the lens for 30 s is one visit, not 30. A
counted frame (a named species or `unknown`) joins an event whose span [start, end] it falls
within `independence_s` of (before or after: backlog frames may arrive out of order); a longer
gap starts a new event, which also ends the camera's open events that the frame proves over.
Frames with no bird (or a denied species) neither join nor extend events.

No event is longer than `[events] max_duration_s` (default 30 min; 0 = no cap): a frame that
would stretch the event it joins beyond that (from its first to its last frame) starts a new
event instead, and the capped event is closed (`end`). A bird that stays all afternoon is
several visits, as camera-trap studies count it, and no event grows without bound.

Which events a frame may join depends on `[events] group_by`:

- `camera` (default): per camera, whatever the species. One bird in front of the lens is one
  visit even when the model misnames a frame or two of its burst, so a single misclassified
  frame cannot invent a visit of a (often rare) look-alike species.
- `species`: per camera AND species: a frame of species S joins the camera's event of S (else
  an all-`unknown` event), so two species at a feeder at once are two visits. `unknown` frames
  join the camera's most recent event within the interval, whatever its species.

The event takes "its species from its frames" by a majority vote (`vote`): the species with
the most frames, `unknown` excluded; a tie goes to the higher summed confidence, then to the
species seen first. An event of only `unknown` frames is `unknown`. (In `species` mode an event
holds at most one named species, so the vote simply names an all-unknown event after the first
named frame that joins it.) The event's confidence is the best confidence among its frames of
the winning species. When the vote changes an event's species, its event count in the daily
tallies moves from the old species to the new one; frame counts always stay with each frame's
own species. The votes are each event's own state (per species: frames, summed and best
confidence, first frame; `event_votes` in the store), updated with every frame, so a frame's
cost does not grow with its visit and frame rows pruned by retention keep voting as they did.
(A version-1 database's pruned rows, which only the event's frame_count remembers, vote for
the event's species, as version 1 counted them.)

Per-species counts in a visit
-----------------------------
A visit is one camera's burst of activity and may hold several species (with `group_by =
"camera"`, the default): a Mourning Dove and a Downy Woodpecker at the feeder together are one
visit that counts one dove and one woodpecker. Each species counted in a visit has its own
number of individuals: the most birds of that species in any one frame of the visit (MaxN per
species), and its own observation in the exports. `species_counts` decides which of the visit's
names count, so that a bird misnamed in a frame or two of its burst still does not invent a
second species:

- the visit's headline species (the vote above: the species seen in the most frames) counts;
- a species seen in one frame together with another name (two different birds at once: they
  cannot be one bird misnamed) counts;
- a named species (rank species) seen in at least `species_min_frames` frames of the visit
  (default 3) counts: a second species that came while the first was still there, or after it
  left (the camera cannot tell which without a detector);
- `unknown` and rolled-up taxa (`Turdus sp.`, a family) count only as the headline or when seen
  together with another name: alone in a few frames of a named visit they are most likely the
  same bird, seen less well. Beside named species, `unknown` counts only the birds the names do
  not explain: at most the visit's most birds in one frame minus the named species' counts (a
  woodpecker left unnamed beside a dove in one frame and named in the next is not a third bird).

The headline species (`events.species`, the web app's card, MQTT's `species`) is the vote's
winner. `events.individuals` stays the most birds of any species in one frame (all birds at
once). A species that does not count keeps its frames in the frames tally (what the model saw).

Reviews move counts: an event-level correction counts the whole visit as the reviewed species
(its individuals: the most birds in one frame, or the reviewed number); a rejection counts
nothing; an `individuals` review sets the number of the headline species (or of the species it
names). A bird-level review (a detection corrected or rejected) recounts the species it moves
from the visit's stored detections; species no bird review touched keep the machine's count
(the frame rows retention pruned cannot be recounted). Undo restores the counts.

The store (edge/store/writer.py, edge/store/counts.py) applies these rules inside the frame's
or the review's transaction; this module states them once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from edge.classify.decision import UNKNOWN

GROUP_BY_VALUES: tuple[str, ...] = ("camera", "species")
DEFAULT_SPECIES_MIN_FRAMES = 3


def beyond_cap(started: datetime, ended: datetime, captured: datetime, max_duration: timedelta | None) -> bool:
    """Whether joining would stretch the event beyond `[events] max_duration_s` (None: no cap),
    from its first to its last frame: then the frame starts a new visit and the event ends."""
    if max_duration is None:
        return False
    return max(ended, captured) - min(started, captured) > max_duration


@dataclass(frozen=True)
class SpeciesVotes:
    """What the frames of one species contribute to an event's vote."""

    species: str
    frames: int
    confidence_sum: float
    best_confidence: float | None
    first_at: str  # UTC ISO text (text order is time order)


def vote(votes: Iterable[SpeciesVotes]) -> SpeciesVotes:
    """The winning species' votes: most frames (unknown excluded), then the higher summed
    confidence, then the earlier first frame. Only unknown votes → the unknown votes."""
    merged: dict[str, SpeciesVotes] = {}
    for item in votes:
        seen = merged.get(item.species)
        if seen is None:
            merged[item.species] = item
            continue
        best = [c for c in (seen.best_confidence, item.best_confidence) if c is not None]
        merged[item.species] = SpeciesVotes(
            item.species, seen.frames + item.frames, seen.confidence_sum + item.confidence_sum,
            max(best) if best else None, min(seen.first_at, item.first_at))
    if not merged:
        raise ValueError("an event has at least one frame to vote")
    named = [v for v in merged.values() if v.species != UNKNOWN]
    if not named:
        return merged[UNKNOWN]
    # max() keeps the first of equal keys, so sort by first frame time first for the last tie-break.
    return max(sorted(named, key=lambda v: v.first_at), key=lambda v: (v.frames, v.confidence_sum))


def counted(event: dict) -> tuple[str | None, int]:
    """What an event counts as: (species, individuals) after its event-level review, if any.

    A review is a human observation stored next to the machine's (edge/store/reviews.py): the
    machine's `species` and `individuals` stay as the frames made them, and the tallies, the
    reports and MQTT follow this. A rejected event (not a bird, empty) counts as nothing (None).
    """
    state = event.get("review_state")
    individuals = event.get("reviewed_individuals") or event.get("individuals") or 1
    if state == "rejected":
        return None, int(individuals)
    return (event.get("reviewed_species") or event["species"]), int(individuals)


@dataclass(frozen=True)
class SpeciesSeen:
    """What the machine saw of one name in a visit (the vote state plus MaxN): `event_votes`."""

    species: str
    frames: int
    individuals: int          # the most birds of this name in one frame of the visit
    together: bool = False    # seen in one frame together with another name
    rank: str = "species"     # "species", or the rank of a rolled-up taxon; unknown: "unknown"


@dataclass(frozen=True)
class SpeciesCount:
    """What a visit counts for one species: its individuals (MaxN) and the frames it was seen in."""

    species: str
    individuals: int
    frames: int


def species_counts(
    seen: Iterable[SpeciesSeen],
    headline: str,
    *,
    min_frames: int = DEFAULT_SPECIES_MIN_FRAMES,
    review_state: str | None = None,
    reviewed_species: str | None = None,
    reviewed_individuals: int | None = None,
    individuals_for: str | None = None,
    all_birds: int = 1,
) -> dict[str, SpeciesCount]:
    """species → what the visit counts for it, after the event-level review (module docstring).

    `seen`: the machine's names in the visit (bird reviews already applied by the caller);
    `headline`: the vote's winner; `all_birds`: the most birds of any name in one frame (what a
    visit corrected to one species counts); `individuals_for`: the species an `individuals`
    review counts (None: the headline).
    """
    if review_state == "rejected":
        return {}
    rows = list(seen)
    if reviewed_species:
        frames = max((r.frames for r in rows), default=1)
        n = reviewed_individuals or all_birds or 1
        return {reviewed_species: SpeciesCount(reviewed_species, int(n), int(frames))}
    rows = [r for r in rows if r.individuals > 0 and r.frames > 0]
    if rows and headline not in {r.species for r in rows}:
        # Bird reviews took every bird of the headline away: the name seen in the most frames
        # (a named one before unknown) heads the visit instead.
        headline = max(rows, key=lambda r: (r.species != UNKNOWN, r.frames, r.individuals, r.species)).species
    counts: dict[str, SpeciesCount] = {}
    for row in rows:
        keep = row.species == headline or row.together or (
            row.species != UNKNOWN and row.rank == "species" and row.frames >= min_frames)
        if keep:
            counts[row.species] = SpeciesCount(row.species, int(row.individuals), int(row.frames))
    if UNKNOWN in counts and headline != UNKNOWN:
        # Unknown birds beside named ones count only for the birds the names do not explain: a
        # visit never counts more birds than its most birds in one frame (`all_birds`) because
        # one bird was named in some frames and not in others (a woodpecker seen as `unknown`
        # beside the dove in one frame, named in the next, is not a third bird).
        named = sum(c.individuals for name, c in counts.items() if name != UNKNOWN)
        spare = max(0, int(all_birds) - named)
        if spare <= 0:
            del counts[UNKNOWN]
        else:
            seen_unknown = counts[UNKNOWN]
            counts[UNKNOWN] = SpeciesCount(UNKNOWN, min(seen_unknown.individuals, spare), seen_unknown.frames)
    if reviewed_individuals:
        target = individuals_for or headline
        if target in counts:
            counts[target] = SpeciesCount(target, int(reviewed_individuals), counts[target].frames)
    return counts
