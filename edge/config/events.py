"""[events] section: how frames are grouped into independent visits (rules: edge/store/events.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from edge.config.base import SECTION_CONFIG


class EventsConfig(BaseModel):
    model_config = SECTION_CONFIG

    # Frames of one camera closer than this belong to one visit (camera-trap practice: 60 s
    # for bursts; ecologists often use 30 min for independent detections).
    independence_s: float = Field(default=60.0, gt=0, le=86400)
    # "camera": one visit per camera, its species voted by its frames (a misnamed frame in a
    # burst cannot invent a visit); "species": one visit per camera and species.
    group_by: Literal["camera", "species"] = "camera"
    # No visit lasts longer than this: a bird that sits at the feeder all afternoon (or a
    # branch that keeps triggering the camera) is several visits, and a frame's cost stays
    # bounded. A frame that would stretch an event beyond it starts a new one. 0 = no cap.
    max_duration_s: float = Field(default=1800.0, ge=0, le=7 * 86400)
