"""The trainer's evaluation path and the edge's classifier compute the same thing.

`trainer evaluate` and export verification run a .tflite through `trainer.evaluate.predict`;
the daemon through `edge.classify.model.Classifier`. Fed the same decoded pixels, their top-1 must be
equal frame by frame, on a third-party uint8 model (AIY birds, input quantisation scale 1/128,
zero point 128: the case an earlier trainer runner got wrong on every image) and on the
trainer's own int8 bundle (uint8 in and out, scale 1.0). Needs no TensorFlow for AIY.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge.classify.model import Classifier, resolve_model
from edge.ingest.imaging import decode
from tests.edge.conftest import write_aiy_bundle


def _both(model: Path, photos: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """(trainer evaluation probabilities, edge classifier scores), each [n, classes]."""
    from trainer import evaluate

    classifier = Classifier(resolve_model(model))
    pixels = np.stack([decode(p.read_bytes(), classifier.input_size).rgb for p in photos])
    source = evaluate.resolve_model(model)
    assert source.kind == "tflite" and source.image_size == classifier.input_size[0]
    trainer_probs = evaluate.predict(source, pixels)
    edge_scores = np.stack([classifier.scores(rgb) for rgb in pixels])
    return trainer_probs, edge_scores


def test_trainer_evaluation_and_edge_agree_on_the_aiy_model(aiy_model: Path, birds25_dir: Path, tmp_path: Path) -> None:
    photos = sorted(birds25_dir.glob("*/*.jpg"))[::2]
    assert len(photos) >= 40
    bundle = write_aiy_bundle(tmp_path / "aiy", aiy_model, "aiy-birds-v1")  # evaluate wants labels.txt beside it
    trainer_probs, edge_scores = _both(bundle, photos)
    trainer_top1, edge_top1 = trainer_probs.argmax(axis=1), edge_scores.argmax(axis=1)
    disagree = [str(p) for p, a, b in zip(photos, trainer_top1, edge_top1) if a != b]
    assert disagree == [], f"{len(disagree)}/{len(photos)} top-1s differ"
    assert np.abs(trainer_probs - edge_scores).max() < 1e-6
    # Not a degenerate agreement (every image the same class, as saturated inputs give).
    assert len(set(edge_top1.tolist())) >= 15


def test_trainer_evaluation_and_edge_agree_on_the_int8_bundle(bundle_int8: Path, camera_frames) -> None:
    photos = [path for path, _ in camera_frames]
    trainer_probs, edge_scores = _both(bundle_int8, photos)
    assert trainer_probs.argmax(axis=1).tolist() == edge_scores.argmax(axis=1).tolist()
    assert np.abs(trainer_probs - edge_scores).max() < 1e-6
