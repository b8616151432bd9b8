"""Each camera's clock as its recorded frames tell it: the times an ambiguous capture time is
resolved against, and the clock checks (rules: edge/store/clock_checks.py) applied with state.

Why its own object: the rules are pure, but applying them needs memory per camera (its last
trusted capture times, read once from the database and then kept as frames commit; the run of
doubtful frames being logged, so that a reset clock says one WARNING, not one per frame). That
state is not the Store's counting job; it lives here, on the Store's connection, as
`store.camera_clocks`. Only `flag_events` writes, inside the frame's transaction.
"""

from __future__ import annotations

import logging
import sqlite3
from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime

from edge.store import clock_checks
from edge.store.clock_checks import ClockRules
from edge.store.times import format_utc, parse_utc

# The store's log lines keep the one name they always had (operators' filters and log formats
# name it), wherever in edge/store the line is written.
log = logging.getLogger("edge.store.writer")


class CameraClocks:
    """The camera-clock checks with their per-camera memory, and the recorded-times query."""

    def __init__(self, conn: sqlite3.Connection, rules: ClockRules | None = None):
        self.conn = conn
        # [clock_checks] and each camera's configured deployment start, handed in by
        # wiring.open_store through the Store (the store reads no config).
        self.rules = rules if rules is not None else ClockRules()
        # camera → its last trusted capture times in arrival order (loaded at its first frame).
        self._recent: dict[str, deque[datetime]] = {}
        # camera → [flags logged, frames] of its current run of doubtful frames: one WARNING a run.
        self._doubt_runs: dict[str, list] = {}

    def recorded_times(self, camera: str, since: datetime, until: datetime) -> list[tuple[datetime, str, float | None]]:
        """(captured_at, path, mtime) of the camera's recorded frames with an EXIF time in
        [since, until]: the neighbours an ambiguous capture time is resolved against
        (edge.ingest.capture_time.resolve_ambiguous), across restarts too. Read-only, indexed
        on (camera, captured_at)."""
        return [(parse_utc(at), path, mtime) for at, path, mtime in self.conn.execute(
            """SELECT captured_at, path, mtime FROM frames
                   WHERE camera = ? AND status = 'ok' AND captured_at BETWEEN ? AND ?
                     AND time_source LIKE 'exif%' ORDER BY captured_at, id""",
            (camera, format_utc(since), format_utc(until)))]

    def check(self, camera: str, captured: datetime, now: datetime) -> tuple[str, ...]:
        """The doubtful flags of a capture time (aware, UTC) against the camera's recent frames."""
        return clock_checks.check(camera, captured, now, self._recent_times(camera), self.rules)

    def flag_events(self, event_ids: Iterable[int], doubt: tuple[str, ...]) -> None:
        """The visits a doubtful frame joined carry its flags (kept out of effort with them);
        inside the frame's transaction."""
        for event_id in event_ids:
            row = self.conn.execute("SELECT time_flags FROM events WHERE id = ?", (event_id,)).fetchone()
            merged = clock_checks.merge(clock_checks.parse(row[0] if row else None), doubt)
            self.conn.execute("UPDATE events SET time_flags = ? WHERE id = ?", (",".join(merged), event_id))

    def after_commit(self, camera: str, path: str, captured_at: datetime, doubt: tuple[str, ...],
                     now: datetime) -> None:
        """After the commit: a trusted time joins the camera's reference; a doubtful one is
        logged once per run of doubtful frames of the camera (a reset clock flags every frame
        after it: one WARNING, not one per frame), and the end of the run once."""
        recent = self._recent_times(camera)
        run = self._doubt_runs.get(camera)
        if not doubt:
            recent.append(captured_at.astimezone(UTC))
            if run is not None:
                del self._doubt_runs[camera]
                log.info("camera %s: capture times plausible again after %d flagged frame(s)", camera, run[1])
            return
        if run is None:
            run = self._doubt_runs[camera] = [set(), 0]
        run[1] += 1
        new = [flag for flag in doubt if flag not in run[0]]
        if not new:
            return
        run[0].update(new)
        log.warning("camera %s: frame %s captured at %s flagged %s (%s); recorded and counted, but kept out of "
                    "effort and deployment spans until the camera's clock is corrected; further frames of this "
                    "run are not logged one by one", camera, path, format_utc(captured_at),
                    ",".join(new), clock_checks.explain(new, camera, now, recent, self.rules))

    def _recent_times(self, camera: str) -> deque[datetime]:
        """The camera's last trusted capture times in arrival order: read once, at the camera's
        first frame since the store opened (so a restart goes on where the last run stopped),
        then kept as frames commit."""
        recent = self._recent.get(camera)
        if recent is None:
            rows = self.conn.execute(
                f"""SELECT captured_at FROM frames WHERE camera = ? AND status = 'ok' AND captured_at IS NOT NULL
                       AND {clock_checks.trusted_sql()} ORDER BY id DESC LIMIT ?""",
                (camera, clock_checks.RECENT_FRAMES)).fetchall()
            recent = self._recent[camera] = deque((parse_utc(row[0]) for row in reversed(rows)),
                                                  maxlen=clock_checks.RECENT_FRAMES)
        return recent
