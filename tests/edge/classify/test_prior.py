"""The species prior ("where and when", issue 19): BirdNET's real range model and the AIY
classifier on real birds25 photos, a checklist file without the model, the name matching, the
combining rule, the cache, the configuration and its refusals, `edge classify` and `edge run`.

What the AIY model says of the five American Robin photos (checked when these tests were
written): 1.jpg European Robin 0.914, 2.jpg European Robin 0.973, 3.jpg American Robin 0.945,
4.jpg American Robin 0.852, 5.jpg European Robin 0.684. The range model gives Turdus
migratorius 0.97 and Erithacus rubecula 0.00 at (40.0, -83.0) in May (Ohio), and the reverse at
(52.0, -1.0) (England).
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from edge.classify.decision import OUT_OF_RANGE, UNKNOWN, Decision, DecisionContext, decide, decide_bird
from edge.classify.labels import Label, load_labels_file
from edge.classify.model import Classifier, Prediction, resolve_model
from edge.classify.prior import (
    BirdNetPrior,
    ChecklistPrior,
    Occurrence,
    PriorError,
    SourceName,
    StationPrior,
    birdnet_week,
    clean_scientific,
    fold_common,
    local_week,
    match_labels,
    read_checklist,
)
from edge.config import ConfigError, load_config
from edge.config.classify import ClassifyConfig
from edge.ingest.imaging import decode
from tests.edge.conftest import jpeg_bytes

OHIO, ENGLAND = (40.0, -83.0), (52.0, -1.0)
MAY = 20  # BirdNET week of 22-31 May
ROBIN, EUROPEAN_ROBIN = "Turdus migratorius", "Erithacus rubecula"
NO_BIRD = frozenset({"background"})


# -- real models, loaded once ------------------------------------------------------------------


@pytest.fixture(scope="module")
def aiy(aiy_model_dir: Path) -> Classifier:
    """AIY with its embedded labels: the label is the scientific name."""
    return Classifier(resolve_model(aiy_model_dir / "model.tflite"), threads=1)


@pytest.fixture(scope="module")
def birdnet(birdnet_geo_dir: Path, aiy: Classifier) -> BirdNetPrior:
    return BirdNetPrior(birdnet_geo_dir, aiy.spec.labels, aiy.spec.no_bird_label)


@pytest.fixture(scope="module")
def robins(aiy: Classifier, birds25_dir: Path) -> dict[int, list[Prediction]]:
    """Photo number → AIY's top-5 for the five American Robin photos."""
    found = {}
    for number in range(1, 6):
        frame = decode((birds25_dir / "AMERICAN ROBIN" / f"{number}.jpg").read_bytes(), aiy.input_size)
        found[number] = aiy.classify(frame.rgb, 5)[0]
    return found


def _decide(predictions: list[Prediction], occurrence=None, config: ClassifyConfig | None = None) -> Decision:
    context = DecisionContext(occurrence=occurrence) if occurrence is not None else None
    return decide(predictions, config or ClassifyConfig(), NO_BIRD, context=context)


def test_the_photos_are_what_the_tests_assume(robins) -> None:
    assert [robins[n][0].label for n in range(1, 6)] == [EUROPEAN_ROBIN, EUROPEAN_ROBIN, ROBIN, ROBIN, EUROPEAN_ROBIN]
    assert robins[3][0].score >= 0.9 > robins[4][0].score


# -- the real range model and photos ------------------------------------------------------------


def test_range_model_knows_which_robin_lives_where(birdnet: BirdNetPrior) -> None:
    ohio, england = birdnet.occurrence(*OHIO, MAY), birdnet.occurrence(*ENGLAND, MAY)
    assert ohio[ROBIN] > 0.9 and ohio[EUROPEAN_ROBIN] < 0.03
    assert england[EUROPEAN_ROBIN] > 0.8 and england[ROBIN] < 0.03
    assert ohio.in_range(ROBIN) and not ohio.in_range(EUROPEAN_ROBIN)
    assert 80 < len(ohio.expected()) < 300 and ROBIN in ohio.expected()[:40]


