"""Detect, then classify: three routes side by side on the same synthetic trail-camera frames.

    python -m benchmarks.detect_bench [--scenes 60] [--scenes-12mp 30] [--seed 0] [--threads 2] [--containment X] [--detector-threshold X]
                                      [--fit-ahead-rounds 3] [--only-fit-ahead]

Frames: benchmarks.scenes.scene_set, real birds25 photos pasted at 3 / 8 / 20 % of the frame
into generated foliage, ~30 % empty, 1-3 birds otherwise; 1920x1080 and a 12 MP (4000x3000)
set, JPEG quality 90. Models: the shared COCO SSD MobileNet v1 (detector) and AIY birds V1
(classifier, labels from its labelmap.csv, "background" = no bird), 2 threads each.

Routes, each from the frame's bytes to the birds it counts:
  (a) whole frame: decode to 224x224, classify, decide (edge.classify.decision.decide with
      the default [classify] settings): 1 bird of the decided species, 0 when it is "none".
  (b) detect on the full frame only (tiles "off") → crop each box → classify → decide.
  (c) detect on the full frame and on tiles ("auto") → crop → classify → decide.
A detection whose decision is "none" (the classifier says background) is not counted;
"unknown" is (a bird, species uncertain), as the daemon counts it.

Scoring:
  detection recall / precision per size class: the finder's boxes (every box, before the
    classifier) against the pasted regions, one-to-one, greedy by IoU, IoU >= 0.3 (the pasted
    region is the photo's square centre crop, the bird about half of it: a tight box around
    the bird has IoU ~0.4-0.7 with it). A ground-truth bird's class is its area fraction; an
    unmatched box is put in the class nearest (log scale) to its area divided by the median
    box/region area ratio of the matched pairs. n/a for route (a): it has no boxes.
  species top-1 per bird: a ground-truth bird is right when the detection matched to it is
    decided as its species. Route (a) has one decision per frame and no box: it is credited
    to one bird of that species in the frame, if any (so at most one bird per frame is right).
    birds25 folders map to AIY labels by common or scientific name (case, hyphens and spaces
    folded), through SPECIES_ALIASES where the names differ; a label of a subspecies
    (scientific name = the species' + one more word) counts as its species.
  exact count: frames whose number of counted birds equals the number pasted.
  empty reported empty: frames with no bird pasted where the route counts none.
  ms per frame: wall time from bytes to decisions (median, two warm-up frames per route
    excluded) next to the median of the summed invoke times in the same frame (detector +
    classifier, as the models' own timers report them) and their ratio.

Needs ../shared (both models, birds25) and edge.detect. Prints Markdown tables for
docs/benchmarks.md, section "Detect, then classify".
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmarks.scenes import PastedBird, scene_set

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("TRAILCAM_SHARED", REPO.parent / "shared"))
AIY_DIR = SHARED / "models" / "aiy_birds_v1"
SSD_DIR = SHARED / "models" / "ssd_mobilenet_v1_coco"
BIRDS = SHARED / "data" / "birds25"

SIZE_CLASSES = (0.03, 0.08, 0.20)
MATCH_IOU = 0.3
WARM_UP = 2
JPEG_QUALITY = 90
# birds25 (Kaggle) names that are no AIY common or scientific name, folded as _fold() does.
SPECIES_ALIASES = {"common starling": "European Starling"}  # Sturnus vulgaris, same species

GOAL_SPECIES_GAIN = 2.5  # (c) species top-1 per bird vs (a)
GOAL_EXACT_COUNT = 0.75
GOAL_EMPTY = 0.97
GOAL_MS_OVER_INVOKES = 1.2
GOAL_12MP_OVER_1080P = 1.3

ROUTES = ("a", "b", "c")
ROUTE_NAMES = {"a": "(a) whole frame", "b": "(b) detect, full frame", "c": "(c) detect + tiles"}


def machine(runtime: str) -> str:
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{model}, {os.cpu_count()} cores (load {load:.1f} at the end), Python {platform.python_version()}, {runtime}"


# -- species names ------------------------------------------------------------------------------


def _fold(name: str) -> str:
    return re.sub(r"[\s\-_]+", " ", name).strip().casefold()


def species_map(folders: Sequence[str], labels: Sequence) -> tuple[dict[str, frozenset[str]], list[str]]:
    """birds25 folder → the AIY label names that count as that species; and the unmappable folders.

    `labels`: edge.classify.labels.Label (name, scientific_name, common_name) as loaded from
    labelmap.csv. A folder matches a label's common or scientific name after _fold(), or
    SPECIES_ALIASES' name for it; the species' subspecies labels are accepted too.
    """
    by_name: dict[str, object] = {}
    for label in labels:
        for name in (label.common_name, label.scientific_name, label.name):
            if name:
                by_name.setdefault(_fold(name), label)
    mapped: dict[str, frozenset[str]] = {}
    missing = []
    for folder in folders:
        key = _fold(folder)
        label = by_name.get(key) or by_name.get(_fold(SPECIES_ALIASES.get(key, "")))
        if label is None:
            missing.append(folder)
            continue
        accepted = {label.name}
        if label.scientific_name:
            prefix = label.scientific_name + " "
            accepted |= {o.name for o in labels if o.scientific_name and o.scientific_name.startswith(prefix)
                         and len(o.scientific_name.split()) == len(label.scientific_name.split()) + 1}
        mapped[folder] = frozenset(accepted)
    return mapped, missing


# -- one route on one frame -----------------------------------------------------------------------


@dataclass
class Found:
    box: tuple[float, float, float, float] | None  # ymin, xmin, ymax, xmax; None for the whole frame
    kind: str  # the decision: "species" | "unknown" | "none"
    species: str | None


@dataclass
class FrameRun:
    found: list[Found]
    wall_ms: float
    invoke_ms: float
    detector_invokes: int = 0

    @property
    def counted(self) -> list[Found]:
        return [f for f in self.found if f.kind != "none"]


@dataclass
class Models:
    classifier: object
    detector: object
    no_bird: frozenset[str]
    aliases: dict[str, set[str]]
    finders: dict[str, object] = field(default_factory=dict)


def load_models(threads: int, containment: float | None = None, threshold: float | None = None) -> Models:
    from edge.classify.model import load_classifier
    from edge.config.detector import DetectorConfig
    from edge.detect.finder import BirdFinder, FinderSettings
    from edge.detect.model import Detector, resolve_detector

    classifier = load_classifier(AIY_DIR / "model.tflite", AIY_DIR / "labelmap.csv", "background", threads=threads)
    defaults = DetectorConfig()  # the daemon's defaults, unless the command line says otherwise
    detector = Detector(resolve_detector(SSD_DIR), threads=threads,
                        score_threshold=threshold if threshold is not None else defaults.threshold,
                        iou_threshold=defaults.iou_threshold)
    aliases = {}
    for label in classifier.spec.labels:
        others = {n for n in (label.scientific_name, label.common_name) if n and n != label.name}
        if others:
            aliases[label.name] = others
    no_bird = frozenset({classifier.spec.no_bird_label}) if classifier.spec.no_bird_label else frozenset()
    models = Models(classifier, detector, no_bird, aliases)
    common = dict(tile_overlap=defaults.tile_overlap, iou_threshold=defaults.iou_threshold,
                  containment=containment if containment is not None else defaults.containment,
                  crop_margin=defaults.crop_margin)
    models.finders = {"b": BirdFinder(detector, FinderSettings(tiles="off", **common)),
                      "c": BirdFinder(detector, FinderSettings(tiles="auto", **common)),
                      # Route (c) with each tile fitted after the invoke before it (fit_ahead off):
                      # the fit-ahead comparison.
                      "c-in-turn": BirdFinder(detector, FinderSettings(tiles="auto", **common), fit_ahead=False)}
    return models


def _decide(models: Models, rgb: np.ndarray, *, bird: bool = False) -> tuple[object, float]:
    """The daemon's decision: a whole frame by `decide`, a detector's bird by `decide_bird`
    (which counts a crop the classifier calls background as an `unknown` bird, as the daemon does)."""
    from edge.classify.decision import decide, decide_bird
    from edge.config.classify import ClassifyConfig

    predictions, ms = models.classifier.classify(rgb, top_k=5)
    rule = decide_bird if bird else decide
    return rule(predictions, ClassifyConfig(), models.no_bird, models.aliases), ms


def run_whole(models: Models, data: bytes) -> FrameRun:
    from edge.ingest.imaging import decode

    started = time.perf_counter()
    frame = decode(data, models.classifier.input_size)
    decision, ms = _decide(models, frame.rgb)
    wall = (time.perf_counter() - started) * 1000.0
    return FrameRun([Found(None, decision.kind, decision.species)], wall, ms)


def run_detect(models: Models, route: str, data: bytes) -> FrameRun:
    started = time.perf_counter()
    located = models.finders[route].locate(data, models.classifier.input_size)
    found, classify_ms = [], 0.0
    for bird in located.birds:
        decision, ms = _decide(models, bird.crop, bird=True)
        classify_ms += ms
        found.append(Found(bird.box.coords, decision.kind, decision.species))
    wall = (time.perf_counter() - started) * 1000.0
    return FrameRun(found, wall, located.detector_ms + classify_ms, located.invokes)


# -- scoring ---------------------------------------------------------------------------------------


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    top, left = max(a[0], b[0]), max(a[1], b[1])
    bottom, right = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, bottom - top) * max(0.0, right - left)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match(truth: Sequence[PastedBird], found: Sequence[Found]) -> dict[int, int]:
    """Ground-truth index → found index, one to one, greedy by IoU (>= MATCH_IOU)."""
    pairs = sorted(((_iou(t.box, f.box), ti, fi) for ti, t in enumerate(truth) for fi, f in enumerate(found) if f.box),
                   reverse=True)
    matched: dict[int, int] = {}
    used: set[int] = set()
    for value, ti, fi in pairs:
        if value < MATCH_IOU:
            break
        if ti not in matched and fi not in used:
            matched[ti] = fi
            used.add(fi)
    return matched


def size_class(fraction: float) -> float:
    return min(SIZE_CLASSES, key=lambda c: abs(math.log(fraction / c)))


def _area(box: Sequence[float]) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


@dataclass
class RouteScore:
    frames: int = 0
    gt_birds: int = 0
    right_species: int = 0
    exact_count: int = 0
    empty_frames: int = 0
    empty_reported_empty: int = 0
    recall: dict[float, list[int]] = field(default_factory=lambda: {c: [0, 0] for c in SIZE_CLASSES})  # hit, total
    precision: dict[float, list[int]] = field(default_factory=lambda: {c: [0, 0] for c in SIZE_CLASSES})  # tp, boxes
    wall_ms: list[float] = field(default_factory=list)
    invoke_ms: list[float] = field(default_factory=list)
    detector_invokes: list[int] = field(default_factory=list)
    counted: int = 0  # birds counted (decision "species" or "unknown"), all frames
    unknown: int = 0  # of those, decided "unknown" (top-1 below the threshold)
    boxes: bool = True
    unmappable_birds: int = 0


def score(route: str, scenes_truth: Sequence[Sequence[PastedBird]], runs: Sequence[FrameRun],
          species: dict[str, frozenset[str]]) -> RouteScore:
    result = RouteScore(boxes=route != "a")
    matched_ratio: list[float] = []
    unmatched_areas: list[float] = []
    for truth, run in zip(scenes_truth, runs):
        result.frames += 1
        result.gt_birds += len(truth)
        result.exact_count += len(run.counted) == len(truth)
        if not truth:
            result.empty_frames += 1
            result.empty_reported_empty += not run.counted
        result.counted += len(run.counted)
        result.unknown += sum(f.kind == "unknown" for f in run.counted)
        result.wall_ms.append(run.wall_ms)
        result.invoke_ms.append(run.invoke_ms)
        result.detector_invokes.append(run.detector_invokes)
        result.unmappable_birds += sum(t.species not in species for t in truth)
        if route == "a":
            decided = run.found[0].species if run.found[0].kind == "species" else None
            result.right_species += any(decided in species.get(t.species, ()) for t in truth)
            continue
        pairs = match(truth, run.found)
        for ti, t in enumerate(truth):
            klass = size_class(t.area_fraction)
            result.recall[klass][1] += 1
            if ti in pairs:
                found = run.found[pairs[ti]]
                result.recall[klass][0] += 1
                result.precision[klass][0] += 1
                result.precision[klass][1] += 1
                matched_ratio.append(_area(found.box) / _area(t.box))
                result.right_species += found.kind == "species" and found.species in species.get(t.species, ())
        used = set(pairs.values())
        unmatched_areas += [_area(f.box) for fi, f in enumerate(run.found) if fi not in used]
    tightness = statistics.median(matched_ratio) if matched_ratio else 1.0
    for area in unmatched_areas:
        result.precision[size_class(max(area, 1e-6) / tightness)][1] += 1
    return result


# -- the run ------------------------------------------------------------------------------------------


def measure(models: Models, payloads: Sequence[bytes], route: str) -> list[FrameRun]:
    runner: Callable[[bytes], FrameRun] = (lambda d: run_whole(models, d)) if route == "a" else (lambda d: run_detect(models, route, d))
    for data in payloads[:WARM_UP]:
        runner(data)
    return [runner(data) for data in payloads]


def _pct(part: int, whole: int) -> str:
    return f"{part}/{whole} ({100 * part / whole:.0f} %)" if whole else "—"


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(label: str, scores: dict[str, RouteScore]) -> list[str]:
    lines = [f"| {label} | " + " | ".join(ROUTE_NAMES[r] for r in ROUTES) + " |", "|---|" + "---:|" * len(ROUTES)]

    def row(name: str, cell: Callable[[RouteScore], str]) -> None:
        lines.append(f"| {name} | " + " | ".join(cell(scores[r]) for r in ROUTES) + " |")

    for klass in SIZE_CLASSES:
        row(f"detection recall, {klass:.0%} birds", lambda s, k=klass: _pct(*s.recall[k]) if s.boxes else "n/a")
    for klass in SIZE_CLASSES:
        row(f"detection precision, {klass:.0%} class", lambda s, k=klass: _pct(*s.precision[k]) if s.boxes else "n/a")
    row("species top-1 per bird", lambda s: _pct(s.right_species, s.gt_birds))
    row("exact count per frame", lambda s: _pct(s.exact_count, s.frames))
    row("empty frames reported empty", lambda s: _pct(s.empty_reported_empty, s.empty_frames))
    row("counted birds decided `unknown`", lambda s: _pct(s.unknown, s.counted))
    row("detector invokes per frame (median)", lambda s: f"{_median(s.detector_invokes):.0f}" if s.boxes else "0")
    row("ms per frame (median)", lambda s: f"{_median(s.wall_ms):.1f}")
    row("model invokes, ms per frame (median)", lambda s: f"{_median(s.invoke_ms):.1f}")
    row("ms per frame / invokes", lambda s: f"{_median(s.wall_ms) / _median(s.invoke_ms):.2f}")
    return lines


def compare_fit_ahead(models: Models, payloads: Sequence[bytes], rounds: int) -> dict[str, list[float]]:
    """Route (c) with the tiles fitted ahead on the finder's worker and fitted in turn, frame by
    frame alternately (which goes first alternates too), `rounds` passes over the frames: per
    setting, every frame's wall ms and invoke ms (medians are read from them)."""
    figures: dict[str, list[float]] = {"ahead": [], "ahead_invokes": [], "in turn": [], "in turn_invokes": []}
    for data in payloads[:WARM_UP]:
        run_detect(models, "c", data)
        run_detect(models, "c-in-turn", data)
    for round_index in range(rounds):
        for index, data in enumerate(payloads):
            order = [("ahead", "c"), ("in turn", "c-in-turn")]
            if (index + round_index) % 2:
                order.reverse()
            for name, route in order:
                run = run_detect(models, route, data)
                figures[name].append(run.wall_ms)
                figures[name + "_invokes"].append(run.invoke_ms)
    return figures


