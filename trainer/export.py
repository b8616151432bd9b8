"""`export_bundle`: a trained run -> a verified TFLite bundle the edge loads as it is.

The bundle (docs/ARCHITECTURE.md) is model.tflite + labels.txt + manifest.json. Export checks
its own result before anything is published: it runs the .tflite through the edge's own
runner (edge.classify.model.TFLiteModel: same runtime, same input and output handling as the daemon) on
held-out images and refuses (ExportVerificationError, non-zero exit) when its top-1 agrees with
the Keras model less often than the threshold. A refused bundle is left in <out>.rejected for
inspection, never in <out>, so nothing half-verified reaches a field device.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import json
import logging
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.classify.model import sha256_file
from trainer import __version__

log = logging.getLogger(__name__)

QUANTIZATIONS = ("none", "float16", "dynamic", "int8")
# none/float16 keep float arithmetic; dynamic and int8 quantise weights (and activations) to 8 bits.
DEFAULT_MIN_AGREEMENT = {"none": 0.995, "float16": 0.995, "dynamic": 0.98, "int8": 0.98}
BUNDLE_FORMAT = "trailcam-bundle"
BUNDLE_FORMAT_VERSION = 1
KERAS_MODEL = "model.keras"  # the trainable model in a bundle (optional; for --init-from)


class ExportVerificationError(RuntimeError):
    """The .tflite disagrees with the Keras model more often than allowed."""

    def __init__(self, message: str, metrics: dict) -> None:
        super().__init__(message)
        self.metrics = metrics


@dataclass
class RunInfo:
    run_dir: Path
    config: dict
    class_names: list[str]
    data: dict
    taxonomy: dict = field(default_factory=dict)  # RUN/taxonomy.json (trainer train --taxonomy), else {}

    @classmethod
    def load(cls, run_dir: Path) -> RunInfo:
        run_dir = Path(run_dir)
        if not (run_dir / "best.keras").is_file():
            raise FileNotFoundError(f"{run_dir} is not a trained run (no best.keras)")
        config = json.loads((run_dir / "config.json").read_text())
        class_names = json.loads((run_dir / "class_names.json").read_text())
        data_path = run_dir / "data.json"
        data = json.loads(data_path.read_text()) if data_path.is_file() else {}
        from trainer.taxonomy import read_run_taxonomy

        return cls(run_dir, config, class_names, data, read_run_taxonomy(run_dir))


def _float32_config(node):
    """A model config with every mixed-precision dtype policy replaced by float32."""
    if isinstance(node, dict):
        if node.get("class_name") == "DTypePolicy" and str(node.get("config", {}).get("name", "")).startswith("mixed"):
            return {**node, "config": {**node["config"], "name": "float32"}}
        return {key: _float32_config(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_float32_config(value) for value in node]
    if isinstance(node, str) and node.startswith("mixed_"):
        return "float32"
    return node


def as_float32(model):
    """The same model computing in float32: TFLite's builtin kernels do not take a mixed-precision graph.

    A GPU run trains under mixed_float16 (variables stay float32), so rebuilding the graph in
    float32 and copying the weights loses nothing.
    """
    if not any(layer.dtype_policy.name.startswith("mixed") for layer in model._flatten_layers(include_self=False)):
        return model
    rebuilt = model.__class__.from_config(_float32_config(model.get_config()))
    rebuilt.set_weights(model.get_weights())
    return rebuilt


def convert(model, quantize: str, calibration: np.ndarray | None = None) -> bytes:
    """Keras model -> .tflite bytes. int8 = full integer with uint8 input and output."""
    import tensorflow as tf

    if quantize not in QUANTIZATIONS:
        raise ValueError(f"unknown quantization {quantize!r}; choose one of {', '.join(QUANTIZATIONS)}")
    converter = tf.lite.TFLiteConverter.from_keras_model(as_float32(model))
    if quantize == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif quantize == "int8":
        if calibration is None or len(calibration) == 0:
            raise ValueError("int8 export needs calibration images")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = _representative(calibration)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.uint8
    # The converter exports a SavedModel first and Keras prints its signature to stdout; keep
    # stdout for the trainer's own results (CLI output, epoch lines) and log it instead.
    chatter = io.StringIO()
    with contextlib.redirect_stdout(chatter):
        result = converter.convert()
    log.debug("converter: %s", chatter.getvalue().strip())
    return result


def _representative(images: np.ndarray) -> Callable:
    """Calibration samples, led by one black/white image so the input range is exactly 0..255.

    With the full range observed, the uint8 input gets scale 1.0 and zero point 0: the edge
    feeds raw pixels unchanged, as the manifest promises.
    """
    size = images.shape[1:3]

    def generate():
        full_range = np.zeros((1, *size, 3), np.float32)
        full_range[:, : size[0] // 2] = 255.0
        yield [full_range]
        for image in images:
            yield [image[np.newaxis].astype(np.float32)]

    return generate


def _agreement_metrics(keras_probs: np.ndarray, tflite_probs: np.ndarray, labels: np.ndarray) -> dict:
    keras_top1 = keras_probs.argmax(axis=1)
    tflite_top1 = tflite_probs.argmax(axis=1)
    n = len(labels)
    return {
        "keras_top1": round(float((keras_top1 == labels).mean()), 6) if n else None,
        "tflite_top1": round(float((tflite_top1 == labels).mean()), 6) if n else None,
        "agreement": round(float((keras_top1 == tflite_top1).mean()), 6) if n else None,
        "eval_images": int(n),
    }


def _tensor_info(detail: dict, extra: dict) -> dict:
    scale, zero_point = detail["quantization"]
    return {
        "shape": [int(v) for v in detail["shape"]],
        "dtype": np.dtype(detail["dtype"]).name,
        "scale": float(scale) if scale else 1.0,
        "zero_point": int(zero_point),
        **extra,
    }


def _select(items, limit: int, seed: int):
    """Up to `limit` items, spread over classes (seeded), so small exports still see every class."""
    import random

    chosen = list(items)
    random.Random(seed).shuffle(chosen)
    return chosen[:limit] if limit > 0 else chosen


def export_bundle(
    run_dir: Path,
    out_dir: Path,
    quantize: str = "int8",
    data_dir: Path | None = None,
    calibration_images: int = 200,
    eval_images: int = 500,
    min_agreement: float | None = None,
    no_bird_label: str | None = None,
    overwrite: bool = False,
    include_keras: bool = True,
    taxonomy: Mapping[str, Mapping[str, str]] | None = None,
) -> Path:
    """Convert run_dir/best.keras, verify it on held-out images, and write the bundle to out_dir.

    Calibration (int8) uses up to `calibration_images` training images; verification uses up
    to `eval_images` images of the valid split. Raises ExportVerificationError below the
    agreement threshold (DEFAULT_MIN_AGREEMENT unless min_agreement is given).

    The bundle is built in a staging folder beside out_dir and only renamed into place once it
    passed, so out_dir never holds a half-written or unverified bundle.

    With include_keras the bundle also carries the run's best.keras as model.keras (the edge
    ignores it): a .tflite cannot be trained, and `trainer train --init-from BUNDLE` needs the
    Keras model behind it even where the run folder is gone.

    The manifest's `taxonomy` (class → scientific and common name, read by the edge) is the
    run's taxonomy.json with `taxonomy` (`trainer export --taxonomy FILE`, already matched to
    the run's classes) over it: a class it names gets its names, the others keep the run's.
    """
    from edge.classify.model import TFLiteModel

    out_dir = Path(out_dir)
    run, threshold = _check_request(run_dir, out_dir, quantize, min_agreement, no_bird_label, overwrite)
    x_eval, y_eval, calibration = _verification_images(run, data_dir, quantize, eval_images, calibration_images)
    tflite_bytes, keras_probs = _convert_with_reference(run, quantize, calibration, x_eval)

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; a bundle is meant to be copied and read
    try:
        (staging / "model.tflite").write_bytes(tflite_bytes)
        # The edge's runner, so what is verified here is what the daemon will compute.
        runner = TFLiteModel(staging / "model.tflite", threads=None)
        metrics = _agreement_metrics(keras_probs, runner.predict(x_eval), y_eval)
        manifest = _manifest(run, quantize, tflite_bytes, runner, metrics, threshold, no_bird_label)
        names = _taxonomy(run, taxonomy)
        if names:
            manifest["taxonomy"] = names
        if include_keras:
            shutil.copyfile(run.run_dir / "best.keras", staging / KERAS_MODEL)
            manifest["keras_model"] = KERAS_MODEL
            manifest["keras_sha256"] = sha256_file(staging / KERAS_MODEL)
        (staging / "labels.txt").write_text("".join(f"{name}\n" for name in run.class_names), encoding="utf-8")
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        _accept_or_reject(staging, out_dir, quantize, metrics, threshold)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    log.info("bundle %s: %s", out_dir, manifest["metrics"])
    return out_dir


def _check_request(run_dir: Path, out_dir: Path, quantize: str, min_agreement: float | None,
                   no_bird_label: str | None, overwrite: bool) -> tuple[RunInfo, float]:
    """Refuse a bad request before any slow step (loading images, converting): returns the run
    and the agreement threshold the export must reach."""
    from trainer.data import DataError

    if quantize not in QUANTIZATIONS:
        raise ValueError(f"unknown quantization {quantize!r}; choose one of {', '.join(QUANTIZATIONS)}")
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise FileExistsError(f"{out_dir} exists and is not empty; choose a new --out or pass --overwrite")
    run = RunInfo.load(run_dir)
    threshold = DEFAULT_MIN_AGREEMENT[quantize] if min_agreement is None else float(min_agreement)
    if no_bird_label is not None and no_bird_label not in run.class_names:
        raise DataError(f"no_bird_label {no_bird_label!r} is not one of the run's classes")
    return run, threshold


def _verification_images(run: RunInfo, data_dir: Path | None, quantize: str, eval_images: int,
                         calibration_images: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(held-out images, their labels, calibration images or None): the data split exactly as
    training split it (same seed and fractions), so the images the export is verified on were
    never trained on, and int8 calibration sees training images only."""
    from trainer.data import discover
    from trainer.pipeline import load_images

    seed = int(run.config.get("seed", 42))
    image_size = int(run.config["image_size"])
    data = discover(
        Path(data_dir) if data_dir else Path(run.config["data_dir"]),
        float(run.config.get("val_fraction", 0.15)),
        float(run.config.get("test_fraction", 0.10)),
        seed,
    )
    if data.class_names != run.class_names:
        data = _as_run_classes(run.run_dir, data, run.class_names)
    x_eval, y_eval = load_images(_select(data.split("valid"), eval_images, seed), image_size)
    calibration = None
    if quantize == "int8":
        calibration, _ = load_images(_select(data.split("train"), calibration_images, seed + 1), image_size)
    return x_eval, y_eval, calibration