def test_american_robins_in_ohio_in_may_are_turdus_migratorius(robins, birdnet) -> None:
    ohio = birdnet.occurrence(*OHIO, MAY)
    for number in (3, 4):  # named American Robin by the model: in range, unchanged
        decision = _decide(robins[number], ohio)
        assert decision == _decide(robins[number])  # exactly today's decision
        assert (decision.kind, decision.species, decision.flag) == ("species", ROBIN, None)
    for number in (1, 2):  # named European Robin at >= 0.9: impossible in Ohio, flagged, not counted as it
        decision = _decide(robins[number], ohio)
        assert (decision.kind, decision.species, decision.flag) == ("unknown", UNKNOWN, OUT_OF_RANGE)
        assert decision.model_species == EUROPEAN_ROBIN and decision.model_confidence == robins[number][0].score
    # 0.684 European Robin: out of range, not confident enough to be a rarity; nothing in range
    # holds enough of the rest (Eastern Bluebird 0.059 of the 0.316 left = 0.19 < 0.5).
    decision = _decide(robins[5], ohio)
    assert (decision.kind, decision.flag, decision.model_species) == ("unknown", None, EUROPEAN_ROBIN)
    assert decision.confidence == pytest.approx(robins[5][1].score / (1 - robins[5][0].score - _out(robins[5], ohio)))


def _out(predictions: list[Prediction], occurrence: Occurrence) -> float:
    """The scores of out-of-range predictions below the top-1."""
    return sum(p.score for p in predictions[1:] if occurrence.in_range(p.label) is False)


def test_an_american_robin_in_england_is_flagged_out_of_range_not_renamed(robins, birdnet) -> None:
    england = birdnet.occurrence(*ENGLAND, MAY)
    decision = _decide(robins[3], england)  # the model: Turdus migratorius 0.945
    assert decision.kind == "unknown" and decision.species == UNKNOWN  # never renamed to a local bird
    assert decision.flag == OUT_OF_RANGE  # a possible rarity, for review
    assert (decision.model_species, decision.model_confidence) == (ROBIN, robins[3][0].score)
    assert "possible rarity" in decision.reason
    # Below rarity_confidence (0.852): out of range, unknown, not flagged; the model's species kept.
    decision = _decide(robins[4], england)
    assert (decision.kind, decision.flag, decision.model_species) == ("unknown", None, ROBIN)
    # The European Robins are in range in England: unchanged.
    assert _decide(robins[2], england) == _decide(robins[2])


def test_a_checklist_does_the_same_without_the_model(robins, aiy, tmp_path: Path) -> None:
    ohio = tmp_path / "ohio.csv"  # an eBird-style export: common and scientific name columns
    ohio.write_text("Common Name,Scientific Name,Frequency\nAmerican Robin,Turdus migratorius,0.62\n"
                    "Eastern Bluebird,Sialia sialis,0.2\nNorthern Cardinal,Cardinalis cardinalis,80%\n")
    england = tmp_path / "england.tsv"  # GBIF-style: scientificName with authors, tab-separated
    england.write_text("scientificName\tnumberOfOccurrences\nErithacus rubecula (Linnaeus, 1758)\t120\n"
                       "Turdus merula Linnaeus, 1758\t300\n")
    at_ohio = ChecklistPrior(ohio, aiy.spec.labels, aiy.spec.no_bird_label).occurrence(None, None, MAY)
    at_england = ChecklistPrior(england, aiy.spec.labels, aiy.spec.no_bird_label).occurrence(None, None, MAY)
    assert at_ohio[ROBIN] == 0.62 and at_ohio["Cardinalis cardinalis"] == 0.8 and at_ohio[EUROPEAN_ROBIN] == 0.0
    assert at_england[EUROPEAN_ROBIN] == 1.0 and at_england[ROBIN] == 0.0

    assert _decide(robins[3], at_ohio).species == ROBIN
    flagged = _decide(robins[1], at_ohio)
    assert (flagged.species, flagged.flag, flagged.model_species) == (UNKNOWN, OUT_OF_RANGE, EUROPEAN_ROBIN)
    flagged = _decide(robins[3], at_england)
    assert (flagged.species, flagged.flag, flagged.model_species) == (UNKNOWN, OUT_OF_RANGE, ROBIN)


