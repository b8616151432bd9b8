"""`python -m edge` is the `edge` console script."""

from edge.cli.commands import main

raise SystemExit(main())
