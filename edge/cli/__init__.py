"""The operator's front door: `edge run | check | classify | counts | events | frames | status |
models | install-service`. Parses flags, calls the layers below, prints (every table through
edge/cli/tables.py); nothing below imports it.

`main` loads the commands when called, so that importing `edge.cli.common` (the collector's CLI
does) does not load every subcommand."""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    """The `edge` console script."""
    from edge.cli.commands import main as run

    return run(argv)


__all__ = ["main"]
