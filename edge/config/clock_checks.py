"""[clock_checks] section: when a camera's capture time is too doubtful to file a count under
(rules: edge/store/clock_checks.py)."""

from __future__ import annotations

from pydantic import Field

from edge.config.base import Section


class ClockChecksConfig(Section):
    future_tolerance_s: float = Field(
        default=86400.0, ge=0, le=366 * 86400,
        description="A frame captured more than this many seconds after this device's clock (when it is "
                    "processed) is flagged `future`: a camera clock set ahead, or a wrong year. One day by "
                    "default, so a camera in another zone than the station is not flagged; 0 = no check")
    out_of_order_s: float = Field(
        default=30 * 86400.0, ge=0, le=10 * 366 * 86400,
        description="A frame captured more than this many seconds before its camera's recent frames (the "
                    "median of the last 25 not flagged, in arrival order) is flagged `out-of-order`: a clock "
                    "reset to its factory date after a battery change. 30 days by default; 0 = no check")