def test_the_range_model_runs_once_per_place_and_week(birdnet_geo_dir: Path, aiy: Classifier) -> None:
    prior = BirdNetPrior(birdnet_geo_dir, aiy.spec.labels, aiy.spec.no_bird_label, cache_size=2)
    station = StationPrior(prior, ZoneInfo("America/New_York"), OHIO, {"far": ENGLAND})
    may = datetime(2026, 5, 25, 14, 0, tzinfo=UTC)
    first = station.occurrence_at("cam", may)
    for minute in range(50):  # a busy feeder: many frames, the same place and week
        assert station.occurrence_at("cam", may.replace(minute=minute)) is first
    assert prior.model.invocations == 1
    station.occurrence_at("far", may)  # the camera with its own deployment coordinates
    assert prior.model.invocations == 2
    station.occurrence_at("cam", datetime(2026, 6, 2, tzinfo=UTC))  # the next week
    assert prior.model.invocations == 3
    station.occurrence_at("cam", may)  # evicted (LRU of 2): run again
    assert prior.model.invocations == 4
    station.occurrence_at("cam", datetime(2026, 6, 3, tzinfo=UTC))  # still cached
    assert prior.model.invocations == 4


def test_how_many_aiy_labels_match_birdnet_and_none_is_excluded_for_it(birdnet_geo_dir: Path,
                                                                        aiy_model_dir: Path) -> None:
    """The figure docs/prior.md gives: AIY's 964 species labels with labelmap.csv's names."""
    labels = load_labels_file(aiy_model_dir / "labelmap.csv")
    prior = BirdNetPrior(birdnet_geo_dir, labels, "background")
    hows = [m.how for m in prior.matches.values()]
    assert len(prior.matches) == 964
    assert (hows.count("exact"), hows.count("subspecies"), hows.count("common name")) == (846, 40, 36)
    unmatched = prior.unmatched_labels()
    assert len(unmatched) == 42
    reasons = {m.label: m.reason for m in unmatched}
    assert list(reasons.values()).count("hybrid") == 2 and reasons["Kea"] == "not in the source"
    # Matched through the taxonomy: a subspecies, a renamed genus (same common name), a lumped form.
    assert not prior.matches["Little Shag"].matched  # Microcarbo melanoleucos brevirostris: not in BirdNET
    assert prior.matches["American Crow (caurinus)"].how == "common name"
    assert prior.matches["Eurasian Linnet"].how == "common name"
    # No label without a match is ever out of range, anywhere in any week.
    for where, week in ((OHIO, MAY), (ENGLAND, 1), ((-41.0, 174.0), 30)):
        occurrence = prior.occurrence(*where, week)
        assert all(occurrence.in_range(m.label) is None for m in unmatched)
    kea = [Prediction("Kea", 0.97, 1), Prediction("American Robin", 0.02, 2)]
    assert _decide(kea, prior.occurrence(*OHIO, MAY)) == _decide(kea)  # a Kea in Ohio: no opinion, unchanged


# -- the rule ------------------------------------------------------------------------------------


def _p(*pairs: tuple[str, float]) -> list[Prediction]:
    return [Prediction(label, score, index) for index, (label, score) in enumerate(pairs)]


OCCURRENCE = Occurrence({"local": 0.5, "rare": 0.01, "vagrant": 0.0, "also local": 0.2, "background": 0.0})


def test_without_a_prior_a_decision_is_exactly_todays() -> None:
    predictions = _p(("rare", 0.7), ("local", 0.2))
    assert _decide(predictions) == Decision("species", "rare", 0.7, "ok")
    assert decide(predictions, ClassifyConfig(), NO_BIRD, context=DecisionContext()) == Decision("species", "rare", 0.7, "ok")


