"""The Keras callbacks of a training run: the epoch line, checkpoints, resumable early stopping.

This module imports Keras (TensorFlow) when imported, so `trainer.train` imports it only
inside `train()`: importing `trainer.train` (the CLI, the SageMaker metric definitions) stays
free of TensorFlow. What the callbacks write (state.json, the run folder's files) is described
in trainer/train.py.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras

from trainer.run_folder import STATE_FILE, epoch_log, format_epoch_line, monitor_mode, write_json


def improved(value: float, best: float | None, mode: str) -> bool:
    """Whether `value` beats `best` ("max" or "min" mode); a missing or NaN value never does."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    return best is None or (value > best if mode == "max" else value < best)


def write_weights(weights: Sequence[Any], path: Path) -> None:
    """Save a model.get_weights() list (what EarlyStopping restores), in its order.

    Not model.save_weights(): that file holds the optimizer's state too, and loading it would
    roll the optimizer back to the best epoch as well.
    """
    import numpy as np

    with path.open("wb") as f:
        np.savez(f, *weights)


def read_weights(model, path: Path) -> list:
    """The weights write_weights saved, checked against the model they are meant for."""
    import numpy as np

    with np.load(path) as data:
        weights = [data[f"arr_{i}"] for i in range(len(data.files))]
    expected = [tuple(w.shape) for w in model.weights]
    if [tuple(w.shape) for w in weights] != expected:
        raise ValueError(f"cannot resume: {path} does not hold weights for this model")
    return weights


class EpochLine(keras.callbacks.Callback):
    """Print the stable epoch line, and mirror it to train.log."""

    def __init__(self, stream) -> None:
        super().__init__()
        self.stream = stream

    def on_epoch_end(self, epoch, logs=None):
        line = format_epoch_line(epoch + 1, logs or {})
        print(line, file=self.stream, flush=True)
        epoch_log.info(line)


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """EarlyStopping whose patience count, best value and best weights survive --resume.

    Keras resets all three in on_train_begin, so a resumed run would wait `patience` more
    epochs from scratch (training longer than an uninterrupted run) and could restore a
    different "best" model. `saved` is what RunState wrote into state.json for this phase.
    """

    def __init__(self, saved: dict | None, ckpt_dir: Path, **kwargs) -> None:
        super().__init__(**kwargs)
        self.saved, self.ckpt_dir = saved, ckpt_dir

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if not self.saved:
            return
        self.wait = int(self.saved["wait"])
        self.best = self.saved["best"]
        self.best_epoch = int(self.saved["best_epoch"]) - 1  # Keras counts from 0
        if self.restore_best_weights and self.saved.get("best_weights"):
            self.best_weights = read_weights(self.model, self.ckpt_dir / self.saved["best_weights"])

    def snapshot(self, phase: str, best_weights: str | None) -> dict:
        """The JSON-able state that on_train_begin restores."""
        best = None if self.best is None else float(self.best)
        return {"phase": phase, "monitor": self.monitor, "wait": int(self.wait), "best": best,
                "best_epoch": int(self.best_epoch) + 1, "best_weights": best_weights}


class RunState(keras.callbacks.Callback):
    """Checkpoint every epoch, track the best epoch, and persist both for --resume.

    Runs after `early` (listed before it in callbacks), so the state.json written at the end
    of an epoch holds early stopping's state after that same epoch.
    """

    def __init__(self, run_dir: Path, ckpt_dir: Path, monitor: str, state: dict, keep: int, phase: str,
                 early: ResumableEarlyStopping) -> None:
        super().__init__()
        self.run_dir, self.ckpt_dir, self.monitor, self.state, self.keep, self.phase = run_dir, ckpt_dir, monitor, state, keep, phase
        self.mode = monitor_mode(monitor)
        self.early = early

    def _save_early_stopping(self, epoch: int) -> None:
        """Keep the weights early stopping would restore in a file named by epoch.

        Named by epoch, and older files deleted only after state.json points at the new one,
        so a job killed at any moment leaves a state.json whose weights file exists.
        """
        previous = (self.state.get("early_stopping") or {}).get("best_weights")
        if self.early.best_epoch == epoch and self.early.best_weights is not None:
            name = f"early-stopping-best-{epoch + 1:04d}.npz"
            write_weights(self.early.best_weights, self.ckpt_dir / name)
        elif previous and (self.state.get("early_stopping") or {}).get("phase") == self.phase:
            name = previous
        else:
            name = None
        self.state["early_stopping"] = self.early.snapshot(self.phase, name)

    def on_epoch_end(self, epoch, logs=None):
        logs = {k: float(v) for k, v in (logs or {}).items()}
        history = self.state.setdefault("history", {})
        for key, value in logs.items():
            history.setdefault(key, []).append(value)
        value = logs.get(self.monitor)
        if improved(value, self.state.get("best_value"), self.mode):
            self.state.update(best_value=value, best_epoch=epoch + 1, best_metrics=logs)
            self.model.save(self.run_dir / "best.keras")
        name = f"epoch-{epoch + 1:04d}.keras"
        self.model.save(self.ckpt_dir / name)
        self._save_early_stopping(epoch)
        self.state.update(epoch=epoch + 1, checkpoint=name, phase=self.phase)
        write_json(self.ckpt_dir / STATE_FILE, self.state)
        write_json(self.run_dir / "history.json", history)
        old = sorted(self.ckpt_dir.glob("epoch-*.keras"))[: -self.keep] if self.keep > 0 else []
        keep_best = self.state["early_stopping"]["best_weights"]
        old += [p for p in self.ckpt_dir.glob("early-stopping-best-*.npz") if p.name != keep_best]
        for path in old:
            path.unlink(missing_ok=True)
