"""The operator's front door: `edge run | check | classify | counts | events | frames | status |
models | install-service`. Parses flags, calls the layers below, prints (every table through
edge/cli/tables.py); nothing below imports it."""

from edge.cli.commands import main

__all__ = ["main"]
