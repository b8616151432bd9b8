"""`edge classify`: name the birds in some pictures, one-off, as `edge run` would.

No database, and no configuration file unless --config names one. With a detector (--detector,
or [detector] path of --config) each image goes the daemon's way: the one frame analysis of
edge/detect/analyse.py (BirdFinder.locate, each bird's crop classified and decided by
decide_bird with the [classify] section), so `edge classify` and `edge run` say the same of the
same frame. Without one, the whole frame is classified and the top-k shown. The steps are:
build the run from the options (`_build_run`), analyse each image into a report entry
(`_image_entry`), print the entries as a table or JSON.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

from edge.cli.common import EXIT_FAILURE, EXIT_OK, UsageError
from edge.config import ConfigError, EdgeConfig, load_config


def register(sub) -> None:
    """Add `edge classify` (its option groups: detect, then classify; where and when)."""
    classify = sub.add_parser("classify", help="classify images one-off (no database, no config needed)")
    classify.add_argument("images", nargs="+", type=Path, metavar="IMG", help="image files to classify")
    classify.add_argument("--model", type=Path, help="bundle folder or .tflite")
    classify.add_argument("--labels", type=Path, help="labels .txt or .csv (default: bundle's or embedded)")
    classify.add_argument("--config", type=Path,
                          help="take [model], [detector] and [classify] settings from this TOML")
    classify.add_argument("--top-k", type=int, default=5, choices=range(1, 101), metavar="K",
                          help="predictions shown per image")
    classify.add_argument("--format", choices=["table", "json"], default="table", help="output format")
    detect = classify.add_argument_group(
        "detect, then classify", "find the birds first and classify each bird's crop, as edge run does with [detector]")
    detect.add_argument("--detector", type=Path, metavar="PATH",
                        help="detector .tflite or .onnx (ONNX Runtime), or a folder holding one (default: [detector] path of --config)")
    detect.add_argument("--detector-labels", type=Path, metavar="PATH",
                        help="the detector's labels file (default: beside the model, or embedded)")
    detect.add_argument("--tiles", type=_tiles_option, metavar="auto|off|CxR",
                        help='tiles besides the full frame (default: [detector] tiles, else "auto")')
    detect.add_argument("--detector-threshold", type=_score_option, metavar="X",
                        help="detector score a box needs to be a bird, 0 < X <= 1 (default: [detector] threshold, 0.5)")
    detect.add_argument("--annotate", type=Path, metavar="DIR",
                        help="write each image as DIR/<name>.jpg with its boxes and captions drawn "
                             "(needs a detector; DIR is created; a file of that name is replaced)")
    where = classify.add_argument_group(
        "where and when (species prior)",
        "show the range-aware species beside the model's own, as edge run decides it with [prior]")
    where.add_argument("--lat", type=_latitude_option, metavar="DEG",
                       help="latitude of the place (default: [station] latitude of --config); with --lon, and "
                            "without a [prior] source, uses BirdNET's range model")
    where.add_argument("--lon", type=_longitude_option, metavar="DEG", help="longitude of the place (with --lat)")
    where.add_argument("--date", type=_date_option, metavar="YYYY-MM-DD",
                       help="the date whose week the prior uses (default: each image's capture time, EXIF or mtime)")
    where.add_argument("--prior-model", type=Path, metavar="DIR",
                       help="BirdNET range model folder (default: [prior] model, else birdnet-geo-v2.4 in the model folder)")
    where.add_argument("--checklist", type=Path, metavar="CSV",
                       help="a checklist of scientific names as the prior instead of the range model")
    classify.set_defaults(func=cmd_classify)


def _tiles_option(text: str) -> str:
    """--tiles: "auto", "off" or a grid "CxR" (the [detector] tiles values)."""
    from edge.config.detector import TILES_PATTERN

    value = text.strip().lower()
    if not TILES_PATTERN.match(value):
        raise argparse.ArgumentTypeError(f'expected "auto", "off" or a grid "CxR" such as "3x2", got {text!r}')
    return value


def _score_option(text: str) -> float:
    """--detector-threshold: a score in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"{value} must be in (0, 1]")
    return value


