"""SageMaker metric definitions, derived from the trainer's own epoch line.

The trainer prints one line per epoch (docs/ARCHITECTURE.md, "Trainer epoch line")::

    epoch=3 loss=0.412345 accuracy=0.876543 val_loss=0.501234 val_accuracy=0.850000

SageMaker scrapes CloudWatch log lines with one regex per metric. Deriving the regexes from
`trainer.train.EPOCH_LINE_KEYS` means a new metric in the line is a new metric in the job,
and a renamed key cannot silently leave the tuner optimising nothing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# A float as format_epoch_line writes it (fixed 6 decimals), also tolerating an exponent or a
# sign so that a future change of format still parses rather than silently not matching.
_NUMBER = r"([-+]?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)"

OBJECTIVE_KEY = "val_accuracy"


def metric_name(key: str) -> str:
    """`val_accuracy` → `validation_accuracy`, `loss` → `training_loss` (the proposal's names)."""
    if key.startswith("val_"):
        return "validation_" + key[len("val_"):]
    return "training_" + key


def metric_regex(key: str) -> str:
    """A regex whose group 1 is the value of `key` on an epoch line and nowhere else.

    Anchored on `epoch=<n>` so Keras's progress bar (`loss: 0.41`) or other log lines never
    match; the space before the key keeps `loss=` from matching inside `val_loss=` (every key
    but `epoch` follows a space). The line may carry a prefix (CloudWatch timestamps, the SDK
    driver's logger). Only constructs every regex engine shares: no lookbehind, no `\\b`.
    """
    return rf"epoch=[0-9]+.* {re.escape(key)}={_NUMBER}"


def metric_definitions(keys: Sequence[str] | None = None) -> list[dict[str, str]]:
    """`[{"Name": ..., "Regex": ...}]` for every key of the epoch line except `epoch`."""
    if keys is None:
        from trainer.train import EPOCH_LINE_KEYS

        keys = EPOCH_LINE_KEYS
    return [{"Name": metric_name(key), "Regex": metric_regex(key)} for key in keys if key != "epoch"]


def objective_metric_name() -> str:
    return metric_name(OBJECTIVE_KEY)
