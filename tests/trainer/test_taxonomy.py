"""`trainer train|export --taxonomy CSV`: scientific and common names per class, into the bundle.

The CSV readers on the two shapes (the Kaggle set's per-image birds.csv, a per-class
label,scientific_name,common_name), header spellings, loose class matching and the refusal of
a class with two names; then the real trainer: a one-epoch run on the synthetic set with a
Kaggle-style file, its export, and the bundle loaded by the edge's resolve_model with the
names on its labels; `trainer export --taxonomy` on the session's trained run; --init-from
keeping the parent bundle's names.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from trainer.cli import main
from trainer.taxonomy import Names, TaxonomyError, match_classes, normalise_header, read_taxonomy

CLASSES = ["BLUE_SQUARE", "GREEN_TRIANGLE", "RED_CIRCLE", "YELLOW_CROSS"]  # trainer synth's first four
# Invented Latin names for the synthetic shapes (the trainer never checks them against a checklist).
SCIENTIFIC = {"BLUE_SQUARE": "Cyanus quadratus", "GREEN_TRIANGLE": "Viridis triangulus", "RED_CIRCLE": "Ruber circulus"}


def _kaggle_csv(path: Path, rows: list[tuple[str, str]], per_class: int = 5) -> Path:
    """A birds.csv as the Kaggle set ships it: one row per image, the class's names on each."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["class id", "filepaths", "labels", "data set", "scientific name"])
        for class_id, (label, scientific) in enumerate(rows):
            for split in ("train", "valid", "test"):
                for n in range(per_class):
                    writer.writerow([f"{class_id}.0", f"{split}/{label}/{n + 1:03d}.jpg", label, split, scientific])
    return path


def test_kaggle_per_image_rows_are_deduplicated(tmp_path: Path) -> None:
    path = _kaggle_csv(tmp_path / "birds.csv", [("NORTHERN CARDINAL", "CARDINALIS CARDINALIS"),
                                                 ("BLUE JAY", "Cyanocitta cristata")])
    # An all-capitals Latin name comes out in the usual form.
    assert read_taxonomy(path) == {"NORTHERN CARDINAL": Names("Cardinalis cardinalis", None),
                                   "BLUE JAY": Names("Cyanocitta cristata", None)}


def test_simple_csv_with_other_header_spellings(tmp_path: Path) -> None:
    path = tmp_path / "names.csv"
    path.write_text("\ufeffSpecies,scientificName,Vernacular\n"
                    "BLUE_SQUARE,Cyanus quadratus,Blue square\n"
                    "RED_CIRCLE,  Ruber   circulus ,\n"
                    "GREEN_TRIANGLE,,\n", encoding="utf-8")
    assert read_taxonomy(path) == {"BLUE_SQUARE": Names("Cyanus quadratus", "Blue square"),
                                   "RED_CIRCLE": Names("Ruber circulus", None),
                                   "GREEN_TRIANGLE": Names(None, None)}
    assert [normalise_header(h) for h in ("scientific name", "Scientific_Name", "scientificName", "Common-Name")] == [
        "scientific_name", "scientific_name", "scientific_name", "common_name"]


def test_two_scientific_names_for_one_class_are_refused(tmp_path: Path) -> None:
    path = _kaggle_csv(tmp_path / "birds.csv", [("BLUE JAY", "Cyanocitta cristata")], per_class=2)
    with path.open("a", encoding="utf-8") as handle:
        handle.write("0.0,train/BLUE JAY/099.jpg,BLUE JAY,train,Cyanocitta stelleri\n")
    with pytest.raises(TaxonomyError) as error:
        read_taxonomy(path)
    message = str(error.value)
    assert "'BLUE JAY' has two scientific names" in message
    assert "'Cyanocitta cristata' (row 2)" in message and "'Cyanocitta stelleri' (row 8)" in message


