"""Is a capture time plausible? The per-camera clock checks, as rules (the store applies them).

A count is only as good as the time it is filed under, and trail-camera clocks lie: a battery
change resets one to its factory date (2000-01-01) in the middle of a deployment, another is set
to the wrong year. Nothing here drops a frame: a doubtful capture time is *flagged*
(`frames.time_flags`, `events.time_flags`), the frame is recorded and counted as always (`edge
counts` loses nothing), and the flags keep it out of what a wrong time would falsify: the
deployment's start and end derived from the data, `edge report`'s effort and gaps, and the
analyses' events (edge/ecology/deployments.py, edge/ecology/analyses.py); Camtrap DP marks the
deployment `timestampIssues`. A correction of the camera's clock is what takes a frame back in.

The rules, per frame of status ok with a capture time, in the store's frame transaction:

- `future`: captured more than `[clock_checks] future_tolerance_s` (default one day) after this
  device's clock when it is recorded. A day, so that a camera in another zone than the station
  (at most 14 h away) is never flagged for that. Only a frame recorded live can be caught:
  a backlog recorded after its (wrong) time has passed looks plausible.
- `before-deployment`: captured before the camera's configured `[cameras.deployment] start`
  (handed to the Store at construction; no tolerance: a frame before the start is outside the
  deployment whatever the reason, a wrong clock or the camera's test shots at set-up).
- `out-of-order`: captured more than `[clock_checks] out_of_order_s` (default 30 days) *before*
  the camera's reference time: the median of its last `RECENT_FRAMES` (25) frames in arrival
  order that carry none of these three flags. The median, so one odd frame that slipped through
  cannot move it; flagged frames are no reference, so a reset clock stays flagged frame after
  frame until it is corrected, however many frames it takes after the reset. Only a jump *backwards* is flagged: a camera that was away for two months
  and comes back resumes with a jump forwards, as does a reset clock that was set right again;
  a clock set too far ahead is `future`. Arrival order is the file order of the camera folder,
  so a card copied in after a later one is flagged too (its frames stay counted: the flag says
  only that their time needs a look).
- The capture-time code adds its own flags (`ambiguous`, `nonexistent`, `malformed-offset`:
  edge/ingest/capture_time.py); those times are resolved by a documented rule, so they are
  neither "doubtful" here nor kept out of effort.

What a frame's flags do to its visit: the visit (event) carries the union of its frames' doubtful
flags (`events.time_flags`) and is kept out of the analyses with them; it stays in `edge counts`,
`edge events` and the exports' observations of the deployment where its time falls.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from edge.store.times import format_utc

FUTURE = "future"
BEFORE_DEPLOYMENT = "before-deployment"
OUT_OF_ORDER = "out-of-order"
# The flags that make a capture time doubtful: kept out of effort and deployment spans.
DOUBTFUL: tuple[str, ...] = (FUTURE, BEFORE_DEPLOYMENT, OUT_OF_ORDER)
# Frames of the camera that make its reference time (the median of the last ones not flagged).
RECENT_FRAMES = 25

DEFAULT_FUTURE_TOLERANCE_S = 86400.0
DEFAULT_OUT_OF_ORDER_S = 30 * 86400.0


@dataclass(frozen=True)
class ClockRules:
    """The tolerances (None: that check is off) and each camera's configured deployment start
    (aware datetimes; a camera without one is not checked for `before-deployment`)."""

    future_tolerance: timedelta | None = timedelta(seconds=DEFAULT_FUTURE_TOLERANCE_S)
    out_of_order: timedelta | None = timedelta(seconds=DEFAULT_OUT_OF_ORDER_S)
    deployment_starts: Mapping[str, datetime] = field(default_factory=dict)

    @classmethod
    def of(cls, future_tolerance_s: float, out_of_order_s: float,
           deployment_starts: Mapping[str, datetime] | None = None) -> ClockRules:
        """From `[clock_checks]`'s seconds (0 = off)."""
        return cls(timedelta(seconds=future_tolerance_s) if future_tolerance_s > 0 else None,
                   timedelta(seconds=out_of_order_s) if out_of_order_s > 0 else None,
                   dict(deployment_starts or {}))


def reference(recent: Sequence[datetime]) -> datetime | None:
    """The camera's reference time: the (lower) median of its recent trusted capture times."""
    return statistics.median_low(recent) if recent else None


def check(camera: str, captured: datetime, now: datetime, recent: Sequence[datetime],
          rules: ClockRules) -> tuple[str, ...]:
    """The doubtful flags of one capture time (aware), in DOUBTFUL's order; () = plausible.
    `recent`: the camera's last RECENT_FRAMES trusted capture times in arrival order."""
    flags = []
    if rules.future_tolerance is not None and captured > now + rules.future_tolerance:
        flags.append(FUTURE)
    start = rules.deployment_starts.get(camera)
    if start is not None and captured < start:
        flags.append(BEFORE_DEPLOYMENT)
    middle = reference(recent)
    if rules.out_of_order is not None and middle is not None and captured < middle - rules.out_of_order:
        flags.append(OUT_OF_ORDER)
    return tuple(flags)


def parse(text: str | None) -> tuple[str, ...]:
    """A stored `time_flags` value as its flags (NULL or empty: none)."""
    return tuple(flag for flag in (text or "").split(",") if flag)


def merge(*groups: Iterable[str]) -> tuple[str, ...]:
    """Flags from several sources, each once, in the order first seen."""
    return tuple(dict.fromkeys(flag for group in groups for flag in group))


def doubtful(flags: Iterable[str]) -> tuple[str, ...]:
    """The flags among these that keep a frame out of effort and deployment spans."""
    return tuple(flag for flag in flags if flag in DOUBTFUL)


def trusted_sql(column: str = "time_flags") -> str:
    """An SQL condition true for a row whose `column` holds no doubtful flag (NULL: none). The
    capture-time code's own flags (ambiguous, nonexistent, malformed-offset) do not count."""
    return "(" + f"{column} IS NULL OR (" + " AND ".join(
        f"instr({column}, '{flag}') = 0" for flag in DOUBTFUL) + "))"


def explain(flags: Iterable[str], camera: str, now: datetime, recent: Sequence[datetime],
            rules: ClockRules) -> str:
    """Why each doubtful flag was given, for the log line an operator reads."""
    why = []
    for flag in flags:
        if flag == FUTURE and rules.future_tolerance is not None:
            why.append(f"future: more than {_span(rules.future_tolerance)} after this device's clock "
                       f"({format_utc(now)})")
        elif flag == BEFORE_DEPLOYMENT and camera in rules.deployment_starts:
            why.append(f"before-deployment: before the camera's [cameras.deployment] start "
                       f"({format_utc(rules.deployment_starts[camera])})")
        elif flag == OUT_OF_ORDER and rules.out_of_order is not None and (median := reference(recent)) is not None:
            why.append(f"out-of-order: more than {_span(rules.out_of_order)} before the camera's recent frames "
                       f"(median {format_utc(median)})")
    return "; ".join(why)


def _span(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    if seconds % 86400 == 0:
        days = int(seconds // 86400)
        return f"{days} day{'s' if days != 1 else ''}"
    return f"{seconds:g} s"