def _latitude_option(text: str) -> float:
    return _degrees(text, 90.0)


def _longitude_option(text: str) -> float:
    return _degrees(text, 180.0)


def _degrees(text: str, limit: float) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of decimal degrees") from None
    if not -limit <= value <= limit:
        raise argparse.ArgumentTypeError(f"{value} is not between {-limit:g} and {limit:g}")
    return value


def _date_option(text: str):
    """--date: YYYY-MM-DD (a date-time's date is taken too)."""
    import datetime as dt

    try:
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None


def _classify_prior(args: argparse.Namespace, config: EdgeConfig | None, classifier):
    """The species prior `edge classify` shows (edge.classify.prior.StationPrior), or None: the
    configuration's [prior] and [station] coordinates with --lat/--lon, --prior-model and
    --checklist laid over them (--lat/--lon alone mean BirdNET's range model)."""
    if (args.lat is None) != (args.lon is None):
        raise UsageError("--lat and --lon go together: give both or neither")
    base = config if config is not None else EdgeConfig()
    prior: dict[str, Any] = {}
    if args.checklist is not None:
        prior.update(source="checklist", checklist=args.checklist)
    elif args.prior_model is not None:
        prior.update(source="birdnet", model=args.prior_model)
    elif args.lat is not None and base.prior.source == "none":
        prior["source"] = "birdnet"
    station: dict[str, Any] = {}
    if args.lat is not None:
        station.update(latitude=args.lat, longitude=args.lon)
    if not prior and not station and base.prior.source == "none":
        return None
    config = base.model_copy(update={"prior": base.prior.model_copy(update=prior),
                                     "station": base.station.model_copy(update=station),
                                     "cameras": []})
    from edge.classify.prior import PriorError, load_prior

    try:
        return load_prior(config, classifier.spec.labels, classifier.spec.no_bird_label)
    except PriorError as error:
        key, _, message = str(error).partition(": ")
        option = {"station.latitude": "--lat/--lon", "prior.model": "--prior-model" if args.prior_model else key,
                  "prior.checklist": "--checklist" if args.checklist else key}.get(key, key)
        raise UsageError(f"{option}: {message}") from None


def _rounded(value: float | None) -> float | None:
    """A score as the JSON reports it (6 decimals), None kept."""
    return round(value, 6) if value is not None else None


def _decision_entry(decision) -> dict[str, Any]:
    """A decision as `edge classify` reports it: the counted species and the model's own."""
    return {"species": decision.species, "kind": decision.kind, "confidence": _rounded(decision.confidence),
            "model_species": decision.model_species, "model_confidence": _rounded(decision.model_confidence),
            "flag": decision.flag, "reason": decision.reason}


# The classify options that override a [detector] key, and the key each one stands for.
DETECTOR_OPTIONS = {"detector": "path", "detector_labels": "labels", "tiles": "tiles", "detector_threshold": "threshold"}


def _classify_config(args: argparse.Namespace) -> EdgeConfig | None:
    """The configuration `edge classify` runs with: --config (or, without --model, the default
    file as before) with the detector options laid over its [detector] section; without a file
    but with --detector, the defaults with those options. None: no file and no detector, the
    whole-frame route, which needs no configuration at all."""
    detector: dict[str, Any] = {}
    for option, key in DETECTOR_OPTIONS.items():
        value = getattr(args, option, None)
        if value is not None:
            detector[key] = str(value) if isinstance(value, Path) else value
    overrides = {"detector": detector} if detector else None
    if args.config is not None or args.model is None:
        return load_config(args.config, overrides=overrides)
    if args.detector is None:
        return None
    from pydantic import ValidationError

    from edge.config import format_validation_error

    try:
        return EdgeConfig.model_validate(overrides)
    except ValidationError as error:
        raise ConfigError("command line", format_validation_error(error)) from None


