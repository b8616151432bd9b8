"""benchmarks.detect_bench's scoring: the species map (every birds25 folder has an AIY label)
and the box matching its recall, precision and species figures rest on."""

from __future__ import annotations

from pathlib import Path

from benchmarks.detect_bench import Found, fit_ahead_table, match, size_class, species_map
from benchmarks.scenes import PastedBird


def test_every_birds25_folder_maps_to_an_aiy_label(birds25_dir: Path, aiy_model_dir: Path) -> None:
    from edge.classify.labels import load_labels_file

    labels = load_labels_file(aiy_model_dir / "labelmap.csv")
    folders = sorted(p.name for p in birds25_dir.iterdir() if p.is_dir())
    mapped, missing = species_map(folders, labels)
    assert missing == [] and len(mapped) == 25
    assert mapped["NORTHERN CARDINAL"] == {"Northern Cardinal"}
    assert mapped["PARUS MAJOR"] == {"Great Tit"}  # by scientific name
    assert mapped["COMMON STARLING"] == {"European Starling"}  # the alias table
    assert "Slate-colored Junco" in mapped["DARK EYED JUNCO"]  # a subspecies counts as its species
    assert "Yellow-eyed Junco" not in mapped["DARK EYED JUNCO"]
    _, unmappable = species_map(["NO SUCH BIRD"], labels)
    assert unmappable == ["NO SUCH BIRD"]


def _bird(box: tuple[float, float, float, float]) -> PastedBird:
    return PastedBird("X", Path("x.jpg"), box, (box[2] - box[0]) * (box[3] - box[1]))


def test_matching_is_one_to_one_by_iou_at_least_0_3() -> None:
    truth = [_bird((0.1, 0.1, 0.3, 0.3)), _bird((0.5, 0.5, 0.9, 0.9))]
    found = [
        Found((0.52, 0.52, 0.85, 0.85), "species", "A"),  # IoU ~0.68 with the second bird
        Found((0.15, 0.15, 0.3, 0.3), "species", "B"),  # IoU 0.56 with the first
        Found((0.55, 0.55, 0.8, 0.8), "species", "C"),  # also inside the second: already taken
        Found((0.1, 0.1, 0.16, 0.16), "unknown", None),  # IoU 0.09: too small to match
    ]
    assert match(truth, found) == {1: 0, 0: 1}
    assert match(truth, [Found(None, "species", "A")]) == {}
    assert [size_class(f) for f in (0.02, 0.05, 0.15, 0.5)] == [0.03, 0.08, 0.20, 0.20]


def test_the_fit_ahead_table_reads_medians_and_their_ratios() -> None:
    figures = {"in turn": [80.0, 100.0, 90.0], "in turn_invokes": [70.0, 80.0, 75.0],
               "ahead": [72.0, 90.0, 81.0], "ahead_invokes": [70.0, 80.0, 75.0]}
    lines = fit_ahead_table({"1080p": figures})
    assert lines[2] == "| 1080p: ms per frame (median) | 90.0 | 81.0 | 0.90 |"
    assert lines[3] == "| 1080p: model invokes, ms per frame | 75.0 | 75.0 | |"
    assert lines[4] == "| 1080p: ms per frame / invokes | 1.20 | 1.08 | |"
