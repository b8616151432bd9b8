"""Regenerate the generated references: `make docs`, or `python -m tests.docs.generate`.

* docs/configuration.md from the configuration models (edge.config.reference);
* docs/cli.md from the `edge` and `trainer` argparse parsers (tests.docs.cli_reference).

`python -m tests.docs.generate --check` writes nothing and exits 1 when a file is stale (what
tests/docs/test_docs.py checks too).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def generated() -> dict[Path, Callable[[], str]]:
    from edge.config.reference import render_markdown as configuration
    from tests.docs.cli_reference import render_markdown as cli

    return {REPO / "docs" / "configuration.md": configuration, REPO / "docs" / "cli.md": cli}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    check = args == ["--check"]
    if args and not check:
        print("usage: python -m tests.docs.generate [--check]", file=sys.stderr)
        return 2
    stale = []
    for path, render in generated().items():
        text = render()
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            print(f"unchanged {path.relative_to(REPO)}")
        elif check:
            stale.append(path)
            print(f"stale {path.relative_to(REPO)}: run `make docs`", file=sys.stderr)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(REPO)}")
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
