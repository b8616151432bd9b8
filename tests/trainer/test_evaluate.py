"""Evaluate: the same report for a Keras run and for an exported .tflite."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.fixtures.models import FIXTURE_CLASSES, FIXTURE_VALID_PER_CLASS
from trainer.evaluate import evaluate, metrics_from


def test_metrics_on_a_known_confusion():
    names = ["a", "b", "c"]
    labels = np.array([0, 0, 0, 1, 1, 2])
    probs = np.array([
        [0.8, 0.1, 0.1], [0.7, 0.2, 0.1], [0.1, 0.6, 0.3],  # a, a, a->b
        [0.2, 0.7, 0.1], [0.1, 0.3, 0.6],                    # b, b->c (top-2 still b)
        [0.1, 0.1, 0.8],                                     # c
    ])
    m = metrics_from(probs, labels, names)
    assert m["top1"] == pytest.approx(4 / 6) and m["top5"] == 1.0
    assert m["per_class"]["a"] == {"precision": 1.0, "recall": pytest.approx(2 / 3), "f1": pytest.approx(0.8), "support": 3}
    assert m["per_class"]["b"]["precision"] == pytest.approx(0.5) and m["per_class"]["b"]["recall"] == pytest.approx(0.5)
    assert m["per_class"]["c"]["precision"] == pytest.approx(0.5) and m["per_class"]["c"]["recall"] == 1.0
    assert m["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert m["most_confused"] == [{"true": "a", "predicted": "b", "count": 1}, {"true": "b", "predicted": "c", "count": 1}]
    assert m["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]


def test_evaluate_a_run_and_its_int8_bundle(trained_run, bundle_int8, synthetic_dataset, tmp_path):
    keras_report = evaluate(trained_run, split="test")
    assert keras_report["model_kind"] == "keras" and keras_report["images"] == 48
    assert keras_report["top1"] >= 0.9 and keras_report["top5"] == 1.0 and keras_report["macro_f1"] >= 0.9
    assert (trained_run / "eval-test" / "confusion.png").stat().st_size > 1000
    assert json.loads((trained_run / "eval-test" / "report.json").read_text())["top1"] == keras_report["top1"]

    lite_report = evaluate(bundle_int8, synthetic_dataset, "test", tmp_path / "lite")
    assert lite_report["model_kind"] == "tflite" and lite_report["images"] == 48
    assert abs(lite_report["top1"] - keras_report["top1"]) <= 2 / 48  # the cost of quantisation, measured
    assert set(lite_report["per_class"]) == set(keras_report["per_class"])
    assert (tmp_path / "lite" / "confusion.png").is_file()


def test_cli_evaluate_a_tflite_file(run_trainer, bundle_float, synthetic_dataset, tmp_path):
    result = run_trainer("evaluate", bundle_float / "model.tflite", "--data", synthetic_dataset, "--split", "valid",
                         "--out", tmp_path / "eval")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "top-1" in result.stdout and "macro F1" in result.stdout and "RED_CIRCLE" in result.stdout
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert report["split"] == "valid" and report["images"] == FIXTURE_CLASSES * FIXTURE_VALID_PER_CLASS and report["top1"] >= 0.9


def test_cli_evaluate_a_bundle_without_data_is_a_usage_error(run_trainer, bundle_float):
    result = run_trainer("evaluate", bundle_float)
    assert result.returncode == 2 and "needs --data" in result.stderr
