"""`trainer sagemaker ...` subcommands (owned by the tuning/SageMaker area; placeholder until it lands)."""

from __future__ import annotations

import argparse


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add the `sagemaker` subcommand group to the trainer CLI."""