def test_an_out_of_range_top1_gives_way_to_the_in_range_rest_by_its_share() -> None:
    decision = _decide(_p(("rare", 0.7), ("local", 0.25), ("vagrant", 0.02)), OCCURRENCE)
    # 0.25 of the 1 - 0.7 - 0.02 = 0.28 the out-of-range species leave.
    assert (decision.kind, decision.species) == ("species", "local")
    assert decision.confidence == pytest.approx(0.25 / 0.28)
    assert (decision.model_species, decision.model_confidence, decision.flag) == ("rare", 0.7, None)
    assert decision.reason.startswith("rare out of range (occurrence 0.010)")
    # The stand-in meets the normal threshold: here it falls short.
    decision = _decide(_p(("rare", 0.6), ("local", 0.1), ("also local", 0.1)), OCCURRENCE)
    assert (decision.kind, decision.species, decision.model_species) == ("unknown", UNKNOWN, "rare")
    # ... and its own per-species threshold and the allow list, as any top-1.
    config = ClassifyConfig(thresholds={"local": 0.95})
    assert _decide(_p(("rare", 0.7), ("local", 0.25)), OCCURRENCE, config).species == UNKNOWN
    config = ClassifyConfig(allow=["also local"])
    assert _decide(_p(("rare", 0.7), ("local", 0.25)), OCCURRENCE, config).reason.endswith("not on the allow list")


def test_a_confident_out_of_range_bird_is_flagged_never_renamed_or_dropped() -> None:
    # A uint8 model's last 1/256 on a local species must not become a certainty.
    decision = _decide(_p(("rare", 0.996), ("local", 0.004)), OCCURRENCE)
    assert (decision.kind, decision.species, decision.flag) == ("unknown", UNKNOWN, OUT_OF_RANGE)
    assert (decision.model_species, decision.model_confidence) == ("rare", 0.996)
    # The bar is [prior] rarity_confidence, carried by the occurrence.
    lenient = Occurrence(OCCURRENCE.scores, rarity_confidence=0.999)
    assert _decide(_p(("rare", 0.996), ("local", 0.004)), lenient).flag is None


def test_in_range_and_unknown_to_the_prior_top1s_are_unchanged() -> None:
    for predictions in (_p(("local", 0.6), ("rare", 0.3)), _p(("not in the prior", 0.9), ("local", 0.05)),
                        _p(("local", 0.3), ("rare", 0.2))):
        assert _decide(predictions, OCCURRENCE) == _decide(predictions)


def test_no_bird_and_deny_come_first_and_no_bird_never_stands_in() -> None:
    assert _decide(_p(("background", 0.9), ("rare", 0.1)), OCCURRENCE).reason == "no bird"
    denied = ClassifyConfig(deny=["rare"])
    assert _decide(_p(("rare", 0.8), ("local", 0.1)), OCCURRENCE, denied).reason == "denied"
    decision = _decide(_p(("rare", 0.5), ("background", 0.45), ("local", 0.04)), OCCURRENCE)
    assert decision.kind == "unknown" and decision.model_species == "rare"  # local 0.04/0.5, not background
    # Nothing in range among the top-k.
    decision = _decide(_p(("rare", 0.5), ("vagrant", 0.3)), OCCURRENCE)
    assert decision.kind == "unknown" and "nothing in range" in decision.reason
    # A detector's bird: the same rule.
    bird = decide_bird(_p(("rare", 0.95), ("local", 0.03)), ClassifyConfig(), NO_BIRD,
                       context=DecisionContext(occurrence=OCCURRENCE))
    assert (bird.kind, bird.flag, bird.model_species) == ("unknown", OUT_OF_RANGE, "rare")


# -- names and weeks -----------------------------------------------------------------------------


