"""The metric-definition regexes read the trainer's real epoch lines and nothing else."""

from __future__ import annotations

import json
import re
from pathlib import Path

from trainer.sagemaker.metrics import metric_definitions, objective_metric_name
from trainer.train import EPOCH_LINE_KEYS, format_epoch_line


def extract(line: str) -> dict[str, float]:
    """What SageMaker would record from one log line: first match of each regex."""
    out = {}
    for definition in metric_definitions():
        match = re.search(definition["Regex"], line)
        if match:
            out[definition["Name"]] = float(match.group(1))
    return out


def test_one_definition_per_epoch_line_key_and_the_objective_is_among_them():
    names = [d["Name"] for d in metric_definitions()]
    assert len(names) == len(EPOCH_LINE_KEYS) - 1  # every key but `epoch`
    assert objective_metric_name() == "validation_accuracy" and "validation_accuracy" in names


def test_regexes_extract_the_right_numbers_from_a_real_training_log(trained_run: Path):
    """train.log holds the lines the trainer printed (with a logging prefix, as CloudWatch would)."""
    lines = [line for line in (trained_run / "train.log").read_text().splitlines() if " epoch=" in line]
    history = json.loads((trained_run / "history.json").read_text())
    assert len(lines) == len(history["loss"]) >= 2
    for index, line in enumerate(lines):
        got = extract(line)
        assert got == {
            "training_loss": round(history["loss"][index], 6),
            "training_accuracy": round(history["accuracy"][index], 6),
            "validation_loss": round(history["val_loss"][index], 6),
            "validation_accuracy": round(history["val_accuracy"][index], 6),
        }, line


def test_loss_is_not_read_from_val_loss_and_keras_progress_bars_are_ignored():
    line = format_epoch_line(7, {"val_loss": 0.25, "val_accuracy": 0.9, "loss": 1.5, "accuracy": 0.5})
    assert line == "epoch=7 loss=1.500000 accuracy=0.500000 val_loss=0.250000 val_accuracy=0.900000"
    assert extract(line) == {"training_loss": 1.5, "training_accuracy": 0.5, "validation_loss": 0.25,
                             "validation_accuracy": 0.9}
    only_val = format_epoch_line(2, {"val_loss": 0.75, "val_accuracy": 0.8})
    assert extract(only_val) == {"validation_loss": 0.75, "validation_accuracy": 0.8}
    progress = "50/50 [=====] - 28s 570ms/step - loss: 1.7857 - accuracy: 0.3952 - val_loss: 2.05 - val_accuracy: 0.4"
    assert extract(progress) == {}  # the proposal's regexes read these; ours must not
    prefixed = "[1,mpirank:0,algo-1]<stdout>:2026-11-29 01:02:03 INFO trainer.train: " + line
    assert extract(prefixed)["validation_accuracy"] == 0.9


def test_regexes_follow_a_change_of_the_epoch_line_keys():
    definitions = metric_definitions(("epoch", "loss", "top5", "val_top5"))
    line = "epoch=1 loss=0.500000 top5=0.990000 val_top5=0.950000"
    found = {d["Name"]: float(re.search(d["Regex"], line).group(1)) for d in definitions}
    assert found == {"training_loss": 0.5, "training_top5": 0.99, "validation_top5": 0.95}