def _classify_finder(args: argparse.Namespace, config: EdgeConfig | None):
    """The daemon's BirdFinder for these options (load_configured_finder, the function `edge
    run` builds its own with), or None. A bad detector is a usage error naming the option
    given on the command line, else the configuration key."""
    if config is None or config.detector.path is None:
        return None
    from edge.daemon.preflight import load_configured_finder
    from edge.detect.model import DetectorError

    try:
        return load_configured_finder(config)
    except DetectorError as error:
        key, _, message = str(error).partition(": ")
        option = {"detector.path": "detector", "detector.labels": "detector_labels"}.get(key)
        if option is not None and getattr(args, option, None) is not None:
            key = "--" + option.replace("_", "-")
        raise UsageError(f"{key}: {message}") from None


def _top(predictions, names) -> list[dict[str, Any]]:
    return [{"label": p.label, "score": round(p.score, 6), "index": p.index,
             "scientific_name": names[p.index].scientific_name} for p in predictions]


def _caption(detection: dict[str, Any]) -> str:
    """What a bird is called in the table and on an --annotate picture, e.g.
    "Cardinalis cardinalis 0.93", "unknown 0.31", "Passer domesticus (denied) 0.88",
    "not a bird (background 0.91)", "not a bird (bird probability 0.12; model: Parus major 0.07)"."""
    confidence = detection["confidence"]
    score = f" {confidence:.2f}" if confidence is not None else ""
    if detection.get("flag") == "unconfirmed":  # neither model sure (edge.classify.decision.UNCONFIRMED)
        top = detection["top"][0] if detection["top"] else None
        model = f"{top['label']} {top['score']:.2f}" if top else "?"
        return f"unconfirmed (detector {detection['score']:.2f}; model: {model})"
    if detection.get("flag") == "not_bird":  # the classifier's veto (edge.classify.decision.NOT_BIRD)
        top = detection["top"][0] if detection["top"] else None
        model = f"{top['label']} {top['score']:.2f}" if top else "?"
        if "no-bird label" in detection.get("reason", "") or confidence is None:
            return f"not a bird ({model})"
        return f"not a bird (bird probability {1 - confidence:.2f}; model: {model})"
    if detection["kind"] == "none":
        top = detection["top"][0]["label"] if detection["top"] else "?"
        return f"{top} (denied){score}"
    model_species = detection.get("model_species")
    if model_species:  # the prior or the roll-up changed it: say what the model saw
        model_score = detection.get("model_confidence")
        seen = f"{model_species} {model_score:.2f}" if model_score is not None else model_species
        if detection.get("rank", "species") != "species" and "out of range" not in detection.get("reason", ""):
            return f"{detection['species']}{score} (model: {seen}, rolled up to the {detection['rank']})"
        rarity = ", possible rarity" if detection.get("flag") else ""
        return f"{detection['species']}{score} (model: {seen}, out of range{rarity})"
    return f"{detection['species']}{score}"


def _prior_caption(prior: dict[str, Any], decision: dict[str, Any]) -> str:
    """The range-aware line under an image's top-k, e.g. "range-aware (birdnet at 52.0000,
    -1.0000, week 20): unknown 0.95, model: Turdus migratorius 0.95 out of range, possible rarity"."""
    place = (f"at {prior['latitude']:.4f}, {prior['longitude']:.4f}, " if prior.get("latitude") is not None else "")
    head = f"range-aware ({prior['source']} {place}week {prior['week']}): "
    if decision["kind"] == "none":
        return head + f"none ({decision['reason']})"
    score = f" {decision['confidence']:.2f}" if decision["confidence"] is not None else ""
    text = head + f"{decision['species']}{score}"
    if decision["model_species"]:
        text += f", model: {decision['model_species']} {decision['model_confidence']:.2f} out of range"
        if decision["flag"]:
            text += ", possible rarity (flagged for review)"
    else:
        text += " (the model's own top species, in range)" if decision["kind"] == "species" else ""
    return text