def test_names_match_through_the_taxonomy_and_hybrids_get_no_opinion() -> None:
    names = [SourceName("Ardea herodias", "Great Blue Heron"), SourceName("Linaria cannabina", "Eurasian Linnet"),
             SourceName("Urile pelagicus", "Pelagic Cormorant"), SourceName("Mergus serrator", "Red-breasted Merganser"),
             SourceName("Leiothlypis celata", "Orange-crowned Warbler"), SourceName("Ardea alba", "Great Egret"),
             SourceName("Egretta caerulea", "Little Blue Heron"), SourceName("Porphyrio martinica", "Purple Gallinule")]
    labels = [Label(0, "Ardea herodias occidentalis"), Label(1, "Carduelis cannabina", common_name="Eurasian Linnet"),
              Label(2, "Phalacrocorax pelagicus", common_name="Baird's Cormorant"),
              Label(3, "Morus serrator", common_name="Australasian Gannet"),
              Label(4, "Oreothlypis celata", common_name="Orange crowned warbler"),
              Label(5, "Anas superciliosa × platyrhynchos"), Label(6, "BLUE JAY"), Label(7, "Ardea alba"),
              Label(8, "Porphyrio martinicus", "Porphyrio martinicus", "Purple Gallinule"),
              Label(9, "background")]
    found = match_labels(labels, names, skip=["background"])
    assert "background" not in found
    assert {name: (m.how, m.reason) for name, m in found.items()} == {
        "Ardea herodias occidentalis": ("subspecies", ""), "Carduelis cannabina": ("common name", ""),
        "Phalacrocorax pelagicus": ("genus change", ""), "Morus serrator": ("", "not in the source"),
        "Oreothlypis celata": ("common name", ""), "Anas superciliosa × platyrhynchos": ("", "hybrid"),
        "BLUE JAY": ("", "no scientific name"), "Ardea alba": ("exact", ""),
        "Porphyrio martinicus": ("common name", "")}
    assert fold_common("Grey-headed  Chickadee") == fold_common("gray headed chickadee")
    assert clean_scientific("Turdus migratorius Linnaeus, 1766") == ROBIN
    assert clean_scientific("Turdus sp.") is None and clean_scientific("Ardea herodias ssp. occidentalis") == \
        "Ardea herodias occidentalis"


def test_checklists_from_ebird_inaturalist_and_gbif_and_their_mistakes(tmp_path: Path) -> None:
    inat = tmp_path / "inat.csv"
    inat.write_text("id,taxon_species_name,common_name\n1,Turdus migratorius,American Robin\n2,,\n3,Turdus sp.,thrush\n")
    assert [e.name.scientific for e in read_checklist(inat)] == [ROBIN]
    plain = tmp_path / "plain.txt"
    plain.write_text("Turdus migratorius\nSialia sialis\n")
    assert [e.frequency for e in read_checklist(plain)] == [1.0, 1.0]
    for text, message in (("count,total\n3,4\n", "no scientific-name column"),
                          ("name,count\nAmerican Robin,3\n", "column 'name' holds no scientific names"),
                          ("scientific_name,frequency\nTurdus migratorius,3\n", "row 2: frequency '3' is not between"),
                          ("", "empty")):
        bad = tmp_path / "bad.csv"
        bad.write_text(text)
        with pytest.raises(PriorError, match=message):
            read_checklist(bad)
    bad.write_bytes(b"scientific_name\n\xff\xfe\n")
    with pytest.raises(PriorError, match="not UTF-8"):
        read_checklist(bad)


def test_birdnet_weeks_are_four_per_month_in_the_station_zone() -> None:
    assert [birdnet_week(date(2026, 1, d)) for d in (1, 7, 8, 14, 15, 21, 22, 31)] == [1, 1, 2, 2, 3, 3, 4, 4]
    assert birdnet_week(date(2026, 5, 15)) == 19 and birdnet_week(date(2026, 12, 31)) == 48
    late = datetime(2026, 1, 31, 23, 30, tzinfo=UTC)  # already 1 February in Berlin
    assert local_week(late, ZoneInfo("UTC")) == 4 and local_week(late, ZoneInfo("Europe/Berlin")) == 5


# -- configuration, preflight, the daemon and the CLI --------------------------------------------


