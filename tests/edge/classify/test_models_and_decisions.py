"""Loading models as they come (bundle, .tflite with embedded labels, separate .txt/.csv) and
turning predictions into species, unknown or nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC
from pathlib import Path

import pytest

from edge.classify.decision import decide
from edge.classify.model import Classifier, ModelError, Prediction, resolve_model
from edge.config.classify import ClassifyConfig
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


# -- a detector's bird the classifier judges not to be a bird (issue 21) --------------------------


def test_a_detected_bird_the_classifier_calls_no_bird_is_not_a_bird_never_counted() -> None:
    from edge.classify.decision import NOT_BIRD, decide_bird

    no_bird = frozenset({"background"})
    vetoed = decide_bird([_p("background", 0.9), _p("Parus major", 0.05)], ClassifyConfig(), no_bird)
    assert (vetoed.kind, vetoed.species, vetoed.flag, vetoed.model_species) == ("none", None, NOT_BIRD, "background")
    assert vetoed.not_bird and vetoed.confidence == pytest.approx(0.9) and "no-bird label" in vetoed.reason
    # Low total bird probability (1 - the no-bird score), with the threshold raised above one half.
    strict = ClassifyConfig(min_bird_probability=0.7)
    low = decide_bird([_p("Parus major", 0.45), _p("background", 0.4)], strict, no_bird)
    assert (low.kind, low.flag, low.model_species) == ("none", NOT_BIRD, "Parus major")
    assert low.confidence == pytest.approx(0.4) and "bird probability 0.600 below 0.70" in low.reason
    # The no-bird score may come from every score while decide() sees only the top-k.
    cut = decide_bird([_p("Parus major", 0.45)], strict, no_bird,
                      every_score=[_p("Parus major", 0.45), _p("background", 0.4)])
    assert cut.not_bird
    # Enough bird probability: decided as before (a bird it cannot name is still `unknown`, counted).
    kept = decide_bird([_p("Parus major", 0.3), _p("background", 0.01)], ClassifyConfig(), no_bird)
    assert (kept.kind, kept.species, kept.flag) == ("unknown", "unknown", None)
    # A model without a no-bird label: the bird probability is unknown, never vetoed that way.
    assert decide_bird([_p("Parus major", 0.3)], strict).kind == "unknown"
    # The no-bird label outside the predictions given: unknown too, no veto.
    assert decide_bird([_p("Parus major", 0.3)], strict, no_bird).kind == "unknown"
    # A denied species is no veto (no flag); no predictions at all stays `unknown`.
    denied = decide_bird([_p("Parus major", 0.9), _p("background", 0.0)], ClassifyConfig(deny=["Parus major"]), no_bird)
    assert (denied.kind, denied.flag) == ("none", None)
    assert decide_bird([], ClassifyConfig(), no_bird).kind == "unknown"


@pytest.mark.parametrize("detector_score, counted", [(0.5999, False), (0.6, True), (0.9, True)])
def test_a_weak_box_the_classifier_cannot_name_is_unconfirmed_never_counted(detector_score: float, counted: bool) -> None:
    """Neither model sure (issue 21): an unnamed crop (top-1 below [classify] threshold) of a box
    scored below unnamed_min_detector_score (0.6) is kind none, flag unconfirmed; at exactly the
    bound it is still an `unknown` bird."""
    from edge.classify.decision import UNCONFIRMED, decide_bird

    no_bird = frozenset({"background"})
    decision = decide_bird([_p("Toxostoma redivivum", 0.43), _p("background", 0.001)], ClassifyConfig(), no_bird,
                           detector_score=detector_score)
    if counted:
        assert (decision.kind, decision.species, decision.flag) == ("unknown", "unknown", None)
    else:
        assert (decision.kind, decision.species, decision.flag) == ("none", None, UNCONFIRMED)
        assert decision.not_bird and decision.model_species == "Toxostoma redivivum"
        assert "is below 0.60" in decision.reason
        assert decision.model_confidence == pytest.approx(0.43)


def test_either_model_alone_may_carry_a_bird() -> None:
    """Only when both hesitate is a box unconfirmed: a weak box the classifier names is that
    species; a weak box whose name is sure but not allowed stays `unknown`; a possible rarity is
    never dropped; a crop with no predictions needs a sure detector; 0 turns the rule off."""
    from edge.classify.decision import OUT_OF_RANGE, UNCONFIRMED, DecisionContext, decide_bird

    no_bird = frozenset({"background"})
    weak = 0.51
    named = decide_bird([_p("Parus major", 0.8), _p("background", 0.0)], ClassifyConfig(), no_bird, detector_score=weak)
    assert (named.kind, named.species) == ("species", "Parus major")
    not_allowed = decide_bird([_p("Parus major", 0.8)], ClassifyConfig(allow=["Corvus corax"]), no_bird,
                              detector_score=weak)
    assert (not_allowed.kind, not_allowed.flag) == ("unknown", None)
    rarity = decide_bird([_p("Parus major", 0.95), _p("Corvus corax", 0.01)], ClassifyConfig(), no_bird,
                         context=DecisionContext(occurrence={"Parus major": 0.0, "Corvus corax": 0.9}),
                         detector_score=weak)
    assert (rarity.kind, rarity.flag) == ("unknown", OUT_OF_RANGE)
    assert decide_bird([], ClassifyConfig(), no_bird, detector_score=weak).flag == UNCONFIRMED
    assert decide_bird([], ClassifyConfig(), no_bird, detector_score=0.8).kind == "unknown"
    off = decide_bird([_p("Parus major", 0.3)], ClassifyConfig(unnamed_min_detector_score=0.0), no_bird,
                      detector_score=0.01)
    assert (off.kind, off.flag) == ("unknown", None)
    # Without a detector score (a whole frame, a caller that does not know it): as before.
    assert decide_bird([_p("Parus major", 0.3)], ClassifyConfig(), no_bird).kind == "unknown"


def test_a_not_bird_detection_is_recorded_and_counts_nothing(tmp_path: Path) -> None:
    """Stored as kind none with flag not_bird, its box and top-k kept; no event, no tally."""
    from datetime import datetime

    from edge.classify.decision import NOT_BIRD, Decision, decide_bird
    from edge.store.writer import BirdRecord, FrameRecord, Store

    no_bird = frozenset({"background"})
    mammal = decide_bird([_p("background", 0.8), _p("Corvus corax", 0.1)], ClassifyConfig(), no_bird)
    crow = Decision("species", "Corvus corax", 0.9, "ok")
    store = Store(tmp_path / "db.sqlite")
    try:
        at = datetime(2026, 5, 1, 10, tzinfo=UTC)
        only = store.record(FrameRecord(
            path="/c/a.jpg", sha256="a" * 64, camera="c", size=1, mtime=0.0, captured_at=at, model_id="m",
            birds=[BirdRecord((0.1, 0.1, 0.5, 0.5), 0.7, "bird", [_p("background", 0.8)], mammal)]))
        assert only.frame.species is None and not only.event_changes and not only.outbox
        both = store.record(FrameRecord(
            path="/c/b.jpg", sha256="b" * 64, camera="c", size=1, mtime=0.0, captured_at=at, model_id="m",
            birds=[BirdRecord((0.1, 0.1, 0.5, 0.5), 0.9, "bird", [_p("Corvus corax", 0.9)], crow),
                   BirdRecord((0.6, 0.6, 0.9, 0.9), 0.6, "bird", [_p("background", 0.8)], mammal)]))
        rows = store.db.execute("SELECT frame_id, kind, species, flag, event_id, top_k FROM detections ORDER BY id").fetchall()
        assert [(r[1], r[2], r[3], r[4] is None) for r in rows] == [
            ("none", None, NOT_BIRD, True), ("species", "Corvus corax", None, False), ("none", None, NOT_BIRD, True)]
        assert "background" in rows[0][5]
        events = store.db.execute("SELECT species, individuals FROM events").fetchall()
        assert events == [("Corvus corax", 1)]
        assert store.db.execute("SELECT SUM(individuals) FROM daily_tallies").fetchone()[0] == 1
        assert both.frame.species == "Corvus corax"
    finally:
        store.close()
