"""SageMaker training entry point: the script-mode contract around `trainer.train.train`.

SageMaker starts `python trainer/entrypoint.py --key value ...` in the TensorFlow training
container with the job described by environment variables:

- `SM_CHANNEL_TRAIN`, `SM_CHANNEL_VALID`, `SM_CHANNEL_TEST`: the data channels (folder per
  class below each); the proposal's `training`/`validation`/`testing` names work too.
- `SM_MODEL_DIR` (/opt/ml/model): uploaded as model.tar.gz. We write
  `1/` (SavedModel, TF-Serving layout), `bundle/` (the edge's TFLite bundle) and `report.json`.
- `SM_OUTPUT_DATA_DIR` (/opt/ml/output/data): uploaded as output.tar.gz; gets a copy of the run
  folder (config, history, curves, train.log).
- `SM_HPS` (JSON) and/or `--key value` arguments: hyperparameters, named like `TrainConfig`
  fields (`learning-rate` and `learning_rate` are the same). Unknown ones are ignored with a
  note, because SageMaker adds its own (`sagemaker_program`, `model_dir`, ...).
- `SM_HOSTS`, `SM_CURRENT_HOST`: more than one host → MultiWorkerMirroredStrategy.

Spot interruptions: the whole run folder lives under the checkpoint directory
(/opt/ml/checkpoints, which SageMaker syncs to S3 and restores on restart), so a restarted job
finds `run/checkpoints/state.json` and resumes after the last finished epoch, best model and
history included.

Exit codes: 0 done, 2 bad input (missing channel, bad hyperparameter, unusable data),
1 anything else (the message is also written to /opt/ml/output/failure when that exists).
"""

from __future__ import annotations

if __package__ in (None, ""):  # run as a script (SageMaker): make `import trainer` work
    import sys as _sys
    from pathlib import Path as _Path

    _sys.path.insert(0, str(_Path(__file__).resolve().parent.parent))

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from trainer.search_space import SearchSpaceError, coerce_hyperparameter
from trainer.train_config import ARCHITECTURES, OPTIMIZERS, TrainConfig

CHANNEL_ALIASES = {
    "train": "train", "training": "train",
    "valid": "valid", "validation": "valid", "val": "valid",
    "test": "test", "testing": "test",
}
HP_ALIASES = {"dense_layer": "dense_units"}
SDK_CHANNELS = {"code", "sm_drivers"}  # ModelTrainer stages the source through these  # the proposal's notebook name
# Entry-point options that are not TrainConfig fields.
OPTION_DEFAULTS: dict[str, Any] = {"quantize": "int8", "calibration_images": 200, "eval_split": "auto"}
# TrainConfig fields the platform decides, not the hyperparameters.
_PLATFORM_FIELDS = {"data_dir", "out_dir", "resume", "overwrite", "extra", "filters", "taxonomy"}
DEFAULT_CHECKPOINT_DIR = "/opt/ml/checkpoints"
TF_CONFIG_PORT = 2222


class EntryPointError(ValueError):
    """Bad input to the entry point (exit 2); the message says what and how to fix it."""


