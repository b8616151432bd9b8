"""The delivery thread: sends what the rules queued, never from the frame loop.

One thread with its own SQLite connection (as the MQTT publisher has), woken when a frame
queued something (after its post-processing: `ReleaseGate`) and otherwise when the next row
falls due. For each due row, in due order:

1. its target is no longer configured → dropped (`target_removed`);
2. it fell due more than `[notify] max_age_s` ago → expired;
3. within quiet hours → `defer`: due again when they end (its age counts from then); `drop`:
   dropped (`quiet_hours`);
4. a visit's species no longer counted by the visit (reviewed "not a bird", corrected to another
   species, its birds moved by a bird review) → dropped (`review`): the reasons it was queued
   for were about a bird that is not there. (The rules are not run again for a corrected name:
   the review happened in the web app, after the fact; the correction shows in the next digest.)
5. rendered now (edge/alerts/render.py) and sent with Apprise (edge/alerts/targets.py) →
   `sent`; a failure → tried again after `retry_backoff_s`, doubling up to `retry_max_backoff_s`,
   until it expires.

A row is marked sent only after the target accepted it; a crash between the two sends it once
more at the next start (at least once, as MQTT's outbox). The daily digest is queued here, on
the first pass at or after `[notify] digest_at` (station time) of a day that has none yet: a
daemon down at that time sends it when it comes back the same day.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from edge.alerts.render import Renderer
from edge.alerts.rules import ReleaseGate
from edge.alerts.targets import Delivery, Target, target_id
from edge.config.notify import NotifyConfig
from edge.store import notifications
from edge.store.db import connect, immediate
from edge.store.notifications import Notification
from edge.store.times import local_day, parse_utc

log = logging.getLogger(__name__)

IDLE_WAKE_S = 30.0  # re-check at least this often (a digest's time, quiet hours ending)
PRUNE_EVERY_S = 86400.0


def in_quiet_hours(moment: datetime, zone: ZoneInfo, quiet: tuple[time, time] | None) -> datetime | None:
    """When the quiet hours holding `moment` end (UTC), or None when `moment` is not in them.
    "22:00-07:00" spans midnight; the start is quiet, the end is not."""
    if quiet is None:
        return None
    start, end = quiet
    local = moment.astimezone(zone)
    now = local.time().replace(tzinfo=None)
    if start < end:
        inside = start <= now < end
    else:
        inside = now >= start or now < end
    if not inside:
        return None
    end_day = local.date() if now < end else local.date() + timedelta(days=1)
    return datetime.combine(end_day, end, tzinfo=zone).astimezone(UTC)


class Deliverer:
    """Sends the queued notifications from its own thread; `status()` and `figures()` for operators."""

    def __init__(self, config: NotifyConfig, db_path: Path | str, renderer: Renderer, *,
                 zone: ZoneInfo, gate: ReleaseGate,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.config = config
        self.db_path = Path(db_path)
        self.renderer = renderer
        # The Apprise targets, made at start (Apprise is imported then, after the preflight
        # said it is there); until then only their ids, which need no Apprise.
        self.target_ids = [target_id(url) for url in config.urls]
        self.targets: Mapping[str, Target] = {}
        self.zone = zone
        self.gate = gate
        self.clock = clock
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._figures: dict[str, int] = {}
        self._lock = threading.Lock()
        self.last_error: str | None = None
        self.crashed: str | None = None
        self._last_prune = 0.0

    # -- the daemon's hooks -------------------------------------------------------------------

    def open_targets(self) -> None:
        """Make the Apprise targets (imports Apprise): at start, or by a caller that drives
        `deliver_due` itself."""
        self.targets = {t.id: t for t in (Target(url, self.config.timeout_s) for url in self.config.urls)}

    def start(self) -> None:
        self.open_targets()
        self._thread = threading.Thread(target=self._run, name="notify", daemon=True)
        self._thread.start()
        log.info("notify: delivering to %d target(s): %s", len(self.targets), ", ".join(self.targets))

    def release(self, _outcome=None) -> None:
        """After a frame's post-processing (its crop written): what it queued may go."""
        self.gate.release()
        self._wake.set()

    def stop(self, timeout: float | None = 10.0) -> None:
        """Finish the row being sent (a target's timeout at most), then stop; queued rows stay queued."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def figures(self) -> dict[str, int]:
        """The queue's figures as of the thread's last pass (edge/store/notifications.py figures)."""
        with self._lock:
            return dict(self._figures)

    def status(self) -> dict:
        return {"targets": list(self.target_ids), "alive": self.alive, "last_error": self.last_error,
                "crashed": self.crashed, **self.figures()}

    # -- the thread -----------------------------------------------------------------------------

    def _run(self) -> None:
        conn = connect(self.db_path, busy_timeout_s=30.0)
        try:
            with immediate(conn):
                notifications.create_tables(conn)
            while not self._stop.is_set():
                self._wake.clear()
                try:
                    wait = self.deliver_due(conn)
                except sqlite3.Error as error:  # a locked or full database: try again shortly
                    log.warning("notify: database error, retrying: %s", error)
                    wait = 5.0
                self._wake.wait(wait)
        except Exception as error:  # noqa: BLE001 - said in status and the log, never silently
            self.crashed = f"{type(error).__name__}: {error}"
            log.exception("notify: the delivery thread stopped")
        finally:
            conn.close()

    def deliver_due(self, conn: sqlite3.Connection) -> float:
        """One pass: queue a due digest, send every due row; returns how long to wait for the next."""
        now = self.clock()
        self._queue_digest(conn, now)
        held = self.gate.held()
        while not self._stop.is_set():
            rows = [row for row in notifications.due(conn, self.clock()) if row.id not in held]
            if not rows:
                break
            for row in rows:
                if self._stop.is_set():
                    break
                self._deliver(conn, row)
        now = self.clock()
        if (now.timestamp() - self._last_prune) > PRUNE_EVERY_S:
            with immediate(conn):
                notifications.prune(conn, now)
            self._last_prune = now.timestamp()
        with self._lock:
            self._figures = notifications.figures(conn)
        upcoming = notifications.next_due(conn)
        wait = IDLE_WAKE_S
        if upcoming is not None:
            wait = min(wait, max((parse_utc(upcoming) - now).total_seconds(), 0.05))
        return wait

    def _deliver(self, conn: sqlite3.Connection, row: Notification) -> None:
        now = self.clock()
        target = self.targets.get(row.target)
        if target is None:
            return self._finish(conn, row, "dropped", "target_removed")
        if (now - parse_utc(row.due_at)).total_seconds() > self.config.max_age_s:
            log.warning("notify: %s to %s expired undelivered after %d tries (max_age_s)", row.key, row.target,
                        row.attempts)
            return self._finish(conn, row, "expired")
        quiet_end = in_quiet_hours(now, self.zone, self.config.quiet)
        if quiet_end is not None:
            if self.config.quiet_hours_action == "drop":
                return self._finish(conn, row, "dropped", "quiet_hours")
            with immediate(conn):
                notifications.postpone(conn, row.id, quiet_end, failed=False)
            return None
        if row.kind == "visit":
            event = _event(conn, row.event_id)
            # Still worth sending: the visit exists, is not rejected and still holds the species.
            if event is None or event.get("review_state") == "rejected" or conn.execute(
                "SELECT 1 FROM event_species WHERE event_id = ? AND species = ?", (row.event_id, row.species)
            ).fetchone() is None:
                log.info("notify: %s dropped: the visit was reviewed before it went out", row.key)
                return self._finish(conn, row, "dropped", "review")
            message = self.renderer.visit(conn, row, event)
        else:
            message = self.renderer.digest(conn, row)
        try:
            result: Delivery = target.send(message.title, message.body, message.pictures)
        finally:
            message.cleanup()
        if result.ok:
            log.info("notify: %s sent to %s", row.key, row.target)
            return self._finish(conn, row, "sent")
        attempts = row.attempts + 1
        delay = min(self.config.retry_backoff_s * 2 ** min(attempts - 1, 20), self.config.retry_max_backoff_s)
        self.last_error = f"{row.target}: {result.error}"
        log.warning("notify: %s to %s failed (try %d), again in %.0f s: %s", row.key, row.target, attempts, delay,
                    result.error)
        with immediate(conn):
            notifications.postpone(conn, row.id, self.clock() + timedelta(seconds=delay), failed=True,
                                   error=result.error)
        return None

    def _finish(self, conn: sqlite3.Connection, row: Notification, state: str, outcome: str | None = None) -> None:
        with immediate(conn):
            notifications.finish(conn, row.id, state, self.clock(), outcome)

    def _queue_digest(self, conn: sqlite3.Connection, now: datetime) -> None:
        at = self.config.digest_time
        if at is None:
            return
        local = now.astimezone(self.zone)
        if local.time().replace(tzinfo=None) < at:
            return
        day = local_day(now, self.zone)
        key = notifications.digest_key(day)
        if notifications.exists(conn, key):
            return
        with immediate(conn):
            if not notifications.exists(conn, key):
                notifications.enqueue(conn, kind="digest", key=key, targets=list(self.target_ids), now=now, day=day)
                log.info("notify: digest of %s queued", day)


def _event(conn: sqlite3.Connection, event_id: int | None) -> dict | None:
    if event_id is None:
        return None
    cursor = conn.execute("SELECT * FROM events WHERE id = ?", (event_id,))
    row = cursor.fetchone()
    return dict(zip([d[0] for d in cursor.description], row)) if row else None
