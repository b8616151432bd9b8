"""The operator's front door: `edge run | check | classify | counts | events | frames | status |
models | install-service`. Parses flags, calls the layers below, prints (every table through
edge/cli/tables.py); nothing below imports it.

`main` loads the commands when called, so that importing `edge.cli.common` (the collector's CLI
does) does not load every subcommand."""

from __future__ import annotations

import sys

LONG_LIVED = ("run", "web")  # the processes that stay up for months: keep them light


def main(argv: list[str] | None = None) -> int:
    """The `edge` console script (and `python -m edge`)."""
    words = [word for word in (sys.argv[1:] if argv is None else argv) if not word.startswith("-")]
    if words and words[0] in LONG_LIVED:
        from edge.cli.common import keep_daemon_light

        # Before anything imports sqlite-utils (the commands' modules do, as they load).
        keep_daemon_light()
    from edge.cli.commands import main as run

    return run(argv)


__all__ = ["main"]