def _config_errors(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "edge.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    return caught.value.problems


def test_configuration_errors_name_the_dotted_key(tmp_path: Path) -> None:
    assert _config_errors(tmp_path, "[station]\nlatitude = 40.0\n") == [
        "station: latitude and longitude go together: give both or neither"]
    assert _config_errors(tmp_path, "[station]\nlatitude = 95.0\nlongitude = 0.0\n")[0].startswith("station.latitude:")
    assert _config_errors(tmp_path, '[prior]\nsource = "ebird"\n')[0].startswith("prior.source:")
    assert _config_errors(tmp_path, "[prior]\nthreshold = 3\n")[0].startswith("prior.threshold:")
    assert _config_errors(tmp_path, "[prior]\nweek = 49\n")[0].startswith("prior.week:")
    assert _config_errors(tmp_path, "[prior]\nthreshhold = 0.1\n")[0].startswith("prior.threshhold: unknown key")
    (tmp_path / "edge.toml").write_text("[station]\nlatitude = 40\nlongitude = -83\n")  # TOML integers too
    config = load_config(tmp_path / "edge.toml", environ={})
    assert config.station.coordinates == (40.0, -83.0) and config.prior.source == "none"


def test_preflight_refuses_a_prior_without_coordinates_model_or_checklist(tmp_path: Path, make_config) -> None:
    from edge.daemon.preflight import check_prior

    def keys(**sections) -> list[tuple[str, str]]:
        return [(f.key, f.level) for f in check_prior(make_config(**sections), None)]

    assert keys(prior={"source": "birdnet", "model": str(tmp_path)}) == [("station.latitude", "error")]
    assert keys(prior={"source": "birdnet", "model": str(tmp_path / "nowhere")},
                station={"latitude": 40.0, "longitude": -83.0}) == [("prior.model", "error")]
    assert keys(prior={"source": "birdnet", "model": str(tmp_path)},
                station={"latitude": 40.0, "longitude": -83.0})[0][0] == "prior.model"  # no .tflite in it
    assert keys(prior={"source": "checklist"}) == [("prior.checklist", "error")]
    assert keys(prior={"source": "checklist", "checklist": str(tmp_path / "none.csv")}) == [("prior.checklist", "error")]
    (tmp_path / "list.csv").write_text("count\n3\n")
    assert keys(prior={"source": "checklist", "checklist": str(tmp_path / "list.csv")}) == [("prior.checklist", "error")]
    # Every camera with deployment coordinates is enough, without station ones.
    cams = [{"name": "cam", "path": str(tmp_path / "cam"), "deployment": {"latitude": 52.0, "longitude": -1.0}}]
    assert keys(cameras=cams, prior={"source": "birdnet", "model": str(tmp_path / "nowhere")})[0][0] == "prior.model"


def test_check_and_run_refuse_and_create_nothing(tmp_path: Path, aiy_model: Path, cli_env) -> None:
    state = tmp_path / "state"
    config = tmp_path / "edge.toml"
    config.write_text(f'[model]\npath = "{aiy_model}"\n[storage]\ndatabase = "{state / "trailcam.db"}"\n'
                      f'[[cameras]]\nname = "cam"\npath = "{tmp_path}"\n[prior]\nsource = "birdnet"\n')
    for command in (["check"], ["run", "--once"]):
        done = subprocess.run([sys.executable, "-m", "edge", *command, "--config", str(config)], env=cli_env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 2, done.stdout + done.stderr
        assert "station.latitude: the BirdNET range prior needs the station's coordinates" in done.stdout + done.stderr
        assert not state.exists()


def test_edge_run_counts_with_the_prior_per_camera_place(tmp_path: Path, make_config, birdnet_geo_dir: Path,
                                                         bird_photo) -> None:
    """The daemon's own path: one frame of photo 3 (American Robin 0.945) at an Ohio camera and one at
    an English camera (the station's coordinates), May; a daemon built without the CLI also refuses
    a broken [prior] before it creates anything."""
    from edge.daemon.lifecycle import DaemonError
    from edge.daemon.wiring import build

    ohio_dir, england_dir = tmp_path / "ohio", tmp_path / "england"
    cameras = [{"name": "ohio", "path": str(ohio_dir), "deployment": {"latitude": 40.0, "longitude": -83.0}},
               {"name": "england", "path": str(england_dir)}]
    taken = datetime(2026, 5, 25, 9, 0)
    for minute, folder in enumerate((ohio_dir, england_dir)):  # other EXIF: other bytes, not a duplicate
        folder.mkdir()
        (folder / "IMG_0001.JPG").write_bytes(jpeg_bytes(bird_photo("AMERICAN ROBIN", 3), taken.replace(minute=minute),
                                                         offset="+00:00"))
    broken = make_config(cameras=cameras, prior={"source": "birdnet", "model": str(tmp_path / "nowhere")},
                         station={"latitude": 52.0, "longitude": -1.0})
    with pytest.raises(DaemonError, match="prior.model"):
        build(broken, once=True, field=False).start()
    assert not (tmp_path / "trailcam.db").exists()

    config = make_config(cameras=cameras, prior={"source": "birdnet", "model": str(birdnet_geo_dir)},
                         station={"latitude": 52.0, "longitude": -1.0, "timezone": "Europe/London"})
    daemon = build(config, once=True, field=False)
    outcomes = []
    daemon.after_frame.append(outcomes.append)
    daemon.start()
    try:
        daemon.loop()
    finally:
        daemon.stop()
    species = {outcome.camera: outcome.species for outcome in outcomes}
    assert species == {"ohio": ROBIN, "england": UNKNOWN}
    decisions = {o.camera: o.commit.frame for o in outcomes}
    assert decisions["england"].species == UNKNOWN and decisions["ohio"].species == ROBIN
    assert daemon.processor.prior.prior.model.invocations == 2  # one per place and week


def test_edge_classify_shows_the_model_and_the_range_aware_species(aiy_model: Path, birdnet_geo_dir: Path,
                                                                   bird_photo, cli_env, tmp_path: Path) -> None:
    photo = bird_photo("AMERICAN ROBIN", 3)
    base = [sys.executable, "-m", "edge", "classify", "--model", str(aiy_model), str(photo),
            "--prior-model", str(birdnet_geo_dir), "--date", "2026-05-25"]
    done = subprocess.run([*base, "--lat", "52", "--lon", "-1", "--format", "json"], env=cli_env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    image = json.loads(done.stdout)["images"][0]
    assert image["top"][0]["label"] == ROBIN
    assert image["prior"] | {"in_range": 0} == {"source": "birdnet", "latitude": 52.0, "longitude": -1.0, "week": 20,
                                                "date": "2026-05-25", "in_range": 0}
    assert {k: image["decision"][k] for k in ("species", "model_species", "flag")} == {
        "species": UNKNOWN, "model_species": ROBIN, "flag": OUT_OF_RANGE}

    done = subprocess.run([*base, "--lat", "40", "--lon", "-83"], env=cli_env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "range-aware (birdnet at 40.0000, -83.0000, week 20): Turdus migratorius 0.95" in done.stdout

    done = subprocess.run([*base, "--lat", "40"], env=cli_env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "--lat and --lon go together" in done.stderr
    done = subprocess.run([*base[:-4], "--lat", "40", "--lon", "-83", "--prior-model", str(tmp_path)],
                          env=cli_env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "\nedge: --prior-model: " in "\n" + done.stderr, done.stderr


def test_edge_check_says_what_matched_and_lists_the_labels_without_a_match(make_config, birdnet_geo_dir: Path,
                                                                            aiy: Classifier) -> None:
    from edge.daemon.preflight import check_prior

    config = make_config(prior={"source": "birdnet", "model": str(birdnet_geo_dir)},
                         station={"latitude": 40.0, "longitude": -83.0})
    findings = check_prior(config, aiy)
    assert [(f.key, f.level) for f in findings] == [("prior", "ok"), ("prior", "warning")]
    assert "886 of 964 labels matched, threshold 0.03, rarity confidence 0.9" in findings[0].message
    assert findings[1].message.startswith("78 label(s) found no name in the birdnet (no prior opinion: never out of "
                                          "range for it): ")