@dataclass
class SageMakerEnv:
    """The SM_* environment, with the defaults the container would provide."""

    model_dir: Path
    output_data_dir: Path
    channels: dict[str, Path]
    hps: dict[str, Any]
    hosts: list[str] = field(default_factory=list)
    current_host: str = ""
    job_name: str = ""

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> SageMakerEnv:
        channels: dict[str, Path] = {}
        for key, value in environ.items():
            if key.startswith("SM_CHANNEL_"):
                raw = key[len("SM_CHANNEL_"):].lower()
                name = CHANNEL_ALIASES.get(raw)
                if raw in SDK_CHANNELS:
                    continue
                if name is None:
                    print(f"trailcam: ignoring unknown channel {raw!r} ({key})", file=sys.stderr)
                    continue
                channels[name] = Path(value)
        try:
            hps = json.loads(environ.get("SM_HPS") or "{}")
            hosts = json.loads(environ.get("SM_HOSTS") or "[]")
        except json.JSONDecodeError as exc:
            raise EntryPointError(f"SM_HPS/SM_HOSTS: invalid JSON ({exc.msg})") from None
        if not isinstance(hps, dict):
            raise EntryPointError("SM_HPS: expected a JSON object of hyperparameters")
        return cls(
            model_dir=Path(environ.get("SM_MODEL_DIR", "/opt/ml/model")),
            output_data_dir=Path(environ.get("SM_OUTPUT_DATA_DIR", "/opt/ml/output/data")),
            channels=channels,
            hps=hps,
            hosts=[str(h) for h in hosts],
            current_host=environ.get("SM_CURRENT_HOST", ""),
            job_name=environ.get("TRAINING_JOB_NAME") or _job_name_from_training_env(environ.get("SM_TRAINING_ENV")),
        )

    @property
    def is_chief(self) -> bool:
        return len(self.hosts) < 2 or self.current_host == sorted(self.hosts)[0]


def _job_name_from_training_env(raw: str | None) -> str:
    """The container toolkit also describes the job in SM_TRAINING_ENV (JSON, `job_name`)."""
    try:
        return str(json.loads(raw or "{}").get("job_name") or "")
    except (json.JSONDecodeError, AttributeError):
        return ""


