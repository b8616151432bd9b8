"""Loading models as they come (bundle, .tflite with embedded labels, separate .txt/.csv) and
turning predictions into species, unknown or nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edge.config.classify import ClassifyConfig
from edge.classify.decision import decide
from edge.classify.model import Classifier, ModelError, Prediction, resolve_model
from tests.edge.conftest import write_aiy_bundle


def test_aiy_labels_embedded_or_from_labelmap(aiy_model: Path, aiy_model_dir: Path) -> None:
    embedded = resolve_model(aiy_model)
    assert embedded.labels_source.endswith("model.tflite!probability-labels-en.txt")
    assert len(embedded.labels) == 965 and embedded.labels[68].name == "Cardinalis cardinalis"
    assert embedded.no_bird_label == "None"  # index 964 in the embedded English file

    csv = resolve_model(aiy_model, aiy_model_dir / "labelmap.csv")
    cardinal = csv.labels[68]
    assert (cardinal.name, cardinal.scientific_name, cardinal.common_name) == ("Northern Cardinal", "Cardinalis cardinalis", "Northern Cardinal")
    assert csv.no_bird_label == "background" and csv.labels[964].scientific_name is None
    assert csv.scientific_names["Northern Cardinal"] == "Cardinalis cardinalis"
    assert embedded.model_id == csv.model_id and embedded.model_id.startswith("aiy_birds_v1-")

    assert resolve_model(aiy_model, no_bird_label=964).no_bird_label == "None"
    assert resolve_model(aiy_model, aiy_model_dir / "labelmap.csv", no_bird_label="Background").no_bird_label == "background"
    with pytest.raises(ModelError, match="model.no_bird_label: 'nothing' is not one of the model's labels"):
        resolve_model(aiy_model, no_bird_label="nothing")
    with pytest.raises(ModelError, match="output index 965 is out of range"):
        resolve_model(aiy_model, no_bird_label=965)


def test_label_count_must_match_outputs(tmp_path: Path, aiy_model: Path) -> None:
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(f"bird {i}" for i in range(10)) + "\n")
    with pytest.raises(ModelError, match="965 outputs but .*labels.txt has 10 labels"):
        Classifier(resolve_model(aiy_model, labels))
    broken = tmp_path / "broken.csv"
    broken.write_text("id,scientific_name,common_name\n0,A a,Aa\n2,B b,Bb\n")
    with pytest.raises(ModelError, match="ids must cover 0..N-1"):
        resolve_model(aiy_model, broken)


def test_bundle_manifest_id_and_checksum(tmp_path: Path, aiy_model: Path) -> None:
    bundle = write_aiy_bundle(tmp_path / "bundle", aiy_model, "mobilenet-int8-0badc0de")
    spec = resolve_model(bundle)
    assert spec.model_id == "mobilenet-int8-0badc0de" and spec.no_bird_label == "None"
    assert spec.labels_source == str(bundle / "labels.txt")
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["tflite_sha256"] = "0" * 64
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="does not match the manifest's tflite_sha256"):
        resolve_model(bundle)
    manifest["format"] = "something-else"
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="not a trailcam bundle manifest"):
        resolve_model(bundle)
    with pytest.raises(ModelError, match="model not found"):
        resolve_model(tmp_path / "absent")


def _p(label: str, score: float) -> Prediction:
    return Prediction(label, score, 0)


@pytest.mark.parametrize(
    ("top", "config", "expected"),
    [
        (("Northern Cardinal", 0.9), {}, ("species", "Northern Cardinal")),
        (("Northern Cardinal", 0.4), {}, ("unknown", "unknown")),
        (("Northern Cardinal", 0.4), {"thresholds": {"Northern Cardinal": 0.3}}, ("species", "Northern Cardinal")),
        (("House Sparrow", 0.8), {"thresholds": {"House Sparrow": 0.95}}, ("unknown", "unknown")),
        (("background", 0.99), {}, ("none", None)),
        (("House Sparrow", 0.99), {"deny": ["House Sparrow"]}, ("none", None)),
        (("Snowy Owl", 0.99), {"allow": ["Northern Cardinal", "Blue Jay"]}, ("unknown", "unknown")),
        (("Blue Jay", 0.99), {"allow": ["Northern Cardinal", "Blue Jay"]}, ("species", "Blue Jay")),
        # Config may name a species by its scientific name.
        (("Blue Jay", 0.99), {"deny": ["Cyanocitta cristata"]}, ("none", None)),
    ],
)
def test_decisions(top, config, expected) -> None:
    decision = decide([_p(*top), _p("other", 0.01)], ClassifyConfig(**config), frozenset({"background"}),
                      {"Blue Jay": {"Cyanocitta cristata"}})
    assert (decision.kind, decision.species) == expected
    assert decision.confidence == top[1]


def test_classify_cli_table_and_errors(tmp_path: Path, aiy_model: Path, aiy_model_dir: Path, bird_photo, cli_env) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"nope")
    result = subprocess.run([sys.executable, "-m", "edge", "classify", "--model", str(aiy_model), "--labels",
                             str(aiy_model_dir / "labelmap.csv"), "--top-k", "2", str(bird_photo("NORTHERN CARDINAL", 1)), str(bad)],
                            env=cli_env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1  # one image failed
    lines = result.stdout.splitlines()
    assert lines[0].startswith(str(bird_photo("NORTHERN CARDINAL", 1)) + ": Northern Cardinal 0.9")
    assert lines[1] == f"{bad}: error: not an image Pillow can read"
    usage = subprocess.run([sys.executable, "-m", "edge", "classify", "--model", str(tmp_path / "x.tflite"), str(bad)],
                           env=cli_env, capture_output=True, text=True, timeout=120)
    assert usage.returncode == 2 and "model not found" in usage.stderr
