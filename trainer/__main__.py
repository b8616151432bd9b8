"""`python -m trainer` is the `trainer` console script."""

from trainer.cli import main

raise SystemExit(main())
