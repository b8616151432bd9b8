"""`trainer.train.train(config)`: one training run, from a data folder to a run folder.

The run folder is the unit the rest of the trainer works on (evaluate, export, tune, SageMaker):

    run_dir/config.json class_names.json data.json history.json history.png best.keras train.log
            taxonomy.json (with --taxonomy: class → scientific and common name)
            checkpoints/epoch-0003.keras state.json   (checkpoint_dir may live elsewhere)

One line per epoch goes to stdout in the stable format of docs/ARCHITECTURE.md, so a metric
regex (SageMaker, the tuner, a person with grep) can read it.
"""

from __future__ import annotations

import json
import logging
import sys
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

# EPOCH_LINE_KEYS and format_epoch_line are re-exported: trainer.sagemaker.metrics and the tests read them here.
from trainer.run_folder import EPOCH_LINE_KEYS, STATE_FILE, epoch_log, format_epoch_line  # noqa: F401
from trainer.run_folder import monitor_mode as _monitor_mode
from trainer.run_folder import write_json as _write_json
from trainer.train_config import OPTIMIZERS, TrainConfig

if TYPE_CHECKING:
    from trainer.data import DataSplits
    from trainer.taxonomy import Matched

log = logging.getLogger(__name__)
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


def _skip_shuffles(train_ds, epochs: int) -> None:
    """Advance the training set's reshuffle to where an uninterrupted run would be after `epochs`.

    A seeded `shuffle(reshuffle_each_iteration=True)` draws a new order each time an iterator
    is made, and Keras makes one per epoch. A resumed process starts that sequence over, so
    without this it would replay epoch 1's order at epoch `epochs + 1`. Making an iterator reads
    nothing, so this costs next to nothing.
    """
    for _ in range(epochs):
        iter(train_ds)


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