def _as_run_classes(run_dir: Path, data, class_names: list[str]):
    """The data labelled in the run's class order, for a run fine-tuned with --init-from (its
    parent's classes come first; the data may lack some of them); any other difference is an error."""
    from trainer.data import DataError, order_classes
    from trainer.init_from import read_init_file

    if read_init_file(run_dir) is None or not set(data.class_names) <= set(class_names):
        raise DataError(f"the data's classes {data.class_names} differ from the run's {class_names}")
    return order_classes(data, class_names)


def _convert_with_reference(run: RunInfo, quantize: str, calibration: np.ndarray | None,
                            x_eval: np.ndarray) -> tuple[bytes, np.ndarray]:
    """(the TFLite flatbuffer, the Keras model's probabilities on the held-out images): the
    reference the converted model must agree with."""
    from trainer.models import load_keras_model

    model = load_keras_model(run.run_dir / "best.keras")
    log.info("converting %s with quantization %s", run.run_dir / "best.keras", quantize)
    tflite_bytes = convert(model, quantize, calibration)
    keras_probs = (model.predict(x_eval.astype(np.float32), batch_size=32, verbose=0) if len(x_eval)
                   else np.zeros((0, len(run.class_names))))
    return tflite_bytes, keras_probs


def _manifest(run: RunInfo, quantize: str, tflite_bytes: bytes, runner, metrics: dict, threshold: float,
              no_bird_label: str | None) -> dict:
    """manifest.json: what the edge needs to run the model without guessing (tensor details,
    labels, no-bird label) and what says where it came from (model id from the flatbuffer's
    hash, data fingerprint, verification metrics)."""
    sha = hashlib.sha256(tflite_bytes).hexdigest()
    arch = run.config.get("arch", "convnet")
    return {
        "format": BUNDLE_FORMAT,
        "format_version": BUNDLE_FORMAT_VERSION,
        "model_id": f"{arch}-{quantize}-{sha[:8]}",
        "architecture": arch,
        "quantization": quantize,
        "created_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "trainer_version": __version__,
        "num_classes": len(run.class_names),
        "labels_file": "labels.txt",
        "no_bird_label": no_bird_label,
        "input": _tensor_info(runner.input_details, {"color": "RGB", "value_range": [0, 255], "resize": "bilinear"}),
        "output": _tensor_info(runner.output_details, {"activation": "softmax"}),
        "data_fingerprint": run.data.get("train_fingerprint"),
        # Where it came from, so that `trainer train --init-from BUNDLE` can continue from it.
        "run_dir": str(run.run_dir.resolve()),
        "run_config": {key: run.config[key] for key in ("arch", "image_size", "seed", "val_fraction", "test_fraction")
                       if key in run.config},
        "init_from": _parent(run.run_dir),
        "metrics": {**metrics, "min_agreement": threshold},
        "tflite_sha256": sha,
    }


