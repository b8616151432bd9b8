"""[events] section: how frames are grouped into independent visits (rules: edge/store/events.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from edge.config.base import Section


class EventsConfig(Section):
    independence_s: float = Field(
        default=60.0, gt=0, le=86400,
        description="A counted frame within this many seconds of an event's span joins that visit; a longer "
                    "gap starts a new one (camera-trap practice: 60 s for bursts; ecologists often use "
                    "30 min, 1800, for independent detections)")
    group_by: Literal["camera", "species"] = Field(
        default="camera",
        description='"camera": one visit per camera whatever the species, named by a majority vote of its '
                    'frames (a misnamed frame in a burst cannot invent a visit); "species": one visit per '
                    "camera and species (two species at a feeder at once are two visits)")
    species_min_frames: int = Field(
        default=3, ge=1, le=1000,
        description="With group_by = \"camera\": a second species in a visit counts (its own MaxN) when it is "
                    "named in at least this many frames, or in one frame together with another species; the "
                    "visit's headline species always counts. A bird misnamed in fewer frames of its burst "
                    "does not invent a species (rules: edge/store/events.py)")
    max_duration_s: float = Field(
        default=1800.0, ge=0, le=7 * 86400,
        description="No visit lasts longer than this: a frame that would stretch an event beyond it starts a "
                    "new one (a bird at the feeder all afternoon, or a branch that keeps triggering the "
                    "camera, is several visits); 0 = no cap")