def _prepare_run(config: TrainConfig) -> tuple[DataSplits, dict | None, Matched | None]:
    """Check the config, read the data, then create the run folder; returns (data, saved state,
    the --taxonomy names matched to the data's classes or None).

    The data folder (and the taxonomy file) are read before out_dir is touched, so a bad --data
    or --taxonomy leaves no half-made run folder behind; the saved state is None unless resuming
    from a checkpoint's state.json.
    """
    from trainer.data import discover

    if config.optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {config.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    ckpt_dir = _checkpoint_dir(config)
    data = discover(config.data_dir, config.val_fraction, config.test_fraction, config.seed)  # before touching out_dir
    if config.init_from is not None:
        data = _order_for_init(config, data)
    for split in ("train", "valid"):
        data.split(split)  # raises DataError for an empty split: also before out_dir is touched
    matched = None
    if config.taxonomy is not None:
        from trainer.taxonomy import load_for_classes

        matched = load_for_classes(Path(config.taxonomy), data.class_names)  # TaxonomyError: exit 2
    state = _prepare_run_dir(config, ckpt_dir)
    # A resume returns before creating them, and checkpoint_dir may live apart from a new out_dir.
    Path(config.out_dir).mkdir(parents=True, exist_ok=True)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    return data, state, matched


def _init_from(config: TrainConfig) -> Path:
    """--init-from, for the steps that run only when it is given (callers check it first)."""
    if config.init_from is None:
        raise ValueError("--init-from is not set")
    return Path(config.init_from)


def _order_for_init(config: TrainConfig, data: DataSplits) -> DataSplits:
    """The data labelled in the --init-from model's class order plus its new classes; refuses a
    config whose architecture or input size is not the source model's."""
    from trainer.data import order_classes
    from trainer.init_from import InitSourceError, merged_classes, resolve_init_source

    source = resolve_init_source(_init_from(config))
    for key in ("arch", "image_size"):
        if key in source.config and source.config[key] != getattr(config, key):
            raise InitSourceError(f"{key}: the run is {getattr(config, key)!r} but --init-from {source.path} is "
                                  f"{source.config[key]!r} (leave it out to take the source's)")
    return order_classes(data, merged_classes(source.class_names, data.class_names))


def _start_session(config: TrainConfig, data: DataSplits):
    """Reset Keras, seed it, set precision and pick the distribution strategy; returns the strategy.

    One process may train many runs (the tuner's trials, the tests), so each starts from a clean
    session and its own seed instead of depending on what ran before it in the process.
    """
    import keras

    keras.backend.clear_session()
    keras.utils.set_random_seed(config.seed)
    mixed = _set_precision(config.mixed_precision)
    strategy = _strategy(config.distribution)
    log.info("training %s on %d classes: %d train / %d valid images; mixed precision %s; %d replica(s)",
             config.arch, len(data.class_names), len(data.split("train")), len(data.split("valid")),
             "on" if mixed else "off", strategy.num_replicas_in_sync)
    return strategy


def _write_run_files(config: TrainConfig, data: DataSplits, state: dict | None, matched: Matched | None = None) -> None:
    """config.json and class_names.json always; data.json for a fresh run; taxonomy.json; refuse a
    resume whose classes changed.

    data.json describes the data the run started from (export copies its train fingerprint
    into the bundle's manifest), so a resume keeps the first one. A resume on other classes
    would silently mislabel every output, hence the error. taxonomy.json holds the names of
    --taxonomy (on top of an --init-from model's own); a resume without --taxonomy keeps it.
    """
    from trainer.data import DataError, fingerprint

    run_dir = Path(config.out_dir)
    (run_dir / "config.json").write_text(config.to_json() + "\n")
    _write_json(run_dir / "class_names.json", data.class_names)
    _write_taxonomy(config, data, state, matched)
    if state is None:
        _write_json(run_dir / "data.json", {
            "root": str(data.root), "layout": data.layout, "class_names": data.class_names,
            "counts": {k: len(v) for k, v in data.splits.items()},
            "skipped": [[str(p), reason] for p, reason in data.skipped],
            "train_fingerprint": fingerprint(data.root, data.split("train")),
        })
        if config.init_from is not None:
            from trainer.init_from import resolve_init_source, write_init_file

            write_init_file(run_dir, resolve_init_source(Path(config.init_from)), data.class_names)
    elif state.get("class_names") and state["class_names"] != data.class_names:
        raise DataError(f"cannot resume: the classes changed since the checkpoint ({state['class_names']} -> {data.class_names})")


def _write_taxonomy(config: TrainConfig, data: DataSplits, state: dict | None, matched: Matched | None) -> None:
    """RUN/taxonomy.json: an --init-from model's names for its classes, then --taxonomy's over them.
    A fresh run without either leaves none (an --overwrite removes an old one)."""
    from trainer.taxonomy import TAXONOMY_FILE, inherited_taxonomy, write_run_taxonomy

    run_dir = Path(config.out_dir)
    names: dict[str, dict[str, str]] = {}
    if config.init_from is not None and state is None:
        from trainer.init_from import resolve_init_source

        names = inherited_taxonomy(resolve_init_source(Path(config.init_from)), data.class_names)
    if matched is not None and config.taxonomy is not None:  # matched only comes from --taxonomy
        for line in matched.lines(config.taxonomy):
            (log.warning if ": warning:" in line else log.info)(line)
        names.update({label: {**names.get(label, {}), **entry} for label, entry in matched.manifest().items()})
    if names:
        write_run_taxonomy(run_dir, names)
    elif state is None:
        (run_dir / TAXONOMY_FILE).unlink(missing_ok=True)


def _make_datasets(config: TrainConfig, data: DataSplits, state: dict | None):
    """The training and validation tf.data pipelines; a resume's training set reshuffles where it left off."""
    from trainer.pipeline import make_dataset

    train_ds = make_dataset(data.split("train"), config.image_size, config.batch_size, training=True,
                            augment=config.augment, cache=config.cache, seed=config.seed)
    valid_ds = make_dataset(data.split("valid"), config.image_size, config.batch_size, training=False, cache=config.cache)
    if state is not None:
        _skip_shuffles(train_ds, int(state["epoch"]))
    return train_ds, valid_ds


def _build_or_resume_model(config: TrainConfig, data: DataSplits, state: dict | None, strategy):
    """The compiled model and the run's state: loaded from the checkpoint, or built fresh.

    Inside the strategy's scope, so that variables (and the optimizer's) are mirrored across
    replicas. A checkpoint carries its optimizer state, so a resumed model is not recompiled.
    """
    import keras

    from trainer.models import build_model  # also registers the custom layers load_model needs

    ckpt_dir = _checkpoint_dir(config)
    with strategy.scope():
        if state is not None:
            model = keras.models.load_model(ckpt_dir / state["checkpoint"])
            log.info("resuming from %s after epoch %d", state["checkpoint"], state["epoch"])
        else:
            if config.init_from is not None:
                model = _init_model(config, data)
            else:
                model = build_model(config, len(data.class_names)).model
            _compile(model, _make_optimizer(config.optimizer, config.learning_rate, config.momentum))
            state = {"epoch": 0, "phase": "head", "history": {}, "class_names": data.class_names,
                     "monitor": config.early_stopping_monitor}
    return model, state


def _init_model(config: TrainConfig, data: DataSplits):
    """The --init-from model widened to the data's classes; a transfer backbone frozen for the head phase."""
    from trainer.init_from import freeze_backbone, load_widened, resolve_init_source

    source = resolve_init_source(_init_from(config))
    model = load_widened(source, data.class_names)
    if config.arch != "convnet":
        freeze_backbone(model)
    log.info("starting from %s (%s, %d classes; %d classes now)", source.path, source.kind,
             len(source.class_names), len(data.class_names))
    return model


class _PhaseFit:
    """`fit(phase, until)`: train one phase up to epoch `until` with the run's callbacks.

    _run_phases decides which phases run (and unfreezes and recompiles between them); this runs
    one, or on resume skips one that had already ended. `stopped_early` says whether early
    stopping ended any phase.
    """

    def __init__(self, config: TrainConfig, model, state: dict, train_ds, valid_ds, extra_callbacks: Sequence[Any]) -> None:
        self.config, self.model, self.state = config, model, state
        self.train_ds, self.valid_ds, self.extra_callbacks = train_ds, valid_ds, extra_callbacks
        self.run_dir, self.ckpt_dir = Path(config.out_dir), _checkpoint_dir(config)
        self.stream = sys.stdout
        self.verbose = 1 if self.stream.isatty() else 0
        self.stopped_early = False

    def saved_early_stopping(self, phase: str) -> dict | None:
        """Early stopping's state from state.json when it belongs to this phase and monitor."""
        saved = self.state.get("early_stopping")
        if not saved or saved.get("phase") != phase:
            return None
        if saved.get("monitor") != self.config.early_stopping_monitor:
            log.info("early stopping now monitors %s (the checkpoint's monitored %s): its patience starts over",
                     self.config.early_stopping_monitor, saved.get("monitor"))
            return None
        return saved

    def __call__(self, phase: str, until: int) -> None:
        import keras

        from trainer.callbacks import EpochLine, ResumableEarlyStopping, RunState, read_weights

        config, model, state = self.config, self.model, self.state
        saved = self.saved_early_stopping(phase)
        already_stopped = saved is not None and saved["wait"] >= config.early_stopping_patience
        if already_stopped or state["epoch"] >= until:
            # This phase ended before the interruption. An uninterrupted run restored the best
            # weights at its end (fine-tuning starts from them), so do the same.
            if saved is not None and saved.get("best_weights"):
                model.set_weights(read_weights(model, self.ckpt_dir / saved["best_weights"]))
            if already_stopped:
                self.stopped_early = True
                log.info("early stopping had stopped the %s phase after epoch %d: not training it further",
                         phase, state["epoch"])
            return
        early = ResumableEarlyStopping(saved, self.ckpt_dir, monitor=config.early_stopping_monitor,
                                       patience=config.early_stopping_patience,
                                       mode=_monitor_mode(config.early_stopping_monitor),
                                       restore_best_weights=True)
        # early before RunState: the state.json of an epoch holds early stopping's view of it.
        # On a terminal Keras draws a progress bar; its own logger runs after the callbacks given
        # here, so the epoch line would land at the end of the unfinished bar. Given first, the
        # bar ends its line before the epoch line is printed (Keras uses a ProgbarLogger it is given).
        progress = [keras.callbacks.ProgbarLogger()] if self.verbose else []
        callbacks = [*progress, EpochLine(self.stream), early,
                     RunState(self.run_dir, self.ckpt_dir, config.early_stopping_monitor, state,
                              config.keep_checkpoints, phase, early),
                     *self.extra_callbacks]
        with warnings.catch_warnings():
            # Our datasets have unknown length (corrupt files are dropped on the fly), which
            # makes Keras warn after the first epoch that the input "ran out of data": benign.
            warnings.filterwarnings("ignore", message="Your input ran out of data")
            model.fit(self.train_ds, validation_data=self.valid_ds, epochs=until, initial_epoch=state["epoch"],
                      callbacks=callbacks, verbose=self.verbose, shuffle=False)
        if early.stopped_epoch > 0:
            self.stopped_early = True
            log.info("early stopping on %s after epoch %d", config.early_stopping_monitor, state["epoch"])


def _write_results(run_dir: Path, state: dict, model) -> dict[str, list[float]]:
    """history.json and history.png from the run's state; returns the history.

    RunState saves best.keras when the monitored value improves. If no epoch saved one (the
    value was never a number, say), the final model stands in: evaluate and export load
    run_dir/best.keras, and refuse a run folder without one.
    """
    history = state.get("history", {})
    _write_json(run_dir / "history.json", history)
    if history:
        _plot_history(history, run_dir / "history.png")
    if not (run_dir / "best.keras").exists():
        model.save(run_dir / "best.keras")
    return history


def train(config: TrainConfig, extra_callbacks: Sequence[Any] = ()) -> TrainResult:
    """Train the model `config` describes and write its run folder. Returns a TrainResult.

    extra_callbacks are Keras callbacks added to every fit (the tuner's pruning callback).
    """
    data, state, matched = _prepare_run(config)
    run_dir = Path(config.out_dir)
    with _LogToFile(run_dir / "train.log"):
        import keras

        strategy = _start_session(config, data)
        _write_run_files(config, data, state, matched)
        train_ds, valid_ds = _make_datasets(config, data, state)
        wants_fine_tune = config.arch != "convnet" and config.fine_tune_layers > 0 and config.fine_tune_epochs > 0
        total = config.epochs + (config.fine_tune_epochs if wants_fine_tune else 0)
        model, state = _build_or_resume_model(config, data, state, strategy)
        fit = _PhaseFit(config, model, state, train_ds, valid_ds, extra_callbacks)
        try:
            _run_phases(state, fit, model, strategy, config, total, wants_fine_tune)
        finally:
            keras.mixed_precision.set_global_policy("float32")  # whatever happened, the next run starts clean
        history = _write_results(run_dir, state, model)

    return TrainResult(
        run_dir=run_dir,
        history=history,
        best_epoch=int(state.get("best_epoch", state["epoch"])),
        best_metrics=dict(state.get("best_metrics", {})),
        monitor=config.early_stopping_monitor,
        model_path=run_dir / "best.keras",
        epochs_completed=int(state["epoch"]),
        class_names=data.class_names,
        stopped_early=fit.stopped_early,
    )
