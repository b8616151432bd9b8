"""What every `edge` subcommand module shares: the usage error and exit codes, logging set-up,
and the argparse value types. Its own module so that the subcommand modules import it, never
`edge.cli.commands` (which registers them: that was an import circle), and so that the
collector's CLI uses the same types without loading the edge's commands."""

from __future__ import annotations

import argparse
import logging
import sys

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A bad argument or configuration: printed without a traceback, exit 2."""


def setup_logging(level: str) -> None:
    """One log format for every command, on stderr (stdout carries the command's tables)."""
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)


def keep_daemon_light() -> None:
    """Stop optional imports a long-lived process never uses from loading into it.

    sqlite-utils imports pandas when it is installed (only to map pandas.Timestamp columns);
    on a workstation with pandas that adds ~65 MB to a process's resident memory. The daemon
    (`edge run`) and the web app (`edge web`) call this first thing, before sqlite-utils loads;
    a Pi has no pandas anyway. Short commands (reports) may keep it.
    """
    if "pandas" not in sys.modules:
        sys.modules["pandas"] = None  # type: ignore[assignment]  # `import pandas` → ImportError


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1 (sizes, counts, days)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


__all__ = ["EXIT_FAILURE", "EXIT_OK", "EXIT_USAGE", "UsageError", "keep_daemon_light", "positive_int", "setup_logging"]
