"""The run folder's small shared pieces: the epoch line (its stable format, which SageMaker's and
the tuner's metric regexes read), the checkpoint state file's name, the monitor's direction and
atomic JSON writes. Its own module so that trainer/train.py (the run) and trainer/callbacks.py
(what Keras calls each epoch) both import it, instead of each other."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# Epoch lines go to stdout themselves; this logger copies them into train.log only.
epoch_log = logging.getLogger("trainer.epochs")
epoch_log.propagate = False

EPOCH_LINE_KEYS: tuple[str, ...] = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy")
STATE_FILE = "state.json"


def format_epoch_line(epoch: int, logs: Mapping[str, float]) -> str:
    """`epoch=3 loss=0.412345 accuracy=0.876543 val_loss=0.501234 val_accuracy=0.850000`.

    `epoch` is 1-based; the other keys appear in EPOCH_LINE_KEYS order when present in logs.
    """
    parts = [f"epoch={int(epoch)}"]
    for key in EPOCH_LINE_KEYS[1:]:
        if key in logs and logs[key] is not None:
            parts.append(f"{key}={float(logs[key]):.6f}")
    return " ".join(parts)


def monitor_mode(monitor: str) -> str:
    """"max" for accuracy-like metrics, "min" for losses: the direction early stopping watches."""
    return "max" if "acc" in monitor or "auc" in monitor else "min"


def write_json(path: Path, data: Any) -> None:
    """Write through a temporary file and rename, so a killed run never leaves half a JSON file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    tmp.replace(path)


__all__ = ["EPOCH_LINE_KEYS", "STATE_FILE", "epoch_log", "format_epoch_line", "monitor_mode", "write_json"]
