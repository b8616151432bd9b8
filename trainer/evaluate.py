"""`evaluate(run_or_tflite, data_dir, split)`: how good is a model, Keras or exported?

The same report for a run folder (best.keras) and for a .tflite or bundle folder (through the
edge's own runner, edge.classify.model.TFLiteModel, so the numbers are the field's), so the cost of quantisation is one command away:
top-1, top-5, macro F1, per-class precision/recall, the most-confused pairs, a confusion
matrix PNG and a JSON report.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


@dataclass
class ModelSource:
    """What to evaluate: a Keras run or a TFLite model, with its labels and input size."""

    kind: str  # "keras" | "tflite"
    path: Path  # best.keras or model.tflite
    class_names: list[str]
    image_size: int
    run_config: dict | None  # the run's config.json (data_dir and split settings) when known


def resolve_model(target: Path) -> ModelSource:
    """Accept a run folder, a bundle folder, a .keras file inside a run, or a bare .tflite."""
    target = Path(target)
    if not target.exists():
        raise FileNotFoundError(f"{target} does not exist (expected a run folder, a bundle folder or a .tflite file)")
    if target.is_dir() and (target / "best.keras").is_file():
        config = json.loads((target / "config.json").read_text())
        names = json.loads((target / "class_names.json").read_text())
        return ModelSource("keras", target / "best.keras", names, int(config["image_size"]), config)
    tflite = target / "model.tflite" if target.is_dir() else target
    if tflite.suffix == ".tflite" and tflite.is_file():
        from edge.classify.model import TFLiteModel

        labels_file = tflite.parent / "labels.txt"
        if not labels_file.is_file():
            raise FileNotFoundError(f"{labels_file} is missing: a .tflite needs its labels.txt beside it")
        names = labels_file.read_text(encoding="utf-8").splitlines()
        runner = TFLiteModel(tflite, threads=None)
        width, height = runner.input_size
        if height != width:
            raise ValueError(f"{tflite} has a non-square input {height}x{width}")
        if runner.num_classes != len(names):
            raise ValueError(f"{tflite} has {runner.num_classes} outputs but {labels_file} lists {len(names)} labels")
        return ModelSource("tflite", tflite, names, height, None)
    raise FileNotFoundError(f"{target} is neither a run folder (best.keras) nor a bundle/.tflite")


def predict(source: ModelSource, images: np.ndarray) -> np.ndarray:
    """Probabilities [n, classes] for uint8 images [n, s, s, 3]."""
    if source.kind == "keras":
        from trainer.models import load_keras_model

        model = load_keras_model(source.path)
        return np.asarray(model.predict(images.astype(np.float32), batch_size=32, verbose=0))
    return tflite_probabilities(source.path, images)


def tflite_probabilities(tflite: Path, images: np.ndarray) -> np.ndarray:
    """Probabilities [n, classes] of a .tflite for uint8 RGB images [n, s, s, 3], computed by the
    edge's runner (edge.classify.model.TFLiteModel): one invoke per image, the daemon's input handling
    (a uint8 model gets raw pixels) and output handling (dequantised; softmax for logits)."""
    from edge.classify.model import TFLiteModel

    manifest = Path(tflite).parent / "manifest.json"
    activation = None
    if manifest.is_file():
        activation = json.loads(manifest.read_text()).get("output", {}).get("activation")
    return TFLiteModel(tflite, threads=None, activation=activation).predict(images)


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    return matrix


def metrics_from(probabilities: np.ndarray, labels: np.ndarray, class_names: list[str], top_pairs: int = 10) -> dict:
    """Top-1, top-5, macro F1, per-class P/R/F1 and the most-confused (true, predicted) pairs."""
    n, k = probabilities.shape
    predicted = probabilities.argmax(axis=1)
    top5 = np.argsort(-probabilities, axis=1)[:, : min(5, k)]
    matrix = confusion_matrix(labels, predicted, k)
    tp = np.diag(matrix).astype(np.float64)
    predicted_count = matrix.sum(axis=0).astype(np.float64)
    support = matrix.sum(axis=1).astype(np.float64)
    precision = np.divide(tp, predicted_count, out=np.zeros(k), where=predicted_count > 0)
    recall = np.divide(tp, support, out=np.zeros(k), where=support > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(k), where=(precision + recall) > 0)
    present = support > 0  # macro F1 over classes present in this split
    off_diagonal = [(int(matrix[i, j]), i, j) for i in range(k) for j in range(k) if i != j and matrix[i, j] > 0]
    off_diagonal.sort(key=lambda t: (-t[0], t[1], t[2]))
    return {
        "images": int(n),
        "top1": float((predicted == labels).mean()) if n else 0.0,
        "top5": float((top5 == labels[:, None]).any(axis=1).mean()) if n else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "per_class": {
            name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]), "support": int(support[i])}
            for i, name in enumerate(class_names)
        },
        "most_confused": [
            {"true": class_names[i], "predicted": class_names[j], "count": count} for count, i, j in off_diagonal[:top_pairs]
        ],
        "confusion_matrix": matrix.tolist(),
        "warnings": one_class_warnings(predicted, labels, class_names),
    }


def one_class_warnings(predicted: np.ndarray, labels: np.ndarray, class_names: list[str]) -> list[str]:
    """A model that gives every image the same class has learnt nothing to tell them apart (a
    collapsed run, a wrong input scale): its top-1 is just that class's share, which can look
    respectable on a lopsided split. Said in words, since the numbers alone hide it."""
    if len(predicted) < 2 or len(np.unique(labels)) < 2:
        return []
    chosen = np.unique(predicted)
    if len(chosen) != 1:
        return []
    name = class_names[int(chosen[0])]
    return [f"the model predicts {name!r} for all {len(predicted)} images of {len(np.unique(labels))} classes: it "
            "tells nothing apart (top-1 is only that class's share); check the run's data, input scale and training"]


def plot_confusion(matrix: np.ndarray, class_names: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = len(class_names)
    size = max(5.0, min(30.0, 0.35 * k + 3))
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(k), class_names, rotation=90, fontsize=max(4, 10 - k // 20))
    ax.set_yticks(range(k), class_names, fontsize=max(4, 10 - k // 20))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if k <= 30:
        for i in range(k):
            for j in range(k):
                if matrix[i, j]:
                    ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=8,
                            color="white" if matrix[i, j] > matrix.max() / 2 else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def default_out_dir(target: Path, split: str) -> Path:
    target = Path(target)
    if target.is_dir() and (target / "best.keras").is_file():
        return target / f"eval-{split}"
    base = target if target.is_dir() else target.parent
    return base.parent / f"{base.name}-eval-{split}"


def evaluate(run_or_tflite: Path, data_dir: Path | None = None, split: str = "test", out_dir: Path | None = None) -> dict:
    """Evaluate a run or an exported model on one split; write report.json + confusion.png to out_dir.

    data_dir defaults to the run's own data folder (a bare .tflite needs it given). The split
    is reproduced with the run's seed and fractions when the data is a single tree.
    """
    from trainer.data import DataError, discover, order_classes

    source = resolve_model(run_or_tflite)
    config = source.run_config or {}
    if data_dir is None:
        if not config.get("data_dir"):
            raise DataError(f"evaluating {source.path} needs --data (a bundle does not record its data folder)")
        data_dir = Path(config["data_dir"])
    data = discover(Path(data_dir), float(config.get("val_fraction", 0.15)), float(config.get("test_fraction", 0.10)),
                    int(config.get("seed", 42)))
    if data.class_names != source.class_names and set(data.class_names) <= set(source.class_names):
        # A fine-tuned (--init-from) model keeps its parent's order, new classes after: match by name.
        data = order_classes(data, source.class_names)
    if data.class_names != source.class_names:
        raise DataError(f"the data's classes ({len(data.class_names)}) differ from the model's ({len(source.class_names)}): "
                        f"{sorted(set(data.class_names) ^ set(source.class_names))[:5]}")
    items = data.split(split)
    from trainer.pipeline import load_images  # TensorFlow: only once the inputs are known to be good

    images, labels = load_images(items, source.image_size)
    probabilities = predict(source, images)
    report = {
        "model": str(source.path),
        "model_kind": source.kind,
        "data_dir": str(data.root),
        "split": split,
        **metrics_from(probabilities, labels, source.class_names),
    }
    out_dir = Path(out_dir) if out_dir else default_out_dir(Path(run_or_tflite), split)
    out_dir.mkdir(parents=True, exist_ok=True)
    plot_confusion(np.asarray(report["confusion_matrix"]), source.class_names, out_dir / "confusion.png")
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    report["report_path"] = str(out_dir / "report.json")
    report["confusion_png"] = str(out_dir / "confusion.png")
    log.info("%s on %s/%s: top-1 %.4f top-5 %.4f macro F1 %.4f", source.path, data.root, split,
             report["top1"], report["top5"], report["macro_f1"])
    return report
