"""Local hyperparameter tuning with Optuna: `trainer tune --backend local`.

A study lives in one folder, so it can be stopped at any moment and resumed by running the same
command again:

    <study_dir>/study.db        Optuna storage (SQLite): every trial, value and epoch report
    <study_dir>/study.json      what the study searches (arch, space, base settings)
    <study_dir>/trials/trial-0007/   the trial's run folder (best.keras, history, train.log)
    <study_dir>/results.csv     all trials, best first            (rewritten after every trial)
    <study_dir>/history.png     objective per trial and best so far
    <study_dir>/best.json       the best parameters: `trainer train --params best.json`

TPE proposes parameters from the architecture's `SearchSpace`; a Keras callback reports the
validation accuracy after every epoch and the median pruner stops trials that trail the median
of earlier trials at the same epoch. Finished trials are never repeated on resume; a trial that
was running when the process died is marked failed and queued again with the same parameters.
"""

from __future__ import annotations

import csv
import fcntl
import json
import math
import multiprocessing
import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from trainer.search_space import SearchSpace, load_search_space
from trainer.train_config import TrainConfig

OBJECTIVE = "val_accuracy"


class TuneError(ValueError):
    """Bad tuning input (exit 2): the message names the option and the problem."""


@dataclass
class TuneSettings:
    """One `trainer tune --backend local` invocation; also handed to worker processes."""

    data_dir: str
    study_dir: str
    arch: str = "convnet"
    trials: int = 20
    timeout_s: float | None = None
    jobs: int = 1
    seed: int = 42
    search_space_file: str | None = None
    study_name: str | None = None
    pruner: str = "median"  # median | none
    prune_startup_trials: int = 3
    prune_warmup_epochs: int = 1
    enqueue: list[dict[str, Any]] = field(default_factory=list)  # configurations to try first
    base: dict[str, Any] = field(default_factory=dict)  # TrainConfig fields shared by every trial

    @property
    def name(self) -> str:
        return self.study_name or f"trailcam-{self.arch}"

    @property
    def storage_url(self) -> str:
        return f"sqlite:///{Path(self.study_dir).resolve() / 'study.db'}"


# ------------------------------------------------------------------ study plumbing

def _optuna():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def _storage(settings: TuneSettings):
    optuna = _optuna()
    # A generous SQLite timeout: parallel workers write the same file.
    return optuna.storages.RDBStorage(settings.storage_url, engine_kwargs={"connect_args": {"timeout": 60}})


