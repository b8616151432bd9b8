"""Finding images: layouts, reproducible stratified splits, broken files reported and skipped."""

from __future__ import annotations

import json
import logging
import shutil

import pytest

from tests.fixtures.models import FIXTURE_CLASSES, FIXTURE_VALID_PER_CLASS
from trainer.data import DataError, discover, fingerprint
from trainer.data_check import check_tree, has_problems


def test_kaggle_layout_uses_sorted_folder_names_as_labels(synthetic_dataset):
    data = discover(synthetic_dataset)
    assert data.layout == "kaggle"
    assert data.class_names == sorted(data.class_names) == ["BLUE_SQUARE", "GREEN_TRIANGLE", "RED_CIRCLE", "YELLOW_CROSS"]
    assert {k: len(v) for k, v in data.splits.items()} == {"train": 240, "valid": FIXTURE_CLASSES * FIXTURE_VALID_PER_CLASS, "test": 48}
    for item in data.splits["valid"]:
        assert item.path.parent.name == data.class_names[item.label]


def test_single_tree_split_is_stratified_seeded_and_disjoint(synthetic_dataset, tmp_path):
    tree = tmp_path / "tree"
    shutil.copytree(synthetic_dataset / "train", tree)
    first = discover(tree, val_fraction=0.2, test_fraction=0.1, seed=3)
    again = discover(tree, val_fraction=0.2, test_fraction=0.1, seed=3)
    other = discover(tree, val_fraction=0.2, test_fraction=0.1, seed=4)
    assert first.layout == "single"
    assert first.splits == again.splits
    assert first.splits["valid"] != other.splits["valid"]
    for split, per_class in (("train", 42), ("valid", 12), ("test", 6)):
        labels = [item.label for item in first.splits[split]]
        assert all(labels.count(label) == per_class for label in range(4)), split
    paths = [set(i.path for i in first.splits[s]) for s in ("train", "valid", "test")]
    assert not (paths[0] & paths[1] or paths[0] & paths[2] or paths[1] & paths[2])


def test_kaggle_layout_without_valid_holds_out_part_of_train(synthetic_dataset, tmp_path):
    root = tmp_path / "no-valid"
    shutil.copytree(synthetic_dataset / "train", root / "train")
    data = discover(root, val_fraction=0.25, seed=1)
    assert len(data.splits["valid"]) == 60 and len(data.splits["train"]) == 180


def test_broken_files_are_skipped_with_a_warning(broken_dataset, caplog):
    root, broken = broken_dataset
    with caplog.at_level(logging.WARNING, logger="trainer.data"):
        data = discover(root)
    used = {item.path for items in data.splits.values() for item in items}
    for key in ("corrupt", "truncated", "notes", "fake"):
        assert broken[key] not in used
    skipped = {path: reason for path, reason in data.skipped}
    assert "corrupt" in skipped[broken["truncated"]] or "truncated" in skipped[broken["truncated"]]
    assert skipped[broken["fake"]] == "not an image"
    assert str(broken["corrupt"]) in caplog.text and str(broken["truncated"]) in caplog.text
    assert len(data.splits["train"]) == 240


def test_data_check_reports_broken_files_sizes_and_cross_split_duplicates(broken_dataset):
    root, broken = broken_dataset
    report = check_tree(root, expect_size=224)
    assert report["counts"]["train"]["BLUE_SQUARE"] == 60 and report["counts"]["test"]["BLUE_SQUARE"] == 13
    problems = {entry["path"]: entry["problem"] for entry in report["unreadable"]}
    rel = lambda p: p.relative_to(root).as_posix()  # noqa: E731
    assert set(problems) == {rel(broken[k]) for k in ("corrupt", "truncated", "notes", "fake")}
    assert problems[rel(broken["notes"])] == "not an image file name"
    # every fixture image is 128x128, plus the one extra readable test image the test added
    assert len(report["wrong_size"]) == 240 + FIXTURE_CLASSES * FIXTURE_VALID_PER_CLASS + 48 + 1 and report["wrong_size"][0]["size"] == [128, 128]
    assert report["cross_split_duplicates"] == [
        {"sha256": report["cross_split_duplicates"][0]["sha256"], "paths": sorted([rel(broken["duplicate"]), rel(broken["duplicate_of"])])}
    ]
    assert has_problems(report)
    assert check_tree(root, expect_size=128)["wrong_size"] == []


def test_data_check_cli_prints_a_report_and_strict_fails(run_trainer, broken_dataset):
    root, broken = broken_dataset
    result = run_trainer("data", "check", root, "--expect-size", "128")
    assert result.returncode == 0, result.stderr
    assert "unreadable or non-image files: 4" in result.stdout
    assert "exact duplicates across splits: 1" in result.stdout
    assert "truncated.jpg" in result.stdout and "leaked.jpg" in result.stdout
    strict = run_trainer("data", "check", root, "--json", "--strict", "--expect-size", "128")
    assert strict.returncode == 1
    assert json.loads(strict.stdout)["classes"] == 4


def test_fingerprint_changes_with_any_training_byte(synthetic_dataset, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(synthetic_dataset, root)
    before = fingerprint(root, discover(root).splits["train"])
    assert before == fingerprint(root, discover(root).splits["train"])
    victim = sorted((root / "train" / "RED_CIRCLE").glob("*.jpg"))[0]
    victim.write_bytes(victim.read_bytes() + b"\0")
    assert fingerprint(root, discover(root).splits["train"]) != before


def test_class_in_valid_but_not_in_train_is_an_error(synthetic_dataset, tmp_path):
    root = tmp_path / "extra"
    shutil.copytree(synthetic_dataset, root)
    shutil.copytree(root / "valid" / "RED_CIRCLE", root / "valid" / "PURPLE_BLOB")
    with pytest.raises(DataError, match="PURPLE_BLOB"):
        discover(root)