def fit_ahead_table(compared: dict[str, dict[str, list[float]]]) -> list[str]:
    lines = ["| route (c), same frames alternately | tiles fitted in turn | fitted ahead | ahead / in turn |",
             "|---|---:|---:|---:|"]
    for label, figures in compared.items():
        turn, ahead = _median(figures["in turn"]), _median(figures["ahead"])
        turn_x = turn / _median(figures["in turn_invokes"])
        ahead_x = ahead / _median(figures["ahead_invokes"])
        lines.append(f"| {label}: ms per frame (median) | {turn:.1f} | {ahead:.1f} | {ahead / turn:.2f} |")
        lines.append(f"| {label}: model invokes, ms per frame | {_median(figures['in turn_invokes']):.1f} | "
                     f"{_median(figures['ahead_invokes']):.1f} | |")
        lines.append(f"| {label}: ms per frame / invokes | {turn_x:.2f} | {ahead_x:.2f} | |")
    return lines


def _ratio(s: RouteScore) -> float:
    return s.right_species / s.gt_birds if s.gt_birds else 0.0


def goals(hd: dict[str, RouteScore], mp: dict[str, RouteScore]) -> list[str]:
    """The issue's goals, for the new route (c); the tables hold (a) and (b) for comparison."""
    c, a = hd["c"], hd["a"]
    lines = ["| goal (route c) | figure | met? |", "|---|---|---|"]

    def add(goal: str, figure: str, met: bool) -> None:
        lines.append(f"| {goal} | {figure} | {'met' if met else '**missed**'} |")

    gain = _ratio(c) / _ratio(a) if _ratio(a) else float("inf")
    add(f"species top-1 per bird >= {GOAL_SPECIES_GAIN}x route (a), 1080p",
        f"{_ratio(c):.0%} vs {_ratio(a):.0%}: {gain:.2f}x", gain >= GOAL_SPECIES_GAIN)
    for label, scores in (("1080p", hd), ("12 MP", mp)):
        s = scores["c"]
        exact = s.exact_count / s.frames if s.frames else 0.0
        add(f"exact count >= {GOAL_EXACT_COUNT:.0%} of frames, {label}", f"{exact:.0%}", exact >= GOAL_EXACT_COUNT)
    for label, scores in (("1080p", hd), ("12 MP", mp)):
        s = scores["c"]
        empty = s.empty_reported_empty / s.empty_frames if s.empty_frames else 1.0
        add(f">= {GOAL_EMPTY:.0%} of empty frames reported empty, {label}", f"{empty:.0%}", empty >= GOAL_EMPTY)
    for label, scores in (("1080p", hd), ("12 MP", mp)):
        s = scores["c"]
        over = _median(s.wall_ms) / _median(s.invoke_ms)
        add(f"ms per frame within {GOAL_MS_OVER_INVOKES}x its model invokes, {label}", f"{over:.2f}x", over <= GOAL_MS_OVER_INVOKES)
    big = _median(mp["c"].wall_ms) / _median(c.wall_ms)
    add(f"12 MP ms per frame within {GOAL_12MP_OVER_1080P}x the 1080p route's",
        f"{_median(mp['c'].wall_ms):.0f} vs {_median(c.wall_ms):.0f} ms: {big:.2f}x", big <= GOAL_12MP_OVER_1080P)
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.detect_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", type=int, default=60, help="1920x1080 scenes (default 60)")
    parser.add_argument("--scenes-12mp", type=int, default=30, help="4000x3000 scenes (default 30)")
    parser.add_argument("--seed", type=int, default=0, help="scene set seed (default 0; the 12 MP set uses seed + 1)")
    parser.add_argument("--threads", type=int, default=2, help="interpreter threads of each model (default 2)")
    parser.add_argument("--containment", type=float, help="[detector] containment (default: the daemon's)")
    parser.add_argument("--detector-threshold", type=float, help="[detector] threshold (default: the daemon's)")
    parser.add_argument("--fit-ahead-rounds", type=int, default=3,
                        help="passes of the route (c) fit-ahead comparison over each size's frames (default 3; 0: none)")
    parser.add_argument("--only-fit-ahead", action="store_true",
                        help="only the fit-ahead comparison (skips the three routes' tables)")
    args = parser.parse_args(argv)

    missing = [p for p in (AIY_DIR / "model.tflite", SSD_DIR / "detect.tflite", BIRDS) if not p.exists()]
    if missing:
        print(f"detect_bench: needs ../shared: {missing[0]} is absent (set TRAILCAM_SHARED)", file=sys.stderr)
        return 2
    try:
        import edge.detect.finder  # noqa: F401
    except ImportError as error:
        print(f"detect_bench: edge.detect is not available in this checkout ({error})", file=sys.stderr)
        return 2

    models = load_models(args.threads, args.containment, args.detector_threshold)
    folders = sorted(p.name for p in BIRDS.iterdir() if p.is_dir())
    species, unmappable = species_map(folders, models.classifier.spec.labels)
    print(f"species: {len(species)} of {len(folders)} birds25 folders map to AIY labels"
          + (f"; unmappable (never counted right): {', '.join(unmappable)}" if unmappable else ""), flush=True)

    results: dict[str, dict[str, RouteScore]] = {}
    compared: dict[str, dict[str, list[float]]] = {}
    for label, size, count, seed in (("1080p", (1920, 1080), args.scenes, args.seed), ("12 MP", (4000, 3000), args.scenes_12mp, args.seed + 1)):
        started = time.perf_counter()
        scenes = scene_set(BIRDS, size=size, count=count, seed=seed)
        payloads = [scene.jpeg(JPEG_QUALITY) for scene in scenes]
        truth = [scene.birds for scene in scenes]
        del scenes
        n_birds = sum(len(t) for t in truth)
        print(f"{label}: {count} scenes ({sum(not t for t in truth)} empty, {n_birds} birds) composed in "
              f"{time.perf_counter() - started:.1f} s", flush=True)
        if args.fit_ahead_rounds > 0:
            started = time.perf_counter()
            compared[label] = compare_fit_ahead(models, payloads, args.fit_ahead_rounds)
            print(f"  fit-ahead comparison: {time.perf_counter() - started:.1f} s", flush=True)
        if args.only_fit_ahead:
            continue
        results[label] = {}
        for route in ROUTES:
            started = time.perf_counter()
            runs = measure(models, payloads, route)
            results[label][route] = score(route, truth, runs, species)
            print(f"  {ROUTE_NAMES[route]}: {time.perf_counter() - started:.1f} s", flush=True)

    print()
    if compared:
        print("\n".join(fit_ahead_table(compared)))
        print()
    if args.only_fit_ahead:
        print(f"Machine: {machine(models.classifier.runtime)}; {args.threads} interpreter threads per model")
        return 0
    for label, scores in results.items():
        size = "1920x1080" if label == "1080p" else "4000x3000"
        print("\n".join(table(f"{label} ({size}, {scores['a'].frames} frames, {scores['a'].gt_birds} birds)", scores)))
        print()
    print("\n".join(goals(results["1080p"], results["12 MP"])))
    print()
    print(f"Machine: {machine(models.classifier.runtime)}; {args.threads} interpreter threads per model; "
          f"match IoU >= {MATCH_IOU}; JPEG quality {JPEG_QUALITY}; {WARM_UP} warm-up frames per route excluded")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
