"""Grouping frames into visits (events), as camera-trap practice does.

A trail camera shoots bursts: a bird in front of the lens for 30 s is one visit, not 30. As in
camera-trap studies ("independent detections"), a visit is per camera AND species: a frame of
species S joins the camera's event of S whose span [start, end] it falls within
`independence_s` of (before or after: backlog frames may arrive out of order); a longer gap
starts a new event. Two species at a feeder at once are two visits, as an ecologist counts them.

Frames the model is unsure about (`unknown`) do not invent visits of their own while a visit
is going on: they join the camera's most recent event within the interval, whatever its
species. An event of only unknown frames takes the species of the first named frame that joins
it ("its species from its frames"). Frames with no bird neither join nor extend events.

The store (edge/store.py) applies these rules inside the frame's transaction; this module
holds the species rule so it is stated once.
"""

from __future__ import annotations

from edge.decision import UNKNOWN


def event_species(current: str, frame_species: str) -> str:
    """The event's species after a frame of `frame_species` joined an event of `current`."""
    if current == UNKNOWN and frame_species != UNKNOWN:
        return frame_species
    return current