def _write_annotated(directory: Path, image: Path, data: bytes, boxes, captions: list[str]) -> None:
    """DIR/<input's stem>.jpg: the full-resolution, EXIF-oriented frame with the boxes drawn.
    Only the input's base name is used, so nothing lands outside DIR; the picture is written
    to a temporary file in DIR and renamed over the target, which replaces an existing file
    (or a symlink, never followed) of that name."""
    import os

    from edge.detect.annotate import draw
    from edge.ingest.imaging import load_oriented, open_image

    picture = draw(load_oriented(open_image(data), None), boxes, captions)
    target = directory / (Path(image.name).stem + ".jpg")
    temporary = directory / f".{target.name}.{os.getpid()}.tmp"
    temporary.unlink(missing_ok=True)  # a leftover of a killed run with this pid
    # O_EXCL | O_NOFOLLOW: never through a symlink planted under the temporary name; mode
    # 0o666 less the umask, as any file the user writes.
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666)
    try:
        with os.fdopen(handle, "wb") as out:
            picture.save(out, format="JPEG", quality=90)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class _ClassifyRun:
    """What every image of one `edge classify` is analysed with, built once from the options."""

    args: argparse.Namespace
    classifier: Any  # edge.classify.model.Classifier
    analyser: Any  # edge.detect.analyse.FrameAnalyser
    station_prior: Any  # edge.classify.prior.StationPrior | None
    rollup: Any  # the roll-up of the detector route, or None

    @property
    def names(self):  # noqa: ANN201
        return self.classifier.spec.labels


def _build_run(args: argparse.Namespace) -> _ClassifyRun:
    """The model, the detector, the [classify] rules, the prior and the roll-up for these
    options; every mistake in them is a usage error before any image is read."""
    from edge.classify.decision import unknown_species
    from edge.classify.model import Classifier, ModelError, resolve_model
    from edge.classify.taxonomy import rollup_from_config
    from edge.config.classify import ClassifyConfig
    from edge.config.taxonomy import TaxonomyConfig
    from edge.detect.analyse import FrameAnalyser

    config = _classify_config(args)
    model_path, labels, no_bird, threads = args.model, args.labels, None, 2
    if config is not None and (args.config is not None or model_path is None):
        model_path = model_path or config.model.path
        labels = labels or config.model.labels
        no_bird, threads = config.model.no_bird_label, config.model.threads
    if model_path is None:
        raise UsageError("--model: no model given (and none in the configuration)")
    finder = _classify_finder(args, config)
    if args.annotate is not None and finder is None:
        raise UsageError("--annotate: needs a detector to draw its boxes (--detector PATH, or [detector] path in --config)")
    try:
        classifier = Classifier(resolve_model(model_path, labels, no_bird), threads=threads)
    except ModelError as error:
        raise UsageError(str(error)) from None
    names = classifier.spec.labels
    classify_config = config.classify if config is not None and finder is not None else ClassifyConfig()
    station_prior = _classify_prior(args, config, classifier)
    # With a detector, birds are decided as `edge run` decides them: the roll-up included
    # ([taxonomy] of --config, else its defaults), on every label's score.
    rollup = (rollup_from_config(names, config.taxonomy if config is not None else TaxonomyConfig())
              if finder is not None else None)
    if finder is not None:
        problems = unknown_species(classify_config, names)
        if problems:
            raise UsageError("\n".join(problems))
    if args.annotate is not None:
        try:
            args.annotate.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise UsageError(f"--annotate: {args.annotate}: {error.strerror or error}") from None
    analyser = FrameAnalyser(classifier, classify_config, finder, args.top_k, rollup)
    return _ClassifyRun(args, classifier, analyser, station_prior, rollup)


