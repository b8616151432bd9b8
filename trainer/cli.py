"""`trainer` command line: synth, data check, crops, train, evaluate, export (+ tune, sagemaker).

Argument parsing imports no TensorFlow, so `trainer --help` and usage errors answer at once;
each command imports what it needs when it runs. Exit codes: 0 success, 1 a failure while
working (e.g. an export that fails its own verification), 2 bad input (usage, data tree,
parameters), each with one `trainer: error: ...` line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trainer import __version__
from trainer.train_config import ARCHITECTURES, MIN_IMAGE_SIZE, OPTIMIZERS, TrainConfig

if TYPE_CHECKING:
    from datetime import datetime

QUANTIZATIONS = ("none", "float16", "dynamic", "int8")  # trainer.export.QUANTIZATIONS, without importing it
EXIT_USAGE = 2


class UsageError(Exception):
    """Bad input found after parsing (a parameter file, a data tree): exit 2 with its message."""


def _checked(convert: Callable[[str], Any], kind: str, valid: Callable[[Any], bool], rule: str) -> Callable[[str], Any]:
    """An argparse type: `convert` the text (else "is not {kind}"), then insist on `valid` (else
    "{value} {rule}"), so every numeric option words its error the same way."""

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {kind}") from None
        if not valid(value):
            raise argparse.ArgumentTypeError(f"{value} {rule}")
        return value

    return parse


_positive_int = _checked(int, "an integer", lambda value: value >= 1, "must be at least 1")
_non_negative_int = _checked(int, "an integer", lambda value: value >= 0, "must not be negative")
_fraction = _checked(float, "a number", lambda value: 0.0 <= value < 1.0, "must be in [0, 1)")
_positive_float = _checked(float, "a number", lambda value: value > 0, "must be positive")
_fraction_or_one = _checked(float, "a number", lambda value: 0.0 < value <= 1.0, "must be in (0, 1]")


def _local_datetime(text: str) -> datetime:
    """A naive local date-time (a camera's clock), e.g. 2026-05-01T07:00."""
    from datetime import datetime

    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date and time like 2026-05-01T07:00: {text!r}") from None


def _add_train(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a model on a folder-per-class data tree",
                              description="Train a model and write a run folder (config, class names, history, best.keras, checkpoints). "
                                          "Options not given come from --params, then TrainConfig's defaults.",
                              argument_default=argparse.SUPPRESS)
    p.add_argument("--data", dest="data_dir", type=Path, help="data tree: train/valid/test/<class>/ or <class>/ (split here)")
    p.add_argument("--out", dest="out_dir", type=Path, help="run folder to create")
    p.add_argument("--params", dest="params_file", type=Path, help="JSON of TrainConfig field overrides (e.g. the tuner's best.json)")
    p.add_argument("--arch", choices=ARCHITECTURES, help="model architecture (default convnet)")
    p.add_argument("--image-size", dest="image_size", type=_positive_int, help="model input size in pixels (default 224)")
    p.add_argument("--weights", help="transfer models: imagenet | none | path to a local .h5 (default imagenet)")
    p.add_argument("--filters", type=_positive_int, nargs=2, metavar=("F1", "F2"), help="convnet filters (default 64 32)")
    p.add_argument("--dense-units", dest="dense_units", type=_positive_int, help="convnet dense units (default 32)")
    p.add_argument("--dropout", type=_fraction, help="dropout before the last layer (default 0.2)")
    p.add_argument("--head-units", dest="head_units", type=_positive_int, help="resnet152 head Dense units (default 1000)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, help="sgd (with momentum) or adam (default sgd)")
    p.add_argument("--learning-rate", dest="learning_rate", type=_positive_float, help="(default 0.01)")
    p.add_argument("--momentum", type=_fraction, help="sgd momentum (default 0.9)")
    p.add_argument("--batch-size", dest="batch_size", type=_positive_int, help="global batch size (default 32)")
    p.add_argument("--epochs", type=_positive_int, help="epochs of the first (head) phase (default 10)")
    p.add_argument("--monitor", dest="early_stopping_monitor", help="early stopping / best model metric (default loss)")
    p.add_argument("--patience", dest="early_stopping_patience", type=_positive_int, help="early stopping patience (default 3)")
    p.add_argument("--fine-tune-layers", dest="fine_tune_layers", type=_non_negative_int, help="transfer: unfreeze the top N base layers after the head phase")
    p.add_argument("--fine-tune-epochs", dest="fine_tune_epochs", type=_non_negative_int, help="transfer: epochs of fine-tuning")
    p.add_argument("--fine-tune-learning-rate", dest="fine_tune_learning_rate", type=_positive_float, help="(default 1e-4)")
    p.add_argument("--val-fraction", dest="val_fraction", type=_fraction, help="single tree / no valid/: share held out for validation (0.15)")
    p.add_argument("--test-fraction", dest="test_fraction", type=_fraction, help="single tree: share held out for testing (0.10)")
    p.add_argument("--no-augment", dest="augment", action="store_false", help="no flip/rotation/zoom augmentation")
    p.add_argument("--no-cache", dest="cache", action="store_false", help="do not cache decoded images in memory")
    p.add_argument("--seed", type=int, help="random seed for splits, shuffling and initialisation (default 42)")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in the run")
    p.add_argument("--checkpoint-dir", dest="checkpoint_dir", type=Path, help="per-epoch checkpoints (default RUN/checkpoints)")
    p.add_argument("--keep-checkpoints", dest="keep_checkpoints", type=_non_negative_int, help="checkpoints kept, 0 = all (default 3)")
    p.add_argument("--mixed-precision", dest="mixed_precision", choices=("auto", "on", "off"), help="(default auto: on with a GPU)")
    p.add_argument("--distribution", choices=("auto", "none", "mirrored", "multiworker"), help="(default auto: mirrored with >1 GPU)")
    p.add_argument("--overwrite", action="store_true", help="train into a folder that already holds a run")
    p.add_argument("--taxonomy", type=Path, metavar="CSV",
                   help="scientific (and common) names per class, written into the run and its bundles: a "
                        "label,scientific_name[,common_name] CSV or a per-image one such as the Kaggle set's birds.csv")
    p.add_argument("--init-from", dest="init_from", type=Path, metavar="RUN_OR_BUNDLE",
                   help="fine-tune from this run folder or bundle (one exported with its model.keras): its weights "
                        "and classes, in its order, then the data's new classes; --arch and --image-size default to its")
    p.set_defaults(func=cmd_train)


def _add_evaluate(subparsers) -> None:
    p = subparsers.add_parser("evaluate", help="top-1/top-5/F1/confusion of a run or an exported .tflite",
                              description="Evaluate a run folder (Keras) or a bundle folder / .tflite (LiteRT) on a split.")
    p.add_argument("model", type=Path, help="run folder, bundle folder or .tflite file")
    p.add_argument("--data", dest="data_dir", type=Path, help="data tree (default: the run's own; required for a bundle)")
    p.add_argument("--split", choices=("train", "valid", "test"), default="test", help="split to evaluate on")
    p.add_argument("--out", dest="out_dir", type=Path, help="report folder (default RUN/eval-SPLIT or BUNDLE-eval-SPLIT)")
    p.add_argument("--json", action="store_true", help="print the whole report as JSON")
    p.set_defaults(func=cmd_evaluate)


def _add_export(subparsers) -> None:
    p = subparsers.add_parser("export", help="export a run as a verified TFLite bundle for the edge",
                              description="Convert RUN/best.keras to TFLite, verify it against Keras on held-out images "
                                          "and write model.tflite + labels.txt + manifest.json.")
    p.add_argument("run", type=Path, help="run folder")
    p.add_argument("--out", dest="out_dir", type=Path, required=True, help="bundle folder to create")
    p.add_argument("--quantize", choices=QUANTIZATIONS, default="int8", help="(default int8: full integer, uint8 in/out)")
    p.add_argument("--data", dest="data_dir", type=Path, help="data tree for calibration/verification (default: the run's)")
    p.add_argument("--calibration-images", type=_positive_int, default=200, help="int8: training images to calibrate on (200)")
    p.add_argument("--eval-images", type=_positive_int, default=500, help="held-out images to verify on (500)")
    p.add_argument("--min-agreement", type=_fraction_or_one, default=None,
                   help="top-1 agreement required with Keras (default 0.995 none/float16, 0.98 dynamic/int8)")
    p.add_argument("--no-bird-label", default=None, help="the label meaning 'no bird', recorded in the manifest")
    p.add_argument("--overwrite", action="store_true", help="replace an existing bundle folder")
    p.add_argument("--no-keras-model", dest="include_keras", action="store_false",
                   help="leave the trainable model.keras out of the bundle (smaller; --init-from then needs the run folder)")
    p.add_argument("--taxonomy", type=Path, metavar="CSV",
                   help="scientific (and common) names per class to add to (or replace in) the run's, as trainer train --taxonomy")
    p.set_defaults(func=cmd_export)


def _add_data(subparsers) -> None:
    p = subparsers.add_parser("data", help="inspect a data tree")
    sub = p.add_subparsers(dest="data_command", metavar="{check}", required=True)
    c = sub.add_parser("check", help="counts, corrupt files, wrong sizes, cross-split duplicates",
                       description="Report per-class counts, unreadable/corrupt/non-image files, images that are not "
                                   "the expected size and exact duplicates across splits. Reads only.")
    c.add_argument("data_dir", type=Path, help="data tree")
    c.add_argument("--expect-size", type=_non_negative_int, default=224, help="expected square size, 0 = any (224)")
    c.add_argument("--json", action="store_true", help="print the report as JSON")
    c.add_argument("--strict", action="store_true", help="exit 1 when any problem is found")
    c.set_defaults(func=cmd_data_check)


def _add_synth(subparsers) -> None:
    p = subparsers.add_parser("synth", help="generate a synthetic data set (and camera frames) for demos and tests",
                              description="One shape and colour per class on noisy backgrounds: train/valid/test JPEGs "
                                          "in the Kaggle layout, and optionally a flat folder of larger 'camera frames'.")
    p.add_argument("--out", type=Path, required=True, help="data set folder to create")
    p.add_argument("--classes", type=_positive_int, default=4, help="number of classes, 2..8 (4)")
    p.add_argument("--train-per-class", type=_positive_int, default=40, help="training images per class")
    p.add_argument("--valid-per-class", type=_positive_int, default=10, help="validation images per class")
    p.add_argument("--test-per-class", type=_positive_int, default=10, help="test images per class")
    p.add_argument("--image-size", type=_positive_int, default=224, help="data set image size (224, like the Kaggle set)")
    p.add_argument("--frames-out", type=Path, help="also write camera frames (JPEG) to this folder")
    p.add_argument("--frames-start", type=_local_datetime, metavar="YYYY-MM-DDTHH:MM",
                   help="stamp the camera frames with EXIF capture times from this local time on, "
                        "as bursts and visits (default: no EXIF, the edge then uses file times)")
    p.add_argument("--frames-per-class", type=_positive_int, default=4, help="with --frames-out: camera frames per class")
    p.add_argument("--frame-size", type=_positive_int, default=640, help="with --frames-out: camera frame size in pixels")
    p.add_argument("--seed", type=int, default=0, help="random seed (the same seed writes the same images)")
    p.set_defaults(func=cmd_synth)


def _add_crops(subparsers) -> None:
    p = subparsers.add_parser(
        "crops", help="cut labelled trail-camera frames (or a COCO Camera Traps file's boxes) into bird crops",
        description="Run the edge's detector (edge.detect BirdFinder.locate, the daemon's own code) on every frame "
                    "of a folder-per-species tree (splits such as train/valid/test are kept) and write each bird's "
                    "crop, bit-identical to what the edge classifies, into the same folder under --out as "
                    "<frame stem>_<rank>.png. Frames with no bird are listed in OUT/no_birds.txt, frames with "
                    "several in OUT/several_birds.txt (each crop takes its folder's label: sort mixed-species "
                    "frames by hand), unreadable ones in OUT/unreadable.txt. With --coco FILE --images DIR the "
                    "boxes and labels come from a COCO Camera Traps file instead (no detector): OUT/<category>/ "
                    "crops cut with the edge's crop geometry, and OUT/taxonomy.csv when its categories carry "
                    "scientific names.")
    p.add_argument("--detector", type=Path, metavar="MODEL",
                   help="detector .tflite or a folder holding one (the edge's [detector] path); required without --coco")
    p.add_argument("--detector-labels", type=Path, metavar="PATH", help="the detector's labels file (default: beside it, or embedded)")
    p.add_argument("--data", dest="data_dir", type=Path, metavar="DIR",
                   help="labelled frames: <species>/ or train|valid|test/<species>/; required without --coco")
    p.add_argument("--coco", type=Path, metavar="FILE",
                   help="a COCO Camera Traps JSON (images, annotations with bbox [x, y, w, h] in pixels, categories; "
                        "category 0 / 'empty' is no bird) whose boxes to cut, instead of --detector and --data")
    p.add_argument("--images", dest="images_dir", type=Path, metavar="DIR", help="with --coco: the folder its file_names are relative to")
    p.add_argument("--category-map", dest="category_map", action="append", default=[], metavar="NAME=CLASS",
                   help="with --coco: write category NAME's crops into class folder CLASS (repeatable; two names "
                        "may share a class)")
    p.add_argument("--skip-category", dest="skip_categories", action="append", default=[], metavar="NAME",
                   help="with --coco: leave category NAME out, e.g. human or vehicle (repeatable)")
    p.add_argument("--out", dest="out_dir", type=Path, required=True, metavar="DIR", help="crop folder to create (must be new or empty)")
    p.add_argument("--tiles", default=None, metavar="auto|off|CxR", help="tiles besides the full frame, as [detector] tiles (auto)")
    p.add_argument("--threshold", type=_fraction_or_one, default=None, metavar="X",
                   help="detector score a box needs to be a bird, as [detector] threshold (0.5)")
    p.add_argument("--margin", type=_checked(float, "a number", lambda v: 0.0 <= v <= 1.0, "must be in [0, 1]"),
                   default=0.15, metavar="F", help="margin around each box, a fraction of its longer side, as [detector] crop_margin (0.15)")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--size", type=_positive_int, metavar="N", help="square crop size in pixels (default 224)")
    size.add_argument("--model", type=Path, metavar="BUNDLE_OR_TFLITE",
                      help="crop at this classifier's input size (the size the edge resizes crops to)")
    p.add_argument("--min-score", type=_fraction_or_one, default=None, metavar="X",
                   help="write only birds scoring at least X (the boxes themselves are found with --threshold, "
                        "as on the edge; default: write every bird)")
    p.add_argument("--format", dest="crop_format", choices=("png", "jpeg"), default="png",
                   help="png: lossless, the pixels the edge classifies (default); jpeg: quality 95, smaller")
    p.add_argument("--force", action="store_true", help="write into a non-empty --out (same names replaced)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_crops)


def build_parser() -> argparse.ArgumentParser:
    from trainer import sagemaker_cli, tune_cli

    parser = argparse.ArgumentParser(prog="trainer", description="Train, evaluate and export bird-species classifiers for trailcam.")
    parser.add_argument("--version", action="version", version=f"trainer {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_synth(subparsers)
    _add_data(subparsers)
    _add_crops(subparsers)
    _add_train(subparsers)
    _add_evaluate(subparsers)
    _add_export(subparsers)
    tune_cli.register(subparsers)
    sagemaker_cli.register(subparsers)
    return parser


# ---------------------------------------------------------------------------------------------
# Commands


def _quiet_tensorflow(task: str = "running") -> None:
    """Import TensorFlow without its start-up noise, and say once when there is no GPU."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from trainer.quiet import import_tensorflow_quietly

    import_tensorflow_quietly(task)


CONFIG_FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


def _read_params(path: Path) -> dict[str, Any]:
    """The --params file: a JSON object of TrainConfig fields (or one with such a `params` object)."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UsageError(f"--params: {path} does not exist") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(f"--params: {path} is not readable JSON ({exc})") from None
    if isinstance(data, dict) and isinstance(data.get("params"), dict):
        data = data["params"]  # a tuner result with metadata around its parameters
    if not isinstance(data, dict):
        raise UsageError(f"--params: {path} must hold a JSON object of TrainConfig fields")
    unknown = sorted(set(data) - set(CONFIG_FIELDS))
    if unknown:
        raise UsageError(f"--params: unknown key {unknown[0]!r} in {path} (TrainConfig fields: {', '.join(CONFIG_FIELDS)})")
    return data


def _coerce(key: str, value: Any) -> Any:
    """Check a --params value's type against TrainConfig's default, naming the key on failure."""
    if key in ("data_dir", "out_dir", "checkpoint_dir", "init_from", "taxonomy"):
        return Path(value) if value is not None else None
    if key == "filters":
        if not (isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) and v > 0 for v in value)):
            raise UsageError(f"--params: filters must be two positive integers, got {value!r}")
        return tuple(value)
    if key == "extra":
        if not isinstance(value, dict):
            raise UsageError(f"--params: extra must be an object, got {value!r}")
        return value
    default = CONFIG_FIELDS[key].default
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise UsageError(f"--params: {key} must be true or false, got {value!r}")
    elif isinstance(default, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise UsageError(f"--params: {key} must be an integer, got {value!r}")
    elif isinstance(default, float):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise UsageError(f"--params: {key} must be a number, got {value!r}")
        value = float(value)
    elif isinstance(default, str) and not isinstance(value, str):
        raise UsageError(f"--params: {key} must be a string, got {value!r}")
    return value


def _validate_config(config: TrainConfig) -> None:
    if config.arch not in ARCHITECTURES:
        raise UsageError(f"arch: unknown architecture {config.arch!r} (choose {', '.join(ARCHITECTURES)})")
    if config.optimizer not in OPTIMIZERS:
        raise UsageError(f"optimizer: unknown optimizer {config.optimizer!r} (choose {', '.join(OPTIMIZERS)})")
    for key in ("epochs", "batch_size", "image_size", "dense_units", "head_units", "early_stopping_patience"):
        if getattr(config, key) < 1:
            raise UsageError(f"{key} must be at least 1, got {getattr(config, key)}")
    if not 0.0 <= config.dropout < 1.0:
        raise UsageError(f"dropout must be in [0, 1), got {config.dropout}")
    if config.learning_rate <= 0:
        raise UsageError(f"learning_rate must be positive, got {config.learning_rate}")
    if config.val_fraction + config.test_fraction >= 1.0:
        raise UsageError("val_fraction + test_fraction must leave some images for training")
    if config.image_size < MIN_IMAGE_SIZE[config.arch]:
        raise UsageError(f"image_size {config.image_size} is below {config.arch}'s minimum of {MIN_IMAGE_SIZE[config.arch]}")
    weights = config.weights
    if config.arch != "convnet" and weights not in ("imagenet", "none") and not Path(weights).expanduser().is_file():
        raise UsageError(f"weights: {weights} is neither imagenet, none nor an existing file")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Defaults < --params file < explicit command-line options."""
    values: dict[str, Any] = {}
    if getattr(args, "params_file", None):
        values.update({k: _coerce(k, v) for k, v in _read_params(args.params_file).items()})
    for key in CONFIG_FIELDS:
        if hasattr(args, key):
            value = getattr(args, key)
            values[key] = tuple(value) if key == "filters" else value
    for key in ("data_dir", "out_dir"):
        if values.get(key) is None:
            raise UsageError(f"--{key.removesuffix('_dir')} is required (or give {key} in --params)")
    if values.get("init_from") is not None:
        _take_init_source_shape(values)
    config = TrainConfig(**values)
    _validate_config(config)
    return config


def _take_init_source_shape(values: dict[str, Any]) -> None:
    """--init-from: the architecture and input size are the source model's (a given one must match)."""
    from trainer.init_from import InitSourceError, resolve_init_source

    try:
        source = resolve_init_source(values["init_from"])
    except InitSourceError as error:
        raise UsageError(str(error)) from None
    for key in ("arch", "image_size"):
        if key not in source.config:
            continue
        if key in values and values[key] != source.config[key]:
            raise UsageError(f"{key}: {values[key]!r} given, but --init-from {source.path} is {source.config[key]!r}")
        values[key] = source.config[key]


def cmd_train(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    _quiet_tensorflow("training")
    from trainer.train import train

    result = train(config)
    best = " ".join(f"{k}={v:.6f}" for k, v in sorted(result.best_metrics.items()))
    print(f"run: {result.run_dir}  best epoch {result.best_epoch} of {result.epochs_completed} by {result.monitor}: {best}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    if not args.model.exists():  # answer before the slow TensorFlow import
        raise UsageError(f"{args.model} does not exist (expected a run folder, a bundle folder or a .tflite file)")
    _quiet_tensorflow()
    from trainer.evaluate import evaluate

    report = evaluate(args.model, args.data_dir, args.split, args.out_dir)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{report['model']} ({report['model_kind']}) on {report['split']}: {report['images']} images")
    print(f"top-1 {report['top1']:.4f}  top-5 {report['top5']:.4f}  macro F1 {report['macro_f1']:.4f}")
    print(f"{'class':<32}{'precision':>10}{'recall':>10}{'support':>9}")
    for name, m in report["per_class"].items():
        print(f"{name[:32]:<32}{m['precision']:>10.3f}{m['recall']:>10.3f}{m['support']:>9}")
    if report["most_confused"]:
        print("most confused (true -> predicted: count):")
        for pair in report["most_confused"]:
            print(f"  {pair['true']} -> {pair['predicted']}: {pair['count']}")
    print(f"report: {report['report_path']}  confusion matrix: {report['confusion_png']}")
    for warning in report.get("warnings", []):
        print(f"trainer: warning: {warning}", file=sys.stderr)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    if not (args.run / "best.keras").is_file():  # answer before the slow TensorFlow import
        raise UsageError(f"{args.run} is not a trained run (no best.keras)")
    if args.out_dir.exists() and any(args.out_dir.iterdir()) and not args.overwrite:
        raise UsageError(f"{args.out_dir} exists and is not empty; choose a new --out or pass --overwrite")
    class_names = json.loads((args.run / "class_names.json").read_text())
    if args.no_bird_label is not None and args.no_bird_label not in class_names:
        raise UsageError(f"--no-bird-label: no_bird_label {args.no_bird_label!r} is not one of the run's classes")
    taxonomy = None
    if args.taxonomy is not None:
        from trainer.taxonomy import load_for_classes

        matched = load_for_classes(args.taxonomy, class_names)  # TaxonomyError (a DataError): exit 2
        for line in matched.lines(args.taxonomy):
            print(line, file=sys.stderr)
        taxonomy = matched.manifest()
    _quiet_tensorflow()
    from trainer.export import ExportVerificationError, export_bundle, read_manifest

    try:
        bundle = export_bundle(args.run, args.out_dir, args.quantize, data_dir=args.data_dir,
                               calibration_images=args.calibration_images, eval_images=args.eval_images,
                               min_agreement=args.min_agreement, no_bird_label=args.no_bird_label,
                               overwrite=args.overwrite, include_keras=args.include_keras, taxonomy=taxonomy)
    except ExportVerificationError as exc:
        print(f"trainer: export failed verification: {exc}", file=sys.stderr)
        return 1
    m = read_manifest(bundle)["metrics"]
    print(f"bundle: {bundle}")
    print(f"verified on {m['eval_images']} held-out images: keras top-1 {m['keras_top1']:.4f}  "
          f"tflite top-1 {m['tflite_top1']:.4f}  agreement {m['agreement']:.4f} (required {m['min_agreement']:.4f})")
    named = read_manifest(bundle).get("taxonomy") or {}
    print(f"taxonomy: names for {len(named)} of {len(class_names)} classes"
          + ("" if named else " (train or export with --taxonomy CSV to add scientific names)"))
    return 0


def cmd_data_check(args: argparse.Namespace) -> int:
    from trainer.data_check import check_tree, format_report, has_problems, small_split_warning

    report = check_tree(args.data_dir, expect_size=args.expect_size or None)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    for split in report["small_splits"]:
        print(f"trainer: warning: {small_split_warning(split)}", file=sys.stderr)
    return 1 if args.strict and has_problems(report) else 0


def cmd_crops(args: argparse.Namespace) -> int:
    from trainer.crops import (
        check_out_dir,
        classifier_input_size,
        cut_crops,
        load_finder,
    )

    if args.coco is not None:
        return _coco_crops(args)
    for option, value in (("--images", args.images_dir), ("--category-map", args.category_map),
                          ("--skip-category", args.skip_categories)):
        if value:
            raise UsageError(f"{option} goes with --coco FILE")
    if args.detector is None or args.data_dir is None:
        raise UsageError("--detector MODEL and --data DIR are required (or --coco FILE --images DIR for boxes a "
                         "COCO Camera Traps file gives)")
    data = args.data_dir.expanduser()
    if not data.is_dir():  # answer before loading any model
        raise UsageError(f"--data: {data} does not exist" if not data.exists() else f"--data: {data} is not a folder")
    check_out_dir(args.out_dir.expanduser(), data, args.force)
    threshold = 0.5 if args.threshold is None else args.threshold
    if args.min_score is not None and args.min_score < threshold:
        raise UsageError(f"--min-score {args.min_score} is below --threshold {threshold}: no box under the threshold is found")
    crop_size = classifier_input_size(args.model) if args.model is not None else (args.size or 224,) * 2
    finder = load_finder(args.detector, args.detector_labels, tiles=args.tiles or "auto", threshold=threshold,
                         margin=args.margin)
    report = cut_crops(finder, data, args.out_dir, crop_size, fmt=args.crop_format, min_score=args.min_score,
                       force=args.force)
    print(json.dumps(report.as_dict(), indent=2, ensure_ascii=False) if args.json else "\n".join(report.lines()))
    return 0


def _coco_crops(args: argparse.Namespace) -> int:
    """`trainer crops --coco FILE --images DIR`: the file's boxes, no detector (trainer/coco.py)."""
    from trainer.coco import cut_coco_crops, parse_category_map
    from trainer.crops import classifier_input_size

    given = [option for option, value in (("--detector", args.detector), ("--detector-labels", args.detector_labels),
                                          ("--data", args.data_dir), ("--tiles", args.tiles),
                                          ("--threshold", args.threshold), ("--min-score", args.min_score)) if value is not None]
    if given:
        raise UsageError(f"{given[0]} does not go with --coco: the boxes are the file's (no detector runs)")
    if args.images_dir is None:
        raise UsageError("--coco needs --images DIR, the folder its images' file_names are relative to")
    crop_size = classifier_input_size(args.model) if args.model is not None else (args.size or 224,) * 2
    report = cut_coco_crops(args.coco, args.images_dir, args.out_dir, crop_size, margin=args.margin, fmt=args.crop_format,
                            category_map=parse_category_map(args.category_map), skip_categories=args.skip_categories,
                            force=args.force)
    print(json.dumps(report.as_dict(), indent=2, ensure_ascii=False) if args.json else "\n".join(report.lines()))
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from trainer.synth import MAX_CLASSES, SynthSpec, generate_dataset, generate_frames

    if not 2 <= args.classes <= MAX_CLASSES:
        raise UsageError(f"--classes must be between 2 and {MAX_CLASSES}, got {args.classes}")
    spec = SynthSpec(num_classes=args.classes, train_per_class=args.train_per_class, valid_per_class=args.valid_per_class,
                     test_per_class=args.test_per_class, image_size=args.image_size, seed=args.seed)
    out = generate_dataset(args.out, spec)
    total = args.classes * (args.train_per_class + args.valid_per_class + args.test_per_class)
    print(f"data set: {out} ({args.classes} classes, {total} images)")
    if args.frames_out:
        frames = generate_frames(args.frames_out, args.frames_per_class, args.classes, args.frame_size,
                                 seed=args.seed + 1000, start_time=args.frames_start)
        print(f"camera frames: {args.frames_out} ({len(frames)} frames)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    from trainer.data import DataError
    from trainer.init_from import InitSourceError
    from trainer.train import RunFolderError

    try:
        return int(args.func(args) or 0)
    except (UsageError, DataError, InitSourceError, RunFolderError, FileNotFoundError, FileExistsError) as exc:
        # Bad input, found after parsing: one line naming the problem, exit 2 like argparse.
        print(f"trainer: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("trainer: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
