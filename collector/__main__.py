"""`python -m collector` = the `collector` console script."""

from collector.cli import main

raise SystemExit(main())
