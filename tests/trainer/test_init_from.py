"""`trainer train --init-from`: fine-tuning the fixture model on data that adds a class.

The fixture model (tests/fixtures/models.py) knows 4 synthetic classes. The new data has three
of them and one new class (MAGENTA_DIAMOND), as a reviewed training set from the field would:
the result must keep the old classes (in their order, the missing one included), add the new
one after them, start from the old weights (not from scratch) and export as usual.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures.models import FIXTURE_IMAGE_SIZE

NEW_CLASS = "MAGENTA_DIAMOND"
LEFT_OUT = "YELLOW_CROSS"  # an old class the new data does not have: it keeps its output


def _write_set(root: Path, names: list[str], per_class: int, seed: int) -> Path:
    """A single-tree data set of synthetic images (the trainer splits it, seeded)."""
    from trainer.synth import _index_of, render

    rng = random.Random(seed)
    for name in names:
        folder = root / name
        folder.mkdir(parents=True)
        for n in range(per_class):
            render(_index_of(name), 96, rng).save(folder / f"{n:03d}.jpg", quality=92)
    return root


@pytest.fixture(scope="module")
def old_classes(trained_run: Path) -> list[str]:
    return json.loads((trained_run / "class_names.json").read_text())


@pytest.fixture(scope="module")
def new_data(old_classes, tmp_path_factory) -> Path:
    names = [name for name in old_classes if name != LEFT_OUT] + [NEW_CLASS]
    return _write_set(tmp_path_factory.mktemp("init-data") / "data", names, per_class=24, seed=11)


@pytest.fixture(scope="module")
def fine_tuned(bundle_int8: Path, new_data: Path, tmp_path_factory) -> Path:
    """`trainer train --init-from BUNDLE` through the CLI (arch and image size taken from the bundle)."""
    from trainer.cli import main

    run = tmp_path_factory.mktemp("init-run") / "run"
    code = main(["train", "--data", str(new_data), "--out", str(run), "--init-from", str(bundle_int8),
                 "--epochs", "4", "--batch-size", "16", "--optimizer", "adam", "--learning-rate", "0.002",
                 "--val-fraction", "0.25", "--test-fraction", "0.0", "--no-augment", "--mixed-precision", "off",
                 "--seed", "3"])
    assert code == 0
    return run


def _valid_images(data_dir: Path, class_names: list[str], seed: int, only: set[str] | None = None):
    from trainer.data import discover, order_classes
    from trainer.pipeline import load_images

    data = order_classes(discover(data_dir, 0.25, 0.0, seed), class_names)
    items = [item for item in data.split("valid") if only is None or class_names[item.label] in only]
    return load_images(items, FIXTURE_IMAGE_SIZE)


def test_the_widened_model_starts_from_the_old_weights(bundle_int8, trained_run, old_classes, new_data):
    from trainer.init_from import load_widened, merged_classes, resolve_init_source
    from trainer.models import load_keras_model

    source = resolve_init_source(bundle_int8)
    assert source.kind == "bundle" and source.class_names == old_classes
    assert source.model_id == json.loads((bundle_int8 / "manifest.json").read_text())["model_id"]
    names = merged_classes(source.class_names, [n.name for n in new_data.iterdir()])
    assert names == [*old_classes, NEW_CLASS]
    widened = load_widened(source, names)
    old = load_keras_model(trained_run / "best.keras")
    old_kernel, old_bias = old.get_layer("predictions").get_weights()
    kernel, bias = widened.get_layer("predictions").get_weights()
    assert kernel.shape == (old_kernel.shape[0], 5)
    np.testing.assert_array_equal(kernel[:, :4], old_kernel)  # LEFT_OUT's column included
    np.testing.assert_array_equal(bias[:4], old_bias)
    assert np.any(kernel[:, 4] != 0)  # the new class starts fresh, not from zeros
    # Zero epochs: on the old classes it already classifies as the old model did, far above chance (1/5).
    images, labels = _valid_images(new_data, names, 3, only=set(old_classes))
    probabilities = widened.predict(images, verbose=0)
    assert (probabilities.argmax(axis=1) == labels).mean() >= 0.8
    # Among the old classes it ranks exactly as the old model (only the fresh column is new).
    np.testing.assert_array_equal(probabilities[:, :4].argmax(axis=1), old.predict(images, verbose=0).argmax(axis=1))


def test_fine_tuning_adds_the_new_class_and_keeps_the_old(fine_tuned, old_classes, new_data, bundle_int8):
    from trainer.models import load_keras_model

    names = json.loads((fine_tuned / "class_names.json").read_text())
    assert names == [*old_classes, NEW_CLASS]  # old order, the left-out class kept, the new one last
    config = json.loads((fine_tuned / "config.json").read_text())
    assert config["image_size"] == FIXTURE_IMAGE_SIZE and config["arch"] == "convnet"
    record = json.loads((fine_tuned / "init_from.json").read_text())
    assert record["kind"] == "bundle" and record["added_classes"] == [NEW_CLASS]
    history = json.loads((fine_tuned / "history.json").read_text())
    assert history["val_accuracy"][0] >= 0.6  # epoch 1 already: it did not start from scratch

    model = load_keras_model(fine_tuned / "best.keras")
    images, labels = _valid_images(new_data, names, 3)
    predicted = model.predict(images, verbose=0).argmax(axis=1)
    old = labels != names.index(NEW_CLASS)
    assert (predicted[old] == labels[old]).mean() >= 0.8  # the old classes did not collapse
    assert (predicted[~old] == labels[~old]).mean() >= 0.5  # and the new one is learnt


def test_the_fine_tuned_run_exports_and_can_be_continued(fine_tuned, new_data, bundle_int8, tmp_path):
    from trainer.export import export_bundle, read_manifest
    from trainer.init_from import resolve_init_source

    bundle = export_bundle(fine_tuned, tmp_path / "bundle", "none")
    manifest = read_manifest(bundle)
    assert (bundle / "labels.txt").read_text().splitlines()[-1] == NEW_CLASS
    assert manifest["num_classes"] == 5 and manifest["metrics"]["agreement"] >= 0.995
    assert manifest["init_from"]["model_id"] == read_manifest(bundle_int8)["model_id"]
    # The run folder itself, and the new bundle, are valid --init-from sources in turn.
    assert resolve_init_source(fine_tuned).kind == "run"
    assert resolve_init_source(bundle).class_names[-1] == NEW_CLASS


def test_a_bundle_without_its_keras_model_or_run_is_refused(bundle_int8, new_data, tmp_path):
    from trainer.cli import main
    from trainer.init_from import InitSourceError, resolve_init_source

    bare = tmp_path / "bare"
    shutil.copytree(bundle_int8, bare)
    (bare / "model.keras").unlink()
    manifest = json.loads((bare / "manifest.json").read_text())
    manifest["run_dir"] = str(tmp_path / "gone")
    (bare / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InitSourceError, match="carries no model.keras"):
        resolve_init_source(bare)
    # The CLI says so in one line, exit 2, before any training.
    assert main(["train", "--data", str(new_data), "--out", str(tmp_path / "run"), "--init-from", str(bare)]) == 2
    assert not (tmp_path / "run").exists()
    # A different input size than the source's is refused, naming the key.
    assert main(["train", "--data", str(new_data), "--out", str(tmp_path / "run"), "--init-from", str(bundle_int8),
                 "--image-size", "96"]) == 2


def test_order_classes_relabels_by_name(new_data, old_classes):
    from trainer.data import DataError, discover, order_classes

    data = discover(new_data, 0.25, 0.0, 3)
    target = [*old_classes, NEW_CLASS]
    ordered = order_classes(data, target)
    assert ordered.class_names == target
    for before, after in zip(data.split("train"), ordered.split("train")):
        assert before.path == after.path and target[after.label] == data.class_names[before.label]
    with pytest.raises(DataError, match=NEW_CLASS):
        order_classes(data, old_classes)
