"""The species prior ("where and when", issue 19): species top-1 per bird without it and with it,
side by side in one run on the same photos and the same classifier outputs.

    python -m benchmarks.prior_bench [--repeat 20] [--threads 2]

A regional set from ../shared/data/birds25 (125 photos, 25 feeder species, 5 each): each photo is
placed at the station and week where BirdNET's range model gives its species the highest
occurrence, chosen among NORTH_AMERICA (five stations x four weeks); the birds25 species that
occur at none of them (the Eurasian ones: bullfinch, magpie, goldfinch, hawfinch, great tit)
are placed the same way among EUROPE. Models: AIY birds V1 (labels from labelmap.csv,
"background" = no bird) and the BirdNET range model (../shared/models/birdnet_geo_v2_4), the
prior with its defaults (threshold 0.03, rarity_confidence 0.9) and the [classify] defaults.

Columns (each a decision of the same top-5):
  without prior   decide() as the daemon without [prior]
  with prior      decide() with the occurrence at the photo's station and week
  with roll-up    with the prior and the taxonomic roll-up (`rollup_for`, edge.classify.taxonomy),
                  decided on every label's score as the daemon does with the roll-up on

Scoring: a bird is right when the decision names its species (birds25 folders map to AIY labels
by common name as benchmarks.detect_bench.species_map does: "COMMON STARLING" = European Starling,
subspecies labels count as the species); "species or genus" also accepts a rolled-up decision
at the right genus. `unknown` is not right, and is not a wrong name either.

Cost: per frame, the prior's work (the cached occurrence lookup for the camera and capture time
+ decide() with the context) minus decide() without it, median over all photos x --repeat,
against the frame time measured in the same run (decode + classify + decide, the pipeline's
own work without the store: a lower bound, so the share is an upper bound). The range model's
own run (once per place and week) is reported apart, with its amortised share at one run per
week for a camera taking FRAMES_PER_WEEK frames.

Flags: the same photos at a station where their species is NOT expected (North American
species in England, the Eurasian ones in Ohio), week 20: every photo whose model top-1 is out of
range and scored >= rarity_confidence must be flagged out_of_range (goal 100 %), and none may be
dropped (decision "none").

Prints Markdown tables for docs/benchmarks.md, section "Species prior".
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("TRAILCAM_SHARED", REPO.parent / "shared"))
AIY_DIR = SHARED / "models" / "aiy_birds_v1"
GEO_DIR = SHARED / "models" / "birdnet_geo_v2_4"
BIRDS = SHARED / "data" / "birds25"

# (name, latitude, longitude): a few feeder places; weeks: mid-January, late May, mid-July, mid-October.
NORTH_AMERICA = (("Columbus, Ohio", 40.0, -83.0), ("Ithaca, New York", 42.44, -76.50),
                 ("Denver, Colorado", 39.74, -104.99), ("Austin, Texas", 30.27, -97.74),
                 ("Seattle, Washington", 47.61, -122.33))
EUROPE = (("Oxford, England", 51.75, -1.25), ("Berlin, Germany", 52.52, 13.40), ("Madrid, Spain", 40.42, -3.70))
WEEKS = (3, 20, 27, 39)
ENGLAND, OHIO = ("Oxford, England", 51.75, -1.25), ("Columbus, Ohio", 40.0, -83.0)
FLAG_WEEK = 20
FRAMES_PER_WEEK = 500  # a busy feeder camera; the range model runs once per place and week

GOAL_GAIN_POINTS = 5.0     # with prior vs without, where the base classifier is below 95 %
GOAL_COST_SHARE = 0.01     # the prior's cost per frame / the frame time
GOAL_FLAGGED = 1.0


@dataclass
class Photo:
    folder: str
    path: Path
    accepted: frozenset[str]        # AIY label names that are this species
    genus: str | None
    station: tuple[str, float, float] = ("", 0.0, 0.0)
    week: int = 0
    occurrence: float = 0.0
    predictions: list = field(default_factory=list)
    all_predictions: list = field(default_factory=list)
    frame_ms: list[float] = field(default_factory=list)


def rollup_for(classifier):
    """The taxonomic roll-up for DecisionContext.rollup ([taxonomy] defaults: genus 0.5, family 0.6,
    order 0.7; families need a taxonomy file, so here it rolls up to genus only)."""
    from edge.classify.taxonomy import build_rollup

    return build_rollup(classifier.spec.labels)


def _percent(part: int, whole: int) -> str:
    return f"{part}/{whole} ({100.0 * part / whole:.0f} %)" if whole else "n/a"


def _median_ms(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.prior_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=20, help="timing repetitions per photo (default 20)")
    parser.add_argument("--threads", type=int, default=2, help="classifier interpreter threads (default 2)")
    args = parser.parse_args(argv)
    missing = [p for p in (AIY_DIR / "model.tflite", GEO_DIR / "BirdNET_GLOBAL_6K_V2.4_MData_Model_V2_FP16.tflite", BIRDS)
               if not p.exists()]
    if missing:
        print(f"prior_bench: needs ../shared: {missing[0]} is absent (set TRAILCAM_SHARED)", file=sys.stderr)
        return 2

    from benchmarks.detect_bench import machine, species_map
    from edge.classify.decision import OUT_OF_RANGE, DecisionContext, decide
    from edge.classify.model import Classifier, resolve_model
    from edge.classify.prior import BirdNetPrior, StationPrior
    from edge.config.classify import ClassifyConfig
    from edge.ingest.imaging import decode

    classifier = Classifier(resolve_model(AIY_DIR / "model.tflite", AIY_DIR / "labelmap.csv"), threads=args.threads)
    labels = classifier.spec.labels
    no_bird = frozenset({classifier.spec.no_bird_label}) if classifier.spec.no_bird_label else frozenset()
    started = time.perf_counter()
    prior = BirdNetPrior(GEO_DIR, labels, classifier.spec.no_bird_label)
    load_ms = (time.perf_counter() - started) * 1000
    config = ClassifyConfig()
    matched = sum(m.matched for m in prior.matches.values())
    print(f"names: {matched} of {len(prior.matches)} AIY species labels match BirdNET's "
          f"({len(prior.matches) - matched} without a match: no prior opinion); range model loaded in {load_ms:.0f} ms")

    folders = sorted(p.name for p in BIRDS.iterdir() if p.is_dir())
    species, unmappable = species_map(folders, labels)
    if unmappable:
        print(f"prior_bench: birds25 folders without an AIY label: {', '.join(unmappable)}", file=sys.stderr)
    by_name = {label.name: label for label in labels}
    photos: list[Photo] = []
    for folder in folders:
        if folder not in species:
            continue
        accepted = species[folder]
        scientific = by_name[sorted(accepted, key=len)[0]].scientific_name or ""
        for path in sorted((BIRDS / folder).glob("*.jpg")):
            photos.append(Photo(folder, path, accepted, scientific.split()[0] if scientific else None))

    # Place each species where the range model expects it most (North America first).
    model_runs_ms: list[float] = []
    placement: dict[str, tuple[tuple[str, float, float], int, float]] = {}
    for folder in sorted({p.folder for p in photos}):
        accepted = species[folder]
        for stations in (NORTH_AMERICA, EUROPE):
            best = None
            for station in stations:
                for week in WEEKS:
                    before = prior.model.invocations
                    tic = time.perf_counter()
                    occurrence = prior.occurrence(station[1], station[2], week)
                    if prior.model.invocations > before:
                        model_runs_ms.append((time.perf_counter() - tic) * 1000)
                    score = max((occurrence.get(name, 0.0) for name in accepted), default=0.0)
                    if best is None or score > best[2]:
                        best = (station, week, score)
            assert best is not None
            if best[2] >= prior.threshold:
                placement[folder] = best
                break
        else:
            placement[folder] = best  # nowhere expected: the best it found, reported
    for photo in photos:
        photo.station, photo.week, photo.occurrence = placement[photo.folder]

    # The classifier once per photo (its top-5 is what all columns decide), and the frame time.
    for photo in photos:
        data = photo.path.read_bytes()
        for _ in range(max(1, args.repeat // 4)):
            tic = time.perf_counter()
            frame = decode(data, classifier.input_size)
            predictions, _ = classifier.classify(frame.rgb, 5)
            decide(predictions, config, no_bird)
            photo.frame_ms.append((time.perf_counter() - tic) * 1000)
        photo.predictions = predictions
        # Every label's score: what the daemon decides on with the roll-up on (it sums a genus's
        # mass over all its species), for the "with roll-up" column.
        photo.all_predictions, _ = classifier.classify(frame.rgb, len(classifier.spec.labels))

    rollup = rollup_for(classifier)
    zone = UTC
    stations = {name: StationPrior(prior, zone, (lat, lon)) for name, lat, lon in {p.station for p in photos}}

    def captured(week: int) -> datetime:
        month, quarter = divmod(week - 1, 4)
        return datetime(2026, month + 1, 1 + 7 * quarter, 12, tzinfo=UTC)

    def context_for(photo: Photo, with_rollup: bool = False) -> DecisionContext:
        occurrence = stations[photo.station[0]].occurrence_at("bench", captured(photo.week))
        return DecisionContext(occurrence=occurrence, rollup=rollup if with_rollup else None)

    @dataclass
    class Score:
        right: int = 0
        right_or_genus: int = 0
        wrong: int = 0
        unknown: int = 0
        changed: int = 0

    def score(decide_one: Callable[[Photo], object]) -> Score:
        result = Score()
        for photo in photos:
            decision = decide_one(photo)
            if decision.kind == "species" and decision.species in photo.accepted:
                result.right += 1
                result.right_or_genus += 1
            elif decision.kind == "species" and getattr(decision, "rank", "species") == "genus" \
                    and photo.genus and str(decision.species).split()[0] == photo.genus:
                result.right_or_genus += 1
            elif decision.kind == "species":
                result.wrong += 1
            else:
                result.unknown += 1
            if decision.model_species is not None:
                result.changed += 1
        return result

    base = score(lambda photo: decide(photo.predictions, config, no_bird))
    with_prior = score(lambda photo: decide(photo.predictions, config, no_bird, context=context_for(photo)))
    with_rollup = (score(lambda photo: decide(photo.all_predictions, config, no_bird,
                                              context=context_for(photo, True)))
                   if rollup is not None else None)

    # The prior's cost per frame, side by side with decide() alone, in the same loop.
    plain_ms, prior_ms = [], []
    for _ in range(args.repeat):
        for photo in photos:
            when = captured(photo.week)
            station = stations[photo.station[0]]
            tic = time.perf_counter()
            decide(photo.predictions, config, no_bird)
            toc = time.perf_counter()
            decide(photo.predictions, config, no_bird,
                   context=DecisionContext(occurrence=station.occurrence_at("bench", when)))
            prior_ms.append((time.perf_counter() - toc) * 1000)
            plain_ms.append((toc - tic) * 1000)
    frame_ms = _median_ms([ms for photo in photos for ms in photo.frame_ms])
    extra_ms = _median_ms(prior_ms) - _median_ms(plain_ms)
    model_ms = _median_ms(model_runs_ms)
    amortised_ms = model_ms / FRAMES_PER_WEEK

    # Confident out-of-range birds: the same photos where their species is not expected.
    flag_total = flagged = dropped = 0
    eurasian = {folder for folder, (station, _, _) in placement.items() if station in EUROPE}
    away = {name: StationPrior(prior, zone, (lat, lon)) for name, lat, lon in (ENGLAND, OHIO)}
    for photo in photos:
        station = away[OHIO[0] if photo.folder in eurasian else ENGLAND[0]]
        occurrence = station.occurrence_at("bench", captured(FLAG_WEEK))
        top = photo.predictions[0]
        if occurrence.in_range(top.label) is False and top.score >= occurrence.rarity_confidence:
            flag_total += 1
            decision = decide(photo.predictions, config, no_bird, context=DecisionContext(occurrence=occurrence))
            flagged += decision.flag == OUT_OF_RANGE
            dropped += decision.kind == "none"

    n = len(photos)
    print()
    print(f"Machine: {machine(classifier.runtime)}; {n} photos, {len(placement)} species; "
          f"{args.repeat} timing repetitions")
    print()
    print("| placement | species | photos | station, week | occurrence |")
    print("|---|---:|---:|---|---:|")
    for region, name in ((NORTH_AMERICA, "North America"), (EUROPE, "Europe")):
        chosen = {f: v for f, v in placement.items() if v[0] in region}
        if chosen:
            lowest = min(v[2] for v in chosen.values())
            places = sorted({f"{v[0][0]} w{v[1]}" for v in chosen.values()})
            print(f"| {name} | {len(chosen)} | {sum(p.folder in chosen for p in photos)} | {', '.join(places)} | "
                  f"≥ {lowest:.2f} |")
    print()
    print("| species top-1 per bird (125 birds25 photos at their stations) | without prior | with prior | with prior + roll-up |")
    print("|---|---:|---:|---:|")
    rows = (("species right", "right"), ("species or genus right", "right_or_genus"),
            ("named a wrong species", "wrong"), ("`unknown`", "unknown"),
            ("decisions the prior changed (model's top-1 out of range)", "changed"))
    for title, attribute in rows:
        cells = [_percent(getattr(s, attribute), n) for s in (base, with_prior)]
        cells.append(_percent(getattr(with_rollup, attribute), n) if with_rollup else "n/a (no edge.classify.taxonomy)")
        print(f"| {title} | " + " | ".join(cells) + " |")
    print()
    print("| cost (medians) | ms |")
    print("|---|---:|")
    print(f"| frame: decode + classify + decide | {frame_ms:.3f} |")
    print(f"| decide() without prior | {_median_ms(plain_ms):.4f} |")
    print(f"| occurrence lookup (cached) + decide() with prior | {_median_ms(prior_ms):.4f} |")
    print(f"| the prior's cost per frame | {extra_ms:.4f} ({100 * extra_ms / frame_ms:.2f} % of the frame) |")
    print(f"| range model run, once per place and week ({len(model_runs_ms)} runs) | {model_ms:.2f} "
          f"(÷ {FRAMES_PER_WEEK} frames a week: {amortised_ms:.4f}) |")
    print(f"| range model load + name matching, once at start | {load_ms:.0f} |")
    print()
    print("| confident out-of-range birds (top-1 ≥ 0.9, the photos away from home, week 20) | result |")
    print("|---|---:|")
    print(f"| flagged out_of_range | {_percent(flagged, flag_total)} |")
    print(f"| dropped (decision none) | {_percent(dropped, flag_total)} |")
    print()
    base_share = base.right / n
    gain = 100.0 * (with_prior.right - base.right) / n
    share = (extra_ms + amortised_ms) / frame_ms
    goals = (
        (f"prior adds ≥ {GOAL_GAIN_POINTS:.0f} points of species top-1 (base {100 * base_share:.0f} % < 95 %)",
         f"{gain:+.1f} points", gain >= GOAL_GAIN_POINTS if base_share < 0.95 else True),
        ("prior's cost < 1 % of the frame time (cached lookup + rule, + the amortised model run)",
         f"{100 * share:.2f} %", share < GOAL_COST_SHARE),
        ("confident out-of-range birds flagged: 100 %, none dropped",
         f"{_percent(flagged, flag_total)} flagged, {dropped} dropped", flag_total > 0 and flagged == flag_total and not dropped),
    )
    print("| goal | figure | met? |")
    print("|---|---|---|")
    for goal, figure, met in goals:
        print(f"| {goal} | {figure} | {'met' if met else '**missed**'} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