def _where_and_when(run: _ClassifyRun, image: Path, picture) -> tuple[Any, dict[str, Any] | None]:
    """The prior's context for one image (a DecisionContext, or None without a prior), and what
    the report says of it: --date's week, else the image's capture time's (as edge run)."""
    if run.station_prior is None:
        return None, None
    from edge.classify.decision import DecisionContext
    from edge.classify.prior import birdnet_week, local_week
    from edge.ingest.capture_time import capture_time

    args, station_prior = run.args, run.station_prior
    if args.date is not None:
        week, when = birdnet_week(args.date), args.date.isoformat()
    elif station_prior.week is not None:
        week, when = station_prior.week, "[prior] week"
    else:
        captured, source = capture_time(picture, Path(image).stat().st_mtime, station_prior.zone)
        week, when = local_week(captured, station_prior.zone), f"{captured.isoformat()} ({source})"
    latitude, longitude = station_prior.coordinates(None) or (None, None)
    occurrence = station_prior.prior.occurrence(latitude, longitude, week)
    return DecisionContext(occurrence=occurrence), {
        "source": station_prior.prior.source, "latitude": latitude, "longitude": longitude, "week": week,
        "date": when, "in_range": len(occurrence.expected())}


def _context_for(run: _ClassifyRun, image: Path, entry: dict[str, Any]) -> Callable[[Any], Any]:
    """The analyser's context callback for one image: the prior's context (_where_and_when),
    noted in the entry, with the roll-up of the detector route: what `edge run` knows of a
    frame beyond the scores."""
    from edge.classify.decision import DecisionContext

    def context_for(picture):  # noqa: ANN001, ANN202
        context, entry_prior = _where_and_when(run, image, picture)
        if entry_prior is not None:
            entry["prior"] = entry_prior
        if run.rollup is not None:
            context = DecisionContext(occurrence=context.occurrence if context is not None else None,
                                      rollup=run.rollup)
        return context

    return context_for


def _taken_at(image: Path) -> Callable[[Any], Any]:
    """The analyser's capture-time callback for one image (EXIF, else the file's mtime; UTC, as
    only the time between two frames of a folder matters): the folder is the camera, and the
    frames of its bursts are compared for motion as `edge run` compares them."""
    from edge.ingest.capture_time import capture_time

    return lambda picture: capture_time(picture, Path(image).stat().st_mtime, UTC)[0]


def _detection_entry(run: _ClassifyRun, bird, with_prior: bool) -> dict[str, Any]:
    """One bird of the detector route as the report shows it: its box, scores and decision;
    without a prior, only the fields `edge classify` has always shown (and what a roll-up or a
    veto adds)."""
    decision, box = bird.decision, bird.box
    decided = _decision_entry(decision)
    if not with_prior:
        decided = {k: decided[k] for k in ("species", "kind", "confidence")}
        if decision.rank != "species":  # a roll-up says its rank and the model's own top-1
            decided.update(rank=decision.rank, model_species=decision.model_species,
                           model_confidence=_rounded(decision.model_confidence))
        if decision.not_bird:  # the classifier's veto or neither model sure: say so, and why
            decided.update(flag=decision.flag, reason=decision.reason, model_species=decision.model_species)
    return {"box": [round(v, 4) for v in (box.ymin, box.xmin, box.ymax, box.xmax)],
            "score": round(box.score, 6), "detector_label": box.label,
            **decided, "top": _top(bird.predictions, run.names)}