def _taxonomy(run: RunInfo, extra: Mapping[str, Mapping[str, str]] | None) -> dict[str, dict[str, str]]:
    """The bundle's class → names: the run's, with `extra`'s entries over them, in label order;
    names of classes the run does not have are dropped (the edge would ignore them anyway)."""
    names = {label: dict(entry) for label, entry in run.taxonomy.items()}
    for label, entry in (extra or {}).items():
        names[label] = {**names.get(label, {}), **entry}
    return {label: names[label] for label in run.class_names if names.get(label)}


def _parent(run_dir: Path) -> dict | None:
    """The model a --init-from run started from (its id, path and the classes it added), else None."""
    from trainer.init_from import read_init_file

    record = read_init_file(run_dir)
    if record is None:
        return None
    return {key: record.get(key) for key in ("model_id", "path", "kind", "added_classes")}


def _accept_or_reject(staging: Path, out_dir: Path, quantize: str, metrics: dict, threshold: float) -> None:
    """Move the staged bundle to out_dir when it agrees well enough with the Keras model; else
    keep it as out_dir.rejected (to inspect) and raise ExportVerificationError."""
    if metrics["eval_images"] == 0:
        raise ExportVerificationError("no held-out images to verify the export on", metrics)
    if metrics["agreement"] < threshold:
        rejected = out_dir.with_name(out_dir.name + ".rejected")
        shutil.rmtree(rejected, ignore_errors=True)
        staging.replace(rejected)
        raise ExportVerificationError(
            f"{quantize} export agrees with the Keras model on {metrics['agreement']:.2%} of "
            f"{metrics['eval_images']} held-out images, below the required {threshold:.2%} "
            f"(Keras top-1 {metrics['keras_top1']:.2%}, TFLite top-1 {metrics['tflite_top1']:.2%}); "
            f"the rejected bundle is in {rejected}",
            metrics,
        )
    if out_dir.exists():
        shutil.rmtree(out_dir)
    staging.replace(out_dir)


def read_manifest(bundle_dir: Path) -> dict:
    return json.loads((Path(bundle_dir) / "manifest.json").read_text())
