"""[privacy] section: pictures of people stay on the station.

A detector with a person class (MegaDetector) records the frames it finds people in
(edge/store frame_objects). Camera-trap practice keeps such pictures private: Camtrap DP marks
their media `filePublic = false`, and GBIF, Wildlife Insights and Agouti all hide human images by
default, because a hiker, a neighbour or a child in a garden is an identifiable person (GDPR and
its kin), never the subject of the survey. So the default hides them, and a station that must
show them (a private yard whose owner wants to see the postman) opts out.
"""

from __future__ import annotations

from pydantic import Field

from edge.config.base import Section


class PrivacyConfig(Section):
    hide_people: bool = Field(
        default=True,
        description="Frames in which the detector found a person ([detector] person_labels) are kept "
                    "private: Camtrap DP exports list them with filePublic = false and observationType "
                    "\"human\", `edge export training-set` leaves them out, and `edge web` shows a "
                    "placeholder instead of the frame, its crops and an event snapshot cut from it. "
                    "false shows and exports them like any frame")