def parse_args(argv: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """`--key value` / `--key=value` pairs → dict; returns (pairs, things it could not read)."""
    pairs: dict[str, str] = {}
    leftovers: list[str] = []
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("--") and len(arg) > 2:
            if "=" in arg:
                key, value = arg[2:].split("=", 1)
                i += 1
            elif i + 1 < len(args) and not args[i + 1].startswith("--"):
                key, value = arg[2:], args[i + 1]
                i += 2
            else:
                key, value = arg[2:], "true"
                i += 1
            pairs[key] = value
        else:
            leftovers.append(arg)
            i += 1
    return pairs, leftovers


def normalise_key(key: str) -> str:
    key = key.strip().replace("-", "_")
    return HP_ALIASES.get(key, key)


def resolve_hyperparameters(hps: Mapping[str, Any], argv: Sequence[str]) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """(TrainConfig overrides, entry-point options, ignored names); arguments win over SM_HPS."""
    args, leftovers = parse_args(argv)
    merged: dict[str, Any] = {normalise_key(k): v for k, v in hps.items()}
    merged.update({normalise_key(k): v for k, v in args.items()})
    config_fields = {f.name for f in fields(TrainConfig)} - _PLATFORM_FIELDS
    overrides: dict[str, Any] = {}
    options: dict[str, Any] = dict(OPTION_DEFAULTS)
    ignored = [str(x) for x in leftovers]
    for key, value in merged.items():
        if key in OPTION_DEFAULTS:
            try:
                options[key] = type(OPTION_DEFAULTS[key])(value)
            except ValueError:
                raise EntryPointError(f"hyperparameter {key}: expected {type(OPTION_DEFAULTS[key]).__name__}, got {value!r}") from None
        elif key in config_fields:
            try:
                overrides[key] = coerce_hyperparameter(key, value)
            except SearchSpaceError as exc:
                raise EntryPointError(f"hyperparameter {exc}") from None
        else:
            ignored.append(key)
    arch = overrides.get("arch", "convnet")
    if arch not in ARCHITECTURES:
        raise EntryPointError(f"hyperparameter arch: unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    return overrides, options, ignored


def stage_channels(channels: Mapping[str, Path], staging: Path) -> Path:
    """A Kaggle-layout folder (train/ valid/ [test/]) made of symlinks to the channel folders."""
    missing = [name for name in ("train", "valid") if name not in channels]
    if missing:
        raise EntryPointError(
            f"missing channel(s): {', '.join(missing)} (set SM_CHANNEL_{missing[0].upper()}; the job needs "
            "train and valid channels, test is optional)"
        )
    for name, path in channels.items():
        if not path.is_dir():
            raise EntryPointError(f"channel {name}: {path} is not a folder")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    for name, path in channels.items():
        (staging / name).symlink_to(path.resolve(), target_is_directory=True)
    return staging


def checkpoint_root(env: SageMakerEnv, overrides: Mapping[str, Any], hps: Mapping[str, Any]) -> Path:
    """Where the resumable run folder lives. Tuning jobs may share one checkpoint URI, so each
    of their training jobs keeps to a folder named after itself."""
    root = Path(overrides.get("checkpoint_dir") or os.environ.get("TRAILCAM_CHECKPOINT_DIR") or DEFAULT_CHECKPOINT_DIR)
    if "_tuning_objective_metric" in hps and env.job_name:
        root = root / env.job_name
    return root


def configure_multiworker(env: SageMakerEnv) -> bool:
    """Set TF_CONFIG from SM_HOSTS for MultiWorkerMirroredStrategy; True when distributed."""
    if len(env.hosts) < 2:
        return False
    if "TF_CONFIG" not in os.environ:
        hosts = sorted(env.hosts)
        os.environ["TF_CONFIG"] = json.dumps({
            "cluster": {"worker": [f"{host}:{TF_CONFIG_PORT}" for host in hosts]},
            "task": {"type": "worker", "index": hosts.index(env.current_host)},
        })
    return True


def build_config(env: SageMakerEnv, overrides: Mapping[str, Any], data_dir: Path, ckpt_root: Path) -> TrainConfig:
    overrides = dict(overrides)
    overrides.pop("checkpoint_dir", None)
    if env.is_chief:
        run_dir = ckpt_root / "run"
    else:  # other workers must save too (MWMS), but only the chief's files matter
        run_dir = Path(tempfile.mkdtemp(prefix="trailcam-worker-"))
    resume = (run_dir / "checkpoints" / "state.json").is_file()
    config = TrainConfig(data_dir=data_dir, out_dir=run_dir, **overrides)
    config = replace(config, resume=resume, overwrite=not resume, checkpoint_dir=None)
    if len(env.hosts) > 1:
        config = replace(config, distribution="multiworker")
    return config


def resumed_epoch(run_dir: Path) -> int:
    state = run_dir / "checkpoints" / "state.json"
    if not state.is_file():
        return 0
    try:
        return int(json.loads(state.read_text()).get("epoch", 0))
    except (ValueError, OSError):
        return 0


def write_saved_model(keras_model_path: Path, model_dir: Path) -> Path:
    """SavedModel in TF-Serving layout `<model_dir>/1/` (what a SageMaker TF endpoint serves)."""
    import keras

    target = model_dir / "1"
    if target.exists():
        shutil.rmtree(target)
    model = keras.models.load_model(keras_model_path)
    model.export(str(target))
    return target


def write_report(run_dir: Path, data_dir: Path, split: str, model_dir: Path, extra: dict[str, Any]) -> Path:
    """report.json (+ confusion.png under evaluation/): the trainer's evaluation of the best model
    on `split`, with the run's summary and the bundle's own TFLite verification added."""
    from trainer.evaluate import evaluate

    report = evaluate(run_dir, data_dir, split, out_dir=model_dir / "evaluation")
    manifest = model_dir / "bundle" / "manifest.json"
    if manifest.is_file():
        report["bundle"] = {k: v for k, v in json.loads(manifest.read_text()).items()
                            if k in ("model_id", "quantization", "metrics", "tflite_sha256")}
    report.update(extra)
    path = model_dir / "report.json"
    path.write_text(json.dumps(report, indent=2, sort_keys=True, default=str) + "\n")
    return path


def copy_run(run_dir: Path, output_dir: Path) -> None:
    target = output_dir / "run"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(run_dir, target, ignore=shutil.ignore_patterns("checkpoints"))


def _fail(message: str, code: int) -> int:
    print(f"trailcam: error: {message}", file=sys.stderr, flush=True)
    failure = Path("/opt/ml/output/failure")
    if failure.parent.is_dir() and os.access(failure.parent, os.W_OK):
        failure.write_text(message + "\n")
    return code


_CHOICES = {
    "optimizer": OPTIMIZERS,
    "mixed_precision": ("auto", "on", "off"),
    "distribution": ("auto", "none", "mirrored", "multiworker"),
    "quantize": ("none", "float16", "dynamic", "int8"),
    "eval_split": ("auto", "train", "valid", "test"),
}


def check_choices(overrides: Mapping[str, Any], options: Mapping[str, Any], channels: Mapping[str, Path]) -> None:
    """Settings with a fixed set of values fail here, before an hour of training, not after."""
    for key, allowed in _CHOICES.items():
        value = overrides.get(key, options.get(key))
        if value is not None and value not in allowed:
            raise EntryPointError(f"hyperparameter {key}: {value!r} is not one of {', '.join(allowed)}")
    if options.get("eval_split") not in ("auto", None) and options["eval_split"] not in channels:
        raise EntryPointError(f"hyperparameter eval_split: no {options['eval_split']} channel to evaluate on")


def run(environ: Mapping[str, str], argv: Sequence[str]) -> int:
    staging = Path(tempfile.gettempdir()) / f"trailcam-channels-{os.getpid()}"
    try:
        return _run(environ, argv, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _run(environ: Mapping[str, str], argv: Sequence[str], staging: Path) -> int:
    try:
        env = SageMakerEnv.from_environ(environ)
        overrides, options, ignored = resolve_hyperparameters(env.hps, argv)
        if ignored:
            print(f"trailcam: ignoring unknown hyperparameters/arguments: {', '.join(sorted(set(ignored)))}", flush=True)
        check_choices(overrides, options, env.channels)
        data_dir = stage_channels(env.channels, staging)
        ckpt_root = checkpoint_root(env, overrides, env.hps)
        configure_multiworker(env)
        config = build_config(env, overrides, data_dir, ckpt_root)
    except EntryPointError as exc:
        return _fail(str(exc), 2)

    if config.resume:
        print(f"trailcam: resuming from checkpoint after epoch {resumed_epoch(config.out_dir)} "
              f"({config.out_dir / 'checkpoints'})", flush=True)
    else:
        print(f"trailcam: starting a new run in {config.out_dir}", flush=True)

    from trainer.data import DataError
    from trainer.train import train

    try:
        result = train(config)
    except DataError as exc:
        return _fail(f"data: {exc}", 2)
    if not env.is_chief:
        return 0
    env.model_dir.mkdir(parents=True, exist_ok=True)
    env.output_data_dir.mkdir(parents=True, exist_ok=True)
    try:
        saved = write_saved_model(result.model_path, env.model_dir)
        print(f"trailcam: SavedModel written to {saved}", flush=True)
        copy_run(result.run_dir, env.output_data_dir)
        split = options["eval_split"]
        if split == "auto":
            split = "test" if "test" in env.channels else "valid"
        from trainer.export import export_bundle

        bundle = export_bundle(result.run_dir, env.model_dir / "bundle", quantize=options["quantize"],
                               data_dir=data_dir, calibration_images=int(options["calibration_images"]),
                               overwrite=True)
        print(f"trailcam: TFLite bundle written to {bundle}", flush=True)
        report = write_report(result.run_dir, data_dir, split, env.model_dir,
                              {"best_epoch": result.best_epoch, "epochs_completed": result.epochs_completed,
                               "best_metrics": result.best_metrics, "job_name": env.job_name})
        print(f"trailcam: evaluation report written to {report}", flush=True)
    except Exception as exc:  # noqa: BLE001 - the job must say why it failed, in one line
        return _fail(f"{type(exc).__name__}: {exc}", 1)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(os.environ, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    raise SystemExit(main())
