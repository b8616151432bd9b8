"""The day's full counts snapshot, queued into the outbox at start and when the station's day changes.

Retained `counts` topics would otherwise show yesterday's numbers until the first frame of the
new day. The publisher thread (edge/publish/mqtt.py) calls this over its own connection; the
rows it queues then go out through the outbox like any others.

Why a class of its own: which day was queued, when to look again and what a full disk means
for it is a job beside sending rows, with its own state.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime

from edge.publish.messages import MessageContext, counts_messages
from edge.store import outbox
from edge.store.counts import visits_on_day
from edge.store.disk import is_disk_full_error
from edge.store.tables import has_table

log = logging.getLogger(__name__)

DAY_CHECK_INTERVAL_S = 1.0
DISK_FULL_RETRY_S = 5.0

ContextSource = Callable[[], MessageContext | None]
TalliesSource = Callable[[sqlite3.Connection, str], Mapping[str, Mapping[str, int]]]


class DaySnapshots:
    """Queues one counts snapshot per station day; no context = none (a publisher without a daemon)."""

    def __init__(self, context: ContextSource | None, tallies: TalliesSource, clock: Callable[[], datetime],
                 outbox_max_rows: int) -> None:
        self._context = context
        self._tallies = tallies
        self._clock = clock
        self._outbox_max_rows = outbox_max_rows
        self._day: str | None = None      # the day whose snapshot was queued
        self._warned: str | None = None   # the day whose full-disk warning was logged
        self._next_check = 0.0            # monotonic time the day is looked at again

    def queue_when_due(self, conn: sqlite3.Connection, species: Iterable[str], now: float) -> bool:
        """Once a second (or DISK_FULL_RETRY_S after a full disk): `queue` when the day changed."""
        if now < self._next_check:
            return False
        self._next_check = now + DAY_CHECK_INTERVAL_S
        return self.queue(conn, species)

    def queue(self, conn: sqlite3.Connection, species: Iterable[str]) -> bool:
        """Queue the day's snapshot unless it is queued already; True when rows were queued.

        Read from `daily_tallies` inside one write transaction, so it can never overwrite a
        newer snapshot the store queues for that day; `species` known from earlier days get
        zeros. A full disk is retried later instead of ending the publisher thread."""
        ctx = self._context() if self._context is not None else None
        if ctx is None:
            return False
        day = self._clock().astimezone(ctx.zone).date().isoformat()
        if day == self._day:
            return False
        if not has_table(conn, "daily_tallies"):
            return False
        conn.commit()
        conn.execute("BEGIN IMMEDIATE")
        try:
            tallies = self._tallies(conn, day)
            zeros = {label: {"events": 0, "frames": 0} for label in species if label not in tallies}
            messages = counts_messages(tallies, day, ctx, now=self._clock(), visits=visits_on_day(conn, day))
            if zeros:
                messages += counts_messages(zeros, day, ctx, now=self._clock())[1:]
            outbox.enqueue(conn, messages, self._outbox_max_rows)
            conn.commit()
        except sqlite3.Error as exc:
            conn.rollback()
            if not is_disk_full_error(exc):
                raise
            self._next_check = time.monotonic() + DISK_FULL_RETRY_S
            level = logging.DEBUG if self._warned == day else logging.WARNING
            log.log(level, "MQTT counts snapshot for %s not queued, the disk is full (%s); retrying later", day, exc)
            self._warned = day
            return False
        except BaseException:
            conn.rollback()
            raise
        self._day = day
        log.info("MQTT counts snapshot for %s queued (%d species counted, %d at zero)", day, len(tallies), len(zeros))
        return True
