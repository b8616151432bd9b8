"""Log lines of `edge web` rate-limited, so that what strangers can provoke (refused connections,
bad requests, failed logins, the accept loop's "Too many open files") cannot flood the journal.

One `RateLimit` filter on the root logger's handlers: at most `burst` lines per message template
(logger name + unformatted message) in each `window_s`; the rest are dropped and counted, and the
next line of that template that gets through says how many were dropped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

BURST = 10
WINDOW_S = 60.0
MAX_TEMPLATES = 1000


class RateLimit(logging.Filter):
    """At most `burst` records per (logger, message template) in `window_s` seconds."""

    def __init__(self, burst: int = BURST, window_s: float = WINDOW_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.burst = burst
        self.window_s = window_s
        self._clock = clock
        self._windows: dict[tuple[str, str], list[float]] = {}  # key -> [window start, lines, dropped]

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg))
        now = self._clock()
        window = self._windows.get(key)
        if window is None or now - window[0] >= self.window_s:
            dropped = int(window[2]) if window is not None else 0
            if len(self._windows) >= MAX_TEMPLATES:
                self._windows = {k: w for k, w in self._windows.items() if now - w[0] < self.window_s}
            window = self._windows[key] = [now, 0, dropped]
        if window[1] >= self.burst:
            window[2] += 1
            return False
        window[1] += 1
        if window[2]:
            record.msg = f"{record.msg} ({int(window[2])} similar lines suppressed)"
            window[2] = 0
        return True


def limit_log_rate(burst: int = BURST, window_s: float = WINDOW_S) -> RateLimit:
    """Put one RateLimit on every handler of the root logger (setup_logging made them)."""
    limit = RateLimit(burst, window_s)
    for handler in logging.getLogger().handlers:
        handler.addFilter(limit)
    return limit