def test_a_file_without_usable_columns_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "names.csv"
    path.write_text("filepaths,data set\na.jpg,train\n", encoding="utf-8")
    with pytest.raises(TaxonomyError, match="needs a label column .* its header is 'filepaths', 'data set'"):
        read_taxonomy(path)
    with pytest.raises(TaxonomyError, match="does not exist"):
        read_taxonomy(tmp_path / "missing.csv")


def test_matching_exact_then_loose_with_warning_and_note() -> None:
    names = {"BLUE_SQUARE": Names("Cyanus quadratus"), "green triangle": Names("Viridis triangulus"),
             "RED  CIRCLE": Names("Ruber circulus"), "PURPLE_STAR": Names("Purpureus stella")}
    matched = match_classes(names, CLASSES, "names.csv")
    assert list(matched.taxonomy) == ["BLUE_SQUARE", "GREEN_TRIANGLE", "RED_CIRCLE"]
    assert matched.loosely == {"GREEN_TRIANGLE": "green triangle", "RED_CIRCLE": "RED  CIRCLE"}
    assert matched.without_names == ["YELLOW_CROSS"] and matched.unused == ["PURPLE_STAR"]
    lines = matched.lines("names.csv")
    assert lines[0] == "taxonomy: names.csv: names for 3 of 4 classes"
    assert "warning: 1 classes have no scientific or common name" in lines[1] and "'YELLOW_CROSS'" in lines[1]
    assert "note: 1 names are for classes not in the data set, ignored: 'PURPLE_STAR'" in lines[2]
    # Two loose spellings naming one class differently: refused, not guessed.
    with pytest.raises(TaxonomyError, match="'YELLOW_CROSS' is named by 'yellow cross', 'Yellow_Cross'"):
        match_classes({"yellow cross": Names("A b"), "Yellow_Cross": Names("C d")}, CLASSES)


@pytest.fixture(scope="module")
def kaggle_file(tmp_path_factory) -> Path:
    # Spaces where the folders have underscores (matched loosely); YELLOW_CROSS has no name; an
    # extra class the data set lacks.
    rows = [(label.replace("_", " ") if label == "RED_CIRCLE" else label, name) for label, name in SCIENTIFIC.items()]
    return _kaggle_csv(tmp_path_factory.mktemp("taxonomy") / "birds.csv", [*rows, ("PURPLE STAR", "Purpureus stella")])


@pytest.fixture(scope="module")
def named_run(synthetic_dataset: Path, kaggle_file: Path, tmp_path_factory) -> tuple[Path, str]:
    """A one-epoch run of a tiny convnet trained with --taxonomy (the names, not the accuracy, are tested)."""
    import io
    import logging

    run = tmp_path_factory.mktemp("named") / "run"
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logging.getLogger("trainer").addHandler(handler)
    try:
        code = main(["train", "--data", str(synthetic_dataset), "--out", str(run), "--taxonomy", str(kaggle_file),
                     "--epochs", "1", "--image-size", "32", "--filters", "4", "4", "--dense-units", "8",
                     "--batch-size", "32", "--no-augment", "--mixed-precision", "off", "--seed", "5"])
    finally:
        logging.getLogger("trainer").removeHandler(handler)
    assert code == 0
    return run, stream.getvalue()


def test_train_writes_the_matched_names_into_the_run(named_run, kaggle_file: Path) -> None:
    run, logged = named_run
    assert json.loads((run / "taxonomy.json").read_text()) == {
        label: {"scientific_name": name} for label, name in SCIENTIFIC.items()}
    assert json.loads((run / "config.json").read_text())["taxonomy"] == str(kaggle_file)
    assert f"taxonomy: {kaggle_file}: names for 3 of 4 classes" in logged
    assert "no scientific or common name (the bundle works; exports will list them): 'YELLOW_CROSS'" in logged
    assert "not in the data set, ignored: 'PURPLE STAR'" in logged