def _analysis_entry(run: _ClassifyRun, image: Path, data: bytes, analysis, entry: dict[str, Any]) -> None:
    """Fill an image's entry from its analysis: the whole frame's top-k (and the range-aware
    decision beside it), or the detector route's birds, counts, people and vehicles."""
    if analysis.birds is None:
        entry["top"] = _top(analysis.predictions, run.names)
        entry["inference_ms"] = round(analysis.inference_ms, 2)
        if analysis.context is not None and analysis.decision is not None:
            # The model's own top species (above) and the range-aware decision, side by side.
            entry["prior"] = entry.pop("prior", None)
            entry["decision"] = _decision_entry(analysis.decision)
        return
    with_prior = analysis.context is not None and analysis.context.occurrence is not None
    detections = [_detection_entry(run, bird, with_prior) for bird in analysis.birds]
    counted = Counter(d["species"] for d in detections if d["kind"] != "none")
    entry.update({"birds": len(detections), "detections": detections,
                  "counts": dict(sorted(counted.items(), key=lambda item: (-item[1], item[0]))),
                  "inference_ms": round(analysis.inference_ms, 2),
                  "night": analysis.night})  # an infrared night frame (edge/detect/night.py)
    if analysis.others:  # people and vehicles: recorded by edge run, never classified
        entry["others"] = [{"kind": o.kind, "detector_label": o.label, "score": round(o.score, 6),
                            "box": [round(v, 4) for v in o.coords]} for o in analysis.others]
    if run.args.annotate is not None:
        _write_annotated(run.args.annotate, image, data, [b.box for b in analysis.birds],
                         [_caption(d) for d in detections])


def _image_entry(run: _ClassifyRun, image: Path) -> dict[str, Any]:
    """One image's report entry; an image that cannot be read or decoded is an entry with its
    error (the other images are still analysed)."""
    from edge.ingest.imaging import FrameError

    entry: dict[str, Any] = {"path": str(image)}
    try:
        data = Path(image).read_bytes()
        # The one frame analysis `edge run` runs (edge/detect/analyse.py); the folder is the camera.
        analysis = run.analyser.analyse(data, _context_for(run, image, entry), str(Path(image).absolute().parent),
                                        _taken_at(image))
        _analysis_entry(run, Path(image), data, analysis, entry)
    except (OSError, FrameError) as error:
        return {"path": str(image),
                "error": str(error.strerror if isinstance(error, OSError) and error.strerror else error)}
    return entry


def _print_table(results: list[dict[str, Any]]) -> None:
    """The entries as lines people read: an error, the birds with their captions, or the top-k."""
    for entry in results:
        if "error" in entry:
            print(f"{entry['path']}: error: {entry['error']}")
        elif "detections" in entry:
            found = entry["detections"]
            others = "".join(f"; {o['kind']} {o['score']:.2f}" for o in entry.get("others", ()))
            night = " (night)" if entry.get("night") else ""
            if not found:
                print(f"{entry['path']}: " + (f"no bird{others}" if others else "empty") + night)
                continue
            counted = sum(d["kind"] != "none" for d in found)
            noun = "bird" if len(found) == 1 else "birds"
            if counted != len(found):  # boxes that are recorded, not counted: say both
                noun = f"{'box' if len(found) == 1 else 'boxes'}, {counted} counted"
            print(f"{entry['path']}: {len(found)} {noun}: " + ", ".join(_caption(d) for d in found) + others + night)
        else:
            top = ", ".join(f"{t['label']} {t['score']:.3f}" for t in entry["top"])
            print(f"{entry['path']}: {top}")
            if "decision" in entry:
                print(f"  {_prior_caption(entry['prior'], entry['decision'])}")


def cmd_classify(args: argparse.Namespace) -> int:
    """Analyse each image; exit 1 when any could not be read or decoded (each still reported)."""
    run = _build_run(args)
    results = [_image_entry(run, image) for image in args.images]
    if args.format == "json":
        print(json.dumps({"model_id": run.classifier.model_id, "runtime": run.classifier.runtime, "images": results},
                         indent=2, ensure_ascii=False))
    else:
        _print_table(results)
    return EXIT_OK if not any("error" in entry for entry in results) else EXIT_FAILURE
