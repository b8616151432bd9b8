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


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1 (sizes, counts, days)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


__all__ = ["EXIT_FAILURE", "EXIT_OK", "EXIT_USAGE", "UsageError", "positive_int", "setup_logging"]
