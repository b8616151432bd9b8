"""`python -m edge` is the `edge` console script."""

from edge.cli import main

raise SystemExit(main())
