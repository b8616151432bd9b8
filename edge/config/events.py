"""[events] section: how frames are grouped into independent visits."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class EventsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Frames of one camera closer than this belong to one visit (camera-trap practice: 60 s
    # for bursts; ecologists often use 30 min for independent detections).
    independence_s: float = Field(default=60.0, gt=0, le=86400)
