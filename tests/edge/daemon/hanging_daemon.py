"""`edge run` with a frame that hangs the processing loop, for the watchdog test.

Usage: python -m tests.edge.daemon.hanging_daemon PATTERN [edge run flags...]

A frame whose path matches PATTERN blocks the loop forever once it has been committed, as a hung
interpreter would; tests/edge/daemon/test_daemon_field.py uses it to prove that the watchdog pings stop. The hook is
installed here, in the test's own program, through the daemon's after_frame hooks: the
production code carries no test fault hook.
"""

from __future__ import annotations

import logging
import re
import sys
import threading

from edge.cli.commands import main
from edge.daemon import wiring


def run(pattern: str, argv: list[str]) -> int:
    matcher = re.compile(pattern)
    real_build = wiring.build

    def build(config, **options):
        daemon = real_build(config, **options)

        def hang(outcome) -> None:
            if matcher.search(outcome.path):
                logging.getLogger("tests").warning("test hang: %s matched %s, blocking the loop", pattern, outcome.path)
                threading.Event().wait()

        daemon.after_frame.append(hang)
        return daemon

    wiring.build = build  # cmd_run imports it when it runs
    return main(["run", *argv])


if __name__ == "__main__":
    sys.exit(run(sys.argv[1], sys.argv[2:]))
