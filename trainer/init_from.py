"""`trainer train --init-from`: start a run from an existing model instead of from scratch.

Why: the feedback loop (docs/training.md, "The feedback loop") retrains the field's model on
the crops people reviewed. Starting from the deployed model keeps what it already knows (the
classes the new data lacks keep their weights) and needs only a few epochs.

A .tflite cannot be trained, so the source is the Keras model behind it:

- a run folder (best.keras + class_names.json + config.json), or
- a bundle folder as `trainer export` writes it: it carries `model.keras` (the run's
  best.keras, checked against the manifest's `keras_sha256`); a bundle exported with
  `--no-keras-model` (or by an older trainer) is accepted when the run folder its manifest names
  (`run_dir`) is still reachable and has the same classes.

The new model's classes are the source's, in the source's order, followed by the classes the
data adds (sorted): the output layer is widened, the old rows of its weights copied, the new
ones initialised fresh.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.classify.model import sha256_file

log = logging.getLogger(__name__)

OUTPUT_LAYER = "predictions"  # the name trainer.models gives every model's softmax layer
INIT_FILE = "init_from.json"  # written into the new run folder; export copies it into the manifest


class InitSourceError(ValueError):
    """--init-from names something that holds no trainable Keras model of a trailcam run."""


@dataclass(frozen=True)
class InitSource:
    """The trainable model a run starts from, and what it needs to know about it."""

    path: Path  # what --init-from named
    kind: str  # "run" | "bundle"
    keras_path: Path
    class_names: list[str]
    config: dict[str, Any]  # the source run's config.json (arch, image_size, ...), {} when unknown
    model_id: str | None  # the bundle's model id (None for a run folder)

    def describe(self) -> dict[str, Any]:
        """What init_from.json and the exported manifest record about the parent model."""
        return {"path": str(self.path), "kind": self.kind, "model_id": self.model_id,
                "keras_sha256": sha256_file(self.keras_path), "class_names": self.class_names}


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise InitSourceError(f"--init-from: cannot read {path}: {error}") from None


def _from_run(run_dir: Path, origin: Path, kind: str = "run", model_id: str | None = None) -> InitSource:
    config_path = run_dir / "config.json"
    return InitSource(path=origin, kind=kind, keras_path=run_dir / "best.keras",
                      class_names=list(_read_json(run_dir / "class_names.json")),
                      config=_read_json(config_path) if config_path.is_file() else {}, model_id=model_id)


def _from_bundle(bundle: Path) -> InitSource:
    manifest = _read_json(bundle / "manifest.json")
    labels = [line for line in (bundle / manifest.get("labels_file", "labels.txt")).read_text(encoding="utf-8").splitlines()
              if line.strip()]
    model_id = manifest.get("model_id")
    keras_name = manifest.get("keras_model")
    if keras_name and (bundle / keras_name).is_file():
        keras_path = bundle / keras_name
        expected = manifest.get("keras_sha256")
        if expected and sha256_file(keras_path) != expected:
            raise InitSourceError(f"--init-from: {keras_path} does not match the manifest's keras_sha256: "
                                  "the bundle is damaged or mixed up")
        return InitSource(path=bundle, kind="bundle", keras_path=keras_path, class_names=labels,
                          config=dict(manifest.get("run_config") or {}), model_id=model_id)
    run_dir = Path(manifest["run_dir"]) if manifest.get("run_dir") else None
    if run_dir is not None and (run_dir / "best.keras").is_file():
        source = _from_run(run_dir, bundle, kind="bundle", model_id=model_id)
        if source.class_names != labels:
            raise InitSourceError(f"--init-from: the run {run_dir} the bundle names has other classes than its "
                                  "labels.txt: it was retrained since; pass the run folder itself")
        return source
    where = f" and its run {run_dir} is gone" if run_dir else ""
    raise InitSourceError(f"--init-from: the bundle {bundle} carries no model.keras{where}; a .tflite cannot be "
                          "trained: pass the run folder, or re-export the run without --no-keras-model")


def resolve_init_source(path: Path) -> InitSource:
    """The Keras model behind a run folder or a bundle folder (see the module docstring)."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise InitSourceError(f"--init-from: {path} is not a run folder or a bundle folder")
    if (path / "best.keras").is_file() and (path / "class_names.json").is_file():
        return _from_run(path, path)
    if (path / "manifest.json").is_file():
        return _from_bundle(path)
    raise InitSourceError(f"--init-from: {path} holds neither a trained run (best.keras + class_names.json) "
                          "nor a trailcam bundle (manifest.json)")


def merged_classes(old: list[str], data_classes: list[str]) -> list[str]:
    """The old classes in their order, then the data's new ones (sorted): the widened model's outputs."""
    return list(old) + sorted(name for name in data_classes if name not in old)


def load_widened(source: InitSource, class_names: list[str]):
    """The source's Keras model with an output layer for `class_names` (a superset of its classes, old first).

    Everything below the output layer is the source's, weights included. The output layer's
    kernel columns and biases of the old classes are copied; new classes get a fresh
    (Glorot) column and a zero bias. When nothing is new the model is returned as loaded.
    """
    import keras
    import numpy as np

    from trainer.models import load_keras_model

    model = load_keras_model(source.keras_path)
    try:
        old_layer = model.get_layer(OUTPUT_LAYER)
    except ValueError:
        raise InitSourceError(f"--init-from: {source.keras_path} has no {OUTPUT_LAYER!r} layer: not a trailcam model") from None
    if class_names[: len(source.class_names)] != source.class_names:
        raise InitSourceError("the new classes must start with the source's classes in their order")
    kernel, bias = old_layer.get_weights()
    if kernel.shape[1] != len(source.class_names):
        raise InitSourceError(f"--init-from: {source.keras_path} has {kernel.shape[1]} outputs but "
                              f"{len(source.class_names)} class names")
    if len(class_names) == len(source.class_names):
        return model
    new = keras.layers.Dense(len(class_names), activation="softmax", dtype="float32", name=OUTPUT_LAYER)
    outputs = new(old_layer.input)
    widened = keras.Model(model.inputs, outputs, name=model.name)
    fresh_kernel, fresh_bias = new.get_weights()
    fresh_kernel[:, : kernel.shape[1]] = kernel
    fresh_bias[: bias.shape[0]] = bias
    # A new class starts level with the old ones on average, not far below or above them.
    fresh_bias[bias.shape[0]:] = float(np.mean(bias))
    new.set_weights([fresh_kernel, fresh_bias])
    log.info("widened %s from %d to %d classes (new: %s)", OUTPUT_LAYER, len(source.class_names), len(class_names),
             ", ".join(class_names[len(source.class_names):]))
    return widened


def freeze_backbone(model) -> int:
    """Freeze a transfer model's backbone (its nested keras.Model) for the head phase; returns the layers frozen.

    As for a fresh transfer run, the head trains first on a frozen backbone and the
    fine-tune knobs (--fine-tune-layers/--fine-tune-epochs) unfreeze its top afterwards. The
    convnet has no backbone: all of it trains (choose a lower --learning-rate).
    """
    import keras

    frozen = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            layer.trainable = False
            frozen += len(layer.layers)
    return frozen


def write_init_file(run_dir: Path, source: InitSource, class_names: list[str]) -> None:
    """init_from.json: the parent model, and which classes the run added to it."""
    record = {**source.describe(), "added_classes": class_names[len(source.class_names):]}
    (Path(run_dir) / INIT_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def read_init_file(run_dir: Path) -> dict[str, Any] | None:
    path = Path(run_dir) / INIT_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
