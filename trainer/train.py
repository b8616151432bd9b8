"""`trainer.train.train(config)`: one training run, from a data folder to a run folder.

The run folder is the unit the rest of the trainer works on (evaluate, export, tune, SageMaker):

    run_dir/config.json class_names.json data.json history.json history.png best.keras train.log
            checkpoints/epoch-0003.keras state.json   (checkpoint_dir may live elsewhere)

One line per epoch goes to stdout in the stable format of docs/ARCHITECTURE.md, so a metric
regex (SageMaker, the tuner, a person with grep) can read it.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainer.train_config import OPTIMIZERS, TrainConfig

log = logging.getLogger(__name__)
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


class RunFolderError(ValueError):
    """The output folder already holds a run and neither resume nor overwrite was asked for."""


@dataclass
class TrainResult:
    run_dir: Path
    history: dict[str, list[float]]
    best_epoch: int  # 1-based
    best_metrics: dict[str, float]  # the epoch's logs at best_epoch
    monitor: str
    model_path: Path  # run_dir/best.keras
    epochs_completed: int
    class_names: list[str] = field(default_factory=list)
    stopped_early: bool = False


def _checkpoint_dir(config: TrainConfig) -> Path:
    return Path(config.checkpoint_dir) if config.checkpoint_dir else Path(config.out_dir) / "checkpoints"


def _monitor_mode(monitor: str) -> str:
    return "max" if "acc" in monitor or "auc" in monitor else "min"


def _improved(value: float, best: float | None, mode: str) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    return best is None or (value > best if mode == "max" else value < best)


def _make_optimizer(name: str, learning_rate: float, momentum: float):
    import keras

    if name == "sgd":
        return keras.optimizers.SGD(learning_rate=learning_rate, momentum=momentum)
    if name == "adam":
        return keras.optimizers.Adam(learning_rate=learning_rate)
    raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")


def _compile(model, optimizer) -> None:
    import keras

    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )


def _strategy(distribution: str):
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if distribution == "mirrored" or (distribution == "auto" and len(gpus) > 1):
        return tf.distribute.MirroredStrategy()
    if distribution == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if distribution not in ("auto", "none", "mirrored", "multiworker"):
        raise ValueError(f"unknown distribution {distribution!r}; choose auto, none, mirrored or multiworker")
    return tf.distribute.get_strategy()


def _set_precision(mode: str) -> bool:
    import keras
    import tensorflow as tf

    if mode not in ("auto", "on", "off"):
        raise ValueError(f"unknown mixed_precision {mode!r}; choose auto, on or off")
    on = mode == "on" or (mode == "auto" and bool(tf.config.list_physical_devices("GPU")))
    keras.mixed_precision.set_global_policy("mixed_float16" if on else "float32")
    return on


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    tmp.replace(path)


def _plot_history(history: Mapping[str, Sequence[float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for key in (metric, f"val_{metric}"):
            if history.get(key):
                ax.plot(range(1, len(history[key]) + 1), history[key], marker="o", label=key)
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _make_callbacks_class():
    """Define the Keras callbacks lazily so importing this module does not import TensorFlow."""
    import keras

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
                self.best_weights = _read_weights(self.model, self.ckpt_dir / self.saved["best_weights"])

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
            self.mode = _monitor_mode(monitor)
            self.early = early

        def _save_early_stopping(self, epoch: int) -> None:
            """Keep the weights early stopping would restore in a file named by epoch.

            Named by epoch, and older files deleted only after state.json points at the new one,
            so a job killed at any moment leaves a state.json whose weights file exists.
            """
            previous = (self.state.get("early_stopping") or {}).get("best_weights")
            if self.early.best_epoch == epoch and self.early.best_weights is not None:
                name = f"early-stopping-best-{epoch + 1:04d}.npz"
                _write_weights(self.early.best_weights, self.ckpt_dir / name)
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
            if _improved(value, self.state.get("best_value"), self.mode):
                self.state.update(best_value=value, best_epoch=epoch + 1, best_metrics=logs)
                self.model.save(self.run_dir / "best.keras")
            name = f"epoch-{epoch + 1:04d}.keras"
            self.model.save(self.ckpt_dir / name)
            self._save_early_stopping(epoch)
            self.state.update(epoch=epoch + 1, checkpoint=name, phase=self.phase)
            _write_json(self.ckpt_dir / STATE_FILE, self.state)
            _write_json(self.run_dir / "history.json", history)
            old = sorted(self.ckpt_dir.glob("epoch-*.keras"))[: -self.keep] if self.keep > 0 else []
            keep_best = self.state["early_stopping"]["best_weights"]
            old += [p for p in self.ckpt_dir.glob("early-stopping-best-*.npz") if p.name != keep_best]
            for path in old:
                path.unlink(missing_ok=True)

    return EpochLine, ResumableEarlyStopping, RunState


def _skip_shuffles(train_ds, epochs: int) -> None:
    """Advance the training set's reshuffle to where an uninterrupted run would be after `epochs`.

    A seeded `shuffle(reshuffle_each_iteration=True)` draws a new order each time an iterator
    is made, and Keras makes one per epoch. A resumed process starts that sequence over, so
    without this it would replay epoch 1's order at epoch `epochs + 1`. Making an iterator reads
    nothing, so this costs next to nothing.
    """
    for _ in range(epochs):
        iter(train_ds)


def _write_weights(weights: Sequence[Any], path: Path) -> None:
    """Save a model.get_weights() list (what EarlyStopping restores), in its order.

    Not model.save_weights(): that file holds the optimizer's state too, and loading it would
    roll the optimizer back to the best epoch as well.
    """
    import numpy as np

    with path.open("wb") as f:
        np.savez(f, *weights)


def _read_weights(model, path: Path) -> list:
    """The weights _write_weights saved, checked against the model they are meant for."""
    import numpy as np

    with np.load(path) as data:
        weights = [data[f"arr_{i}"] for i in range(len(data.files))]
    expected = [tuple(w.shape) for w in model.weights]
    if [tuple(w.shape) for w in weights] != expected:
        raise ValueError(f"cannot resume: {path} does not hold weights for this model")
    return weights


def _prepare_run_dir(config: TrainConfig, ckpt_dir: Path) -> dict | None:
    """Create the run folder; return the saved state when resuming (None to start fresh)."""
    run_dir = Path(config.out_dir)
    state_path = ckpt_dir / STATE_FILE
    if config.resume and state_path.is_file():
        return json.loads(state_path.read_text())
    if config.resume:
        log.info("no checkpoint state in %s: starting a fresh run", ckpt_dir)
    elif (run_dir / "config.json").exists() and not config.overwrite:
        raise RunFolderError(f"{run_dir} already holds a run; pass --resume to continue it or choose a new --out")
    elif config.overwrite:
        # A fresh run in an old folder: stale checkpoints or a stale best model must not survive it.
        for stale in [run_dir / "best.keras", ckpt_dir / STATE_FILE, *ckpt_dir.glob("epoch-*.keras"),
                      *ckpt_dir.glob("early-stopping-best-*.npz")]:
            stale.unlink(missing_ok=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    return None


class _LogToFile:
    """Attach a train.log handler for the duration of a run."""

    def __init__(self, path: Path) -> None:
        self.handler = logging.FileHandler(path, encoding="utf-8")
        self.handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        self.loggers = [logging.getLogger("trainer"), epoch_log]

    def __enter__(self):
        for logger in self.loggers:
            logger.addHandler(self.handler)
            if logger.level == logging.NOTSET or logger.level > logging.INFO:
                logger.setLevel(logging.INFO)
        return self

    def __exit__(self, *exc):
        for logger in self.loggers:
            logger.removeHandler(self.handler)
        self.handler.close()


def _run_phases(state: dict, fit, model, strategy, config: TrainConfig, total: int, wants_fine_tune: bool) -> None:
    """Head phase (frozen base), then the optional fine-tune phase; resumes inside either."""
    import keras

    if state.get("phase", "head") != "head":
        fit("fine_tune", int(state.get("fine_tune_until", total)))
        return
    fit("head", config.epochs)
    if not wants_fine_tune:
        return
    from trainer.models import unfreeze_top

    base = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    with strategy.scope():
        n = unfreeze_top(base, config.fine_tune_layers)
        _compile(model, _make_optimizer(config.optimizer, config.fine_tune_learning_rate, config.momentum))
    log.info("fine-tuning the top %d layers of %s at learning rate %g", n, base.name, config.fine_tune_learning_rate)
    # Fine-tuning continues the epoch count from wherever the head phase stopped.
    state["fine_tune_until"] = state["epoch"] + config.fine_tune_epochs
    fit("fine_tune", state["fine_tune_until"])


def train(config: TrainConfig, extra_callbacks: Sequence[Any] = ()) -> TrainResult:
    """Train the model `config` describes and write its run folder. Returns a TrainResult.

    extra_callbacks are Keras callbacks added to every fit (the tuner's pruning callback).
    """
    from trainer.data import DataError, discover, fingerprint

    if config.optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {config.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    run_dir = Path(config.out_dir)
    ckpt_dir = _checkpoint_dir(config)
    data = discover(config.data_dir, config.val_fraction, config.test_fraction, config.seed)  # before touching out_dir
    train_items, valid_items = data.split("train"), data.split("valid")
    state = _prepare_run_dir(config, ckpt_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_dir.mkdir(parents=True, exist_ok=True)

    with _LogToFile(run_dir / "train.log"):
        import keras

        from trainer.models import build_model
        from trainer.pipeline import make_dataset

        keras.backend.clear_session()
        keras.utils.set_random_seed(config.seed)
        mixed = _set_precision(config.mixed_precision)
        strategy = _strategy(config.distribution)
        log.info("training %s on %d classes: %d train / %d valid images; mixed precision %s; %d replica(s)",
                 config.arch, len(data.class_names), len(train_items), len(valid_items), "on" if mixed else "off",
                 strategy.num_replicas_in_sync)

        (run_dir / "config.json").write_text(config.to_json() + "\n")
        _write_json(run_dir / "class_names.json", data.class_names)
        if state is None:
            _write_json(run_dir / "data.json", {
                "root": str(data.root), "layout": data.layout, "class_names": data.class_names,
                "counts": {k: len(v) for k, v in data.splits.items()},
                "skipped": [[str(p), reason] for p, reason in data.skipped],
                "train_fingerprint": fingerprint(data.root, train_items),
            })
        elif state.get("class_names") and state["class_names"] != data.class_names:
            raise DataError(f"cannot resume: the classes changed since the checkpoint ({state['class_names']} -> {data.class_names})")

        train_ds = make_dataset(train_items, config.image_size, config.batch_size, training=True, augment=config.augment,
                                cache=config.cache, seed=config.seed)
        valid_ds = make_dataset(valid_items, config.image_size, config.batch_size, training=False, cache=config.cache)
        if state is not None:
            _skip_shuffles(train_ds, int(state["epoch"]))

        wants_fine_tune = config.arch != "convnet" and config.fine_tune_layers > 0 and config.fine_tune_epochs > 0
        total = config.epochs + (config.fine_tune_epochs if wants_fine_tune else 0)

        with strategy.scope():
            if state is not None:
                model = keras.models.load_model(ckpt_dir / state["checkpoint"])
                log.info("resuming from %s after epoch %d", state["checkpoint"], state["epoch"])
            else:
                built = build_model(config, len(data.class_names))
                model = built.model
                _compile(model, _make_optimizer(config.optimizer, config.learning_rate, config.momentum))
                state = {"epoch": 0, "phase": "head", "history": {}, "class_names": data.class_names,
                         "monitor": config.early_stopping_monitor}

        EpochLine, ResumableEarlyStopping, RunState = _make_callbacks_class()
        stream = sys.stdout
        verbose = 1 if stream.isatty() else 0
        stopped_early = False

        def saved_early_stopping(phase: str) -> dict | None:
            """Early stopping's state from state.json when it belongs to this phase and monitor."""
            saved = state.get("early_stopping")
            if not saved or saved.get("phase") != phase:
                return None
            if saved.get("monitor") != config.early_stopping_monitor:
                log.info("early stopping now monitors %s (the checkpoint's monitored %s): its patience starts over",
                         config.early_stopping_monitor, saved.get("monitor"))
                return None
            return saved

        def fit(phase: str, until: int) -> None:
            nonlocal stopped_early
            saved = saved_early_stopping(phase)
            already_stopped = saved is not None and saved["wait"] >= config.early_stopping_patience
            if already_stopped or state["epoch"] >= until:
                # This phase ended before the interruption. An uninterrupted run restored the best
                # weights at its end (fine-tuning starts from them), so do the same.
                if saved is not None and saved.get("best_weights"):
                    model.set_weights(_read_weights(model, ckpt_dir / saved["best_weights"]))
                if already_stopped:
                    stopped_early = True
                    log.info("early stopping had stopped the %s phase after epoch %d: not training it further",
                             phase, state["epoch"])
                return
            early = ResumableEarlyStopping(saved, ckpt_dir, monitor=config.early_stopping_monitor,
                                           patience=config.early_stopping_patience,
                                           mode=_monitor_mode(config.early_stopping_monitor),
                                           restore_best_weights=True)
            # early before RunState: the state.json of an epoch holds early stopping's view of it.
            callbacks = [EpochLine(stream), early, RunState(run_dir, ckpt_dir, config.early_stopping_monitor, state,
                                                            config.keep_checkpoints, phase, early), *extra_callbacks]
            with warnings.catch_warnings():
                # Our datasets have unknown length (corrupt files are dropped on the fly), which
                # makes Keras warn after the first epoch that the input "ran out of data": benign.
                warnings.filterwarnings("ignore", message="Your input ran out of data")
                model.fit(train_ds, validation_data=valid_ds, epochs=until, initial_epoch=state["epoch"],
                          callbacks=callbacks, verbose=verbose, shuffle=False)
            if early.stopped_epoch > 0:
                stopped_early = True
                log.info("early stopping on %s after epoch %d", config.early_stopping_monitor, state["epoch"])

        try:
            _run_phases(state, fit, model, strategy, config, total, wants_fine_tune)
        finally:
            keras.mixed_precision.set_global_policy("float32")  # whatever happened, the next run starts clean

        history = state.get("history", {})
        _write_json(run_dir / "history.json", history)
        if history:
            _plot_history(history, run_dir / "history.png")
        if not (run_dir / "best.keras").exists():
            model.save(run_dir / "best.keras")

    return TrainResult(
        run_dir=run_dir,
        history=history,
        best_epoch=int(state.get("best_epoch", state["epoch"])),
        best_metrics=dict(state.get("best_metrics", {})),
        monitor=config.early_stopping_monitor,
        model_path=run_dir / "best.keras",
        epochs_completed=int(state["epoch"]),
        class_names=data.class_names,
        stopped_early=stopped_early,
    )