def open_study(settings: TuneSettings, seed_offset: int = 0):
    """Create or load the study. The sampler's seed moves on with the trials already stored, so a
    resumed study does not propose the same random start-up points again."""
    optuna = _optuna()
    sampler = optuna.samplers.TPESampler(
        seed=settings.seed + seed_offset,
        n_startup_trials=max(2, min(10, settings.trials // 3)),
    )
    if settings.pruner == "median":
        pruner = optuna.pruners.MedianPruner(n_startup_trials=settings.prune_startup_trials,
                                             n_warmup_steps=settings.prune_warmup_epochs)
    else:
        pruner = optuna.pruners.NopPruner()
    return optuna.create_study(study_name=settings.name, storage=_storage(settings), sampler=sampler,
                               pruner=pruner, direction="maximize", load_if_exists=True)


def _finished_states():
    from optuna.trial import TrialState

    return (TrialState.COMPLETE, TrialState.PRUNED)


def requeue_interrupted(study) -> list[int]:
    """Mark trials left RUNNING by a dead process as FAIL and queue their parameters again.

    Only called while holding the study lock, so no live process owns those trials.
    """
    from optuna.trial import TrialState

    requeued = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
        if trial.params:  # killed before it drew its parameters: nothing worth repeating
            study.enqueue_trial(dict(trial.params), user_attrs={"retry_of": trial.number}, skip_if_exists=False)
            requeued.append(trial.number)
    return requeued


class StudyLock:
    """An exclusive lock on the study folder for the lifetime of one `trainer tune` run."""

    def __init__(self, study_dir: Path) -> None:
        self.path = study_dir / ".lock"
        self.handle: IO[str] | None = None

    def __enter__(self) -> StudyLock:
        self.handle = handle = open(self.path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            handle.close()
            raise TuneError(f"--study-dir: {self.path.parent} is in use by {owner}; wait for it or use another folder") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        return self

    def __exit__(self, *exc) -> None:
        if self.handle:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()


# ------------------------------------------------------------------ one trial

def _pruning_callback_class():
    """Defined lazily so importing this module does not import TensorFlow."""
    import keras

    class OptunaPruning(keras.callbacks.Callback):
        """Report the objective after every epoch; stop training when the pruner says so.

        It stops training instead of raising inside Keras, so the trainer still writes the
        trial's run folder; the objective then raises TrialPruned.
        """

        def __init__(self, trial, monitor: str = OBJECTIVE) -> None:
            super().__init__()
            self.trial, self.monitor = trial, monitor
            self.pruned_at: int | None = None

        def on_train_batch_begin(self, batch, logs=None):
            # A transfer model's fine-tune phase is a second fit(): once pruned, stay stopped.
            if self.pruned_at is not None:
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            if self.pruned_at is not None:
                return
            value = (logs or {}).get(self.monitor)
            if value is None or not math.isfinite(float(value)):
                value = 0.0  # a diverged epoch is as bad as it gets, not a crash
            self.trial.report(float(value), step=epoch + 1)
            if self.trial.should_prune():
                self.pruned_at = epoch + 1
                self.model.stop_training = True

    return OptunaPruning


def trial_config(settings: TuneSettings, params: Mapping[str, Any], number: int) -> TrainConfig:
    values = {"arch": settings.arch, "seed": settings.seed, **settings.base, **params}
    return TrainConfig(
        data_dir=Path(settings.data_dir),
        out_dir=Path(settings.study_dir) / "trials" / f"trial-{number:04d}",
        **values,
        overwrite=True,
    )


def make_objective(settings: TuneSettings, space: SearchSpace):
    def objective(trial) -> float:
        optuna = _optuna()
        from trainer.train import train

        params = space.suggest(trial)
        config = trial_config(settings, params, trial.number)
        trial.set_user_attr("run_dir", str(config.out_dir))
        callback = _pruning_callback_class()(trial)
        started = time.monotonic()
        result = train(config, extra_callbacks=[callback])
        trial.set_user_attr("epochs", result.epochs_completed)
        trial.set_user_attr("seconds", round(time.monotonic() - started, 1))
        if callback.pruned_at is not None:
            raise optuna.TrialPruned(f"pruned after epoch {callback.pruned_at}")
        values = [v for v in result.history.get(OBJECTIVE, []) if v is not None and math.isfinite(v)]
        return max(values) if values else 0.0

    return objective


def _announce(study, trial) -> None:
    value = trial.value if trial.value is not None else _last_report(trial)
    shown = "n/a" if value is None else f"{value:.4f}"
    params = " ".join(f"{k}={_fmt(v)}" for k, v in trial.params.items())
    print(f"trailcam tune: trial {trial.number} {trial.state.name.lower()} {OBJECTIVE}={shown} "
          f"epochs_run={trial.user_attrs.get('epochs', '?')} {params}", flush=True)


def optimise(settings: TuneSettings, worker: int = 0) -> None:
    """Run trials until the study holds `settings.trials` finished ones (or the timeout)."""
    optuna = _optuna()
    space = load_search_space(settings.arch, settings.search_space_file)
    study = open_study(settings, seed_offset=len(_optuna_trials(settings)) + 1000 * worker)
    finished = _finished_states()
    callback = optuna.study.MaxTrialsCallback(settings.trials, states=finished)
    if len(study.get_trials(deepcopy=False, states=finished)) >= settings.trials:
        return
    study.optimize(make_objective(settings, space), timeout=settings.timeout_s, catch=(Exception,),
                   callbacks=[callback, _announce, lambda s, t: write_results(settings, s)], gc_after_trial=True)


def _optuna_trials(settings: TuneSettings) -> list:
    try:
        return _optuna().load_study(study_name=settings.name, storage=_storage(settings)).get_trials(deepcopy=False)
    except KeyError:
        return []


def _worker_main(settings_dict: dict, worker: int) -> None:
    optimise(TuneSettings(**settings_dict), worker=worker)


# ------------------------------------------------------------------ results

def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _last_report(trial) -> float | None:
    if not trial.intermediate_values:
        return None
    return trial.intermediate_values[max(trial.intermediate_values)]


def results_rows(study) -> list[dict[str, Any]]:
    """All trials, best first: completed by value, then pruned by their last reported value."""
    from optuna.trial import TrialState

    order = {TrialState.COMPLETE: 0, TrialState.PRUNED: 1, TrialState.RUNNING: 2, TrialState.WAITING: 3,
             TrialState.FAIL: 4}
    rows = []
    for trial in study.get_trials(deepcopy=False):
        value = trial.value if trial.state == TrialState.COMPLETE else _last_report(trial)
        rows.append({
            "trial": trial.number,
            "state": trial.state.name.lower(),
            OBJECTIVE: value,
            "epochs_run": trial.user_attrs.get("epochs", len(trial.intermediate_values) or None),
            **{f"param_{k}": v for k, v in trial.params.items()},
            "seconds": trial.user_attrs.get("seconds"),
            "run_dir": trial.user_attrs.get("run_dir", ""),
            "_order": order.get(trial.state, 5),
        })
    rows.sort(key=lambda r: (r["_order"], -(r[OBJECTIVE] if r[OBJECTIVE] is not None else -1.0), r["trial"]))
    for rank, row in enumerate(rows, 1):
        row.pop("_order")
        row["rank"] = rank
    return rows


def write_results(settings: TuneSettings, study) -> dict[str, Path]:
    """results.csv, history.png and best.json in the study folder (rewritten as trials finish)."""
    study_dir = Path(settings.study_dir)
    rows = results_rows(study)
    columns = ["rank", "trial", "state", OBJECTIVE, "epochs_run"]
    columns += sorted({k for r in rows for k in r if k.startswith("param_")})
    columns += ["seconds", "run_dir"]
    with open(study_dir / "results.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
    out = {"results": study_dir / "results.csv"}
    if plot_history(study, study_dir / "history.png"):
        out["history"] = study_dir / "history.png"
    best = write_best(settings, study)
    if best:
        out["best"] = best
    return out


def plot_history(study, path: Path) -> bool:
    """Objective per trial (pruned trials at their last report) and the best so far."""
    from optuna.trial import TrialState

    trials = [t for t in study.get_trials(deepcopy=False) if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    if not trials:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    done = [(t.number, t.value) for t in trials if t.state == TrialState.COMPLETE]
    pruned = [(t.number, _last_report(t)) for t in trials if t.state == TrialState.PRUNED and t.intermediate_values]
    if done:
        ax.scatter(*zip(*done), label="completed", color="tab:blue", zorder=3)
    if pruned:
        ax.scatter(*zip(*pruned), label="pruned (last epoch reported)", color="tab:gray", marker="x", zorder=3)
    best, xs, ys = -math.inf, [], []
    for number, value in sorted(done):
        best = max(best, value)
        xs.append(number)
        ys.append(best)
    if xs:
        ax.step(xs, ys, where="post", color="tab:red", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(OBJECTIVE)
    ax.set_title(f"{study.study_name}: optimisation history")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def write_best(settings: TuneSettings, study) -> Path | None:
    """best.json: everything `trainer train --params best.json` needs to retrain the winner."""
    from optuna.trial import TrialState

    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return None
    best = study.best_trial
    space = load_search_space(settings.arch, settings.search_space_file)
    params = {**settings.base, **space.fixed, **best.params, "arch": settings.arch, "seed": settings.seed}
    payload = {
        "format": "trailcam-params",
        "params": params,
        "objective": {"name": OBJECTIVE, "value": best.value, "direction": "maximize"},
        "trial": best.number,
        "study": settings.name,
        "study_dir": str(Path(settings.study_dir).resolve()),
        "run_dir": best.user_attrs.get("run_dir"),
    }
    path = Path(settings.study_dir) / "best.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")
    tmp.replace(path)
    return path


def format_table(rows: list[dict[str, Any]], limit: int = 20) -> str:
    """The results as an aligned text table (best first)."""
    if not rows:
        return "(no trials)"
    params = sorted({k for r in rows for k in r if k.startswith("param_")})
    columns = ["rank", "trial", "state", OBJECTIVE, "epochs_run", *params]
    header = [c.removeprefix("param_") for c in columns]
    body = [[("" if r.get(c) is None else _fmt(r.get(c))) for c in columns] for r in rows[:limit]]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(b, widths)) for b in body]
    if len(rows) > limit:
        lines.append(f"... {len(rows) - limit} more in results.csv")
    return "\n".join(lines)


# ------------------------------------------------------------------ the command

def _check_study_json(settings: TuneSettings, space: SearchSpace) -> None:
    """Refuse to resume a study with a different architecture or search space."""
    path = Path(settings.study_dir) / "study.json"
    record = {"arch": settings.arch, "study": settings.name,
              "space": {k: repr(v) for k, v in space.params.items()}, "fixed": {k: repr(v) for k, v in space.fixed.items()}}
    if path.is_file():
        old = json.loads(path.read_text())
        if old.get("arch") != record["arch"] or old.get("space") != record["space"]:
            raise TuneError(
                f"--study-dir: {settings.study_dir} holds a study of {old.get('arch')} with a different search space; "
                "use a new --study-dir (or the original --arch/--search-space) to resume"
            )
    else:
        path.write_text(json.dumps({**record, "base": settings.base}, indent=2, default=str) + "\n")


def read_enqueue_file(path: Path | str, space: SearchSpace) -> dict[str, Any]:
    """A configuration to try first: best.json or a flat JSON object of searched parameters."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TuneError(f"--enqueue: {path} not found") from None
    except json.JSONDecodeError as exc:
        raise TuneError(f"--enqueue {path}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
    if isinstance(data, dict) and isinstance(data.get("params"), dict):
        data = data["params"]
    if not isinstance(data, dict):
        raise TuneError(f"--enqueue {path}: expected a JSON object of parameters")
    searched = {k: v for k, v in data.items() if k in space.params}
    if not searched:
        raise TuneError(f"--enqueue {path}: none of the searched parameters ({', '.join(space.params)}) is in it")
    return searched


def run_study(settings: TuneSettings) -> dict[str, Any]:
    """Run (or resume) the study; returns {'rows', 'files', 'resumed', 'requeued'}."""
    if settings.trials < 1:
        raise TuneError(f"--trials: must be at least 1, got {settings.trials}")
    if settings.jobs < 1:
        raise TuneError(f"--jobs: must be at least 1, got {settings.jobs}")
    if settings.timeout_s is not None and settings.timeout_s <= 0:
        raise TuneError(f"--timeout: must be a positive number of seconds, got {settings.timeout_s}")
    space = load_search_space(settings.arch, settings.search_space_file)  # SearchSpaceError → exit 2
    from trainer.data import DataError, discover

    try:
        discover(Path(settings.data_dir), 0.15, 0.10, settings.seed)
    except DataError as exc:
        raise TuneError(f"--data: {exc}") from None
    study_dir = Path(settings.study_dir)
    study_dir.mkdir(parents=True, exist_ok=True)
    with StudyLock(study_dir):
        _check_study_json(settings, space)
        study = open_study(settings, seed_offset=len(_optuna_trials(settings)))
        finished = len(study.get_trials(deepcopy=False, states=_finished_states()))
        requeued = requeue_interrupted(study)
        for params in settings.enqueue:
            # skip_if_exists: a resumed study does not try the same start point twice
            study.enqueue_trial({k: v for k, v in params.items() if k in space.params}, skip_if_exists=True)
        if finished:
            print(f"trailcam tune: resuming study {settings.name}: {finished} finished trial(s) kept"
                  + (f", re-running interrupted trial(s) {requeued}" if requeued else ""), flush=True)
        extra = []
        if settings.jobs > 1 and finished < settings.trials:
            ctx = multiprocessing.get_context("spawn")
            for worker in range(1, settings.jobs):
                process = ctx.Process(target=_worker_main, args=(asdict(settings), worker), daemon=False)
                process.start()
                extra.append(process)
        try:
            optimise(settings)
        finally:
            for process in extra:
                process.join()
        study = open_study(settings)
        files = write_results(settings, study)
    return {"rows": results_rows(study), "files": files, "resumed": finished, "requeued": requeued}