@pytest.fixture(scope="module")
def named_bundle(named_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("named-bundle") / "bundle"
    assert main(["export", str(named_run[0]), "--out", str(out), "--quantize", "none", "--eval-images", "60"]) == 0
    return out


def test_the_exported_bundle_carries_the_names_to_the_edge(named_bundle: Path) -> None:
    from edge.classify.model import resolve_model

    manifest = json.loads((named_bundle / "manifest.json").read_text())
    assert manifest["taxonomy"] == {label: {"scientific_name": name} for label, name in SCIENTIFIC.items()}
    assert manifest["metrics"]["agreement"] >= manifest["metrics"]["min_agreement"]  # verification passed
    spec = resolve_model(named_bundle, None, None)
    by_name = {label.name: label for label in spec.labels}
    assert [label.name for label in spec.labels] == CLASSES
    assert {name: by_name[name].scientific_name for name in CLASSES} == {**SCIENTIFIC, "YELLOW_CROSS": None}


def test_export_taxonomy_adds_and_replaces_names(named_run, tmp_path: Path, capsys) -> None:
    names = tmp_path / "names.csv"
    names.write_text("label,scientific_name,common_name\n"
                     "YELLOW_CROSS,Flavus crux,Yellow cross\n"
                     "BLUE_SQUARE,Cyanus cubus,\n", encoding="utf-8")
    out = tmp_path / "bundle"
    assert main(["export", str(named_run[0]), "--out", str(out), "--quantize", "none", "--eval-images", "40",
                 "--taxonomy", str(names), "--no-keras-model"]) == 0
    printed = capsys.readouterr()
    assert "taxonomy: names for 4 of 4 classes" in printed.out
    assert "names for 2 of 4 classes" in printed.err  # the file's own count; the run's names stay
    from edge.classify.model import resolve_model

    labels = {label.name: label for label in resolve_model(out, None, None).labels}
    assert labels["BLUE_SQUARE"].scientific_name == "Cyanus cubus"  # replaced
    assert (labels["YELLOW_CROSS"].scientific_name, labels["YELLOW_CROSS"].common_name) == ("Flavus crux", "Yellow cross")
    assert labels["RED_CIRCLE"].scientific_name == "Ruber circulus"  # the run's, kept
    assert json.loads((named_run[0] / "taxonomy.json").read_text())["BLUE_SQUARE"] == {
        "scientific_name": "Cyanus quadratus"}  # export reads the run, never changes it


def test_init_from_keeps_the_parent_bundles_names(named_bundle: Path, synthetic_dataset: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert main(["train", "--data", str(synthetic_dataset), "--out", str(run), "--init-from", str(named_bundle),
                 "--epochs", "1", "--batch-size", "32", "--no-augment", "--mixed-precision", "off"]) == 0
    assert json.loads((run / "taxonomy.json").read_text()) == {
        label: {"scientific_name": name} for label, name in SCIENTIFIC.items()}


def test_conflicting_names_exit_2_before_any_run_folder(run_trainer, synthetic_dataset: Path, tmp_path: Path) -> None:
    path = _kaggle_csv(tmp_path / "birds.csv", [("BLUE_SQUARE", "Cyanus quadratus")], per_class=1)
    with path.open("a", encoding="utf-8") as handle:
        handle.write("0.0,test/BLUE_SQUARE/009.jpg,BLUE_SQUARE,test,Cyanus rotundus\n")
    result = run_trainer("train", "--data", synthetic_dataset, "--out", tmp_path / "run", "--taxonomy", path, timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "class 'BLUE_SQUARE' has two scientific names" in errors[0]
    assert "'Cyanus quadratus' (row 2) and 'Cyanus rotundus' (row 5)" in errors[0]
    assert not (tmp_path / "run").exists()


def test_export_taxonomy_conflict_exits_2(named_run, tmp_path: Path, capsys) -> None:
    path = tmp_path / "names.csv"
    path.write_text("label,scientific_name\nRED_CIRCLE,Ruber circulus\nRED_CIRCLE,Ruber orbis\n", encoding="utf-8")
    assert main(["export", str(named_run[0]), "--out", str(tmp_path / "b"), "--taxonomy", str(path)]) == 2
    assert "class 'RED_CIRCLE' has two scientific names" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()
