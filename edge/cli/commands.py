"""The `edge` command: run the daemon, check a setup, classify one-off, report counts.

Exit codes: 0 success, 1 runtime failure, 2 bad configuration or arguments (the message names
the key or argument and the problem), 141 when the reader of stdout went away (`edge frames | head`:
no traceback). Commands that need no database or config (classify)
never read /etc/trailcam/edge.toml unless asked to.

`edge status` and `edge install-service` live in edge/cli/status.py and
edge/cli/install_service.py, each adding itself with `register(subparsers)`; every table is
rendered by edge/cli/tables.py.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge import __version__
from edge.cli import bridge, clock, export, install_service, models, repeats, report, status, tables, web
from edge.cli.common import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError, keep_daemon_light, setup_logging
from edge.config import ConfigError, EdgeConfig, load_config

if TYPE_CHECKING:
    from edge.daemon.preflight import Finding

log = logging.getLogger("edge")


# -- configuration from file + flags -----------------------------------------------------------


def _add_config_flags(parser: argparse.ArgumentParser, *, daemon: bool) -> None:
    parser.add_argument("--config", type=Path, help="TOML configuration (default /etc/trailcam/edge.toml when it exists)")
    parser.add_argument("--db", type=Path, help="SQLite database (overrides [storage] database)")
    if daemon:
        parser.add_argument("--model", type=Path, help="bundle folder or .tflite (overrides [model] path)")
        parser.add_argument("--labels", type=Path, help="labels .txt or .csv (overrides [model] labels)")
        parser.add_argument("--detector", type=Path, metavar="PATH",
                            help="bird detector .tflite or .onnx: detect, then classify each bird (overrides [detector] path)")
        parser.add_argument("--watch", type=Path, action="append", metavar="DIR",
                            help="camera folder (repeatable; replaces [[cameras]]; camera name = folder name)")
        parser.add_argument("--poll", action="store_true", help="with --watch: poll instead of inotify (network mounts)")
        parser.add_argument("--recursive", action="store_true", help="with --watch: include sub-folders")
        parser.add_argument("--timezone", help="station time zone (overrides [station] timezone)")
        parser.add_argument("--force-timezone", action="store_true",
                            help="start although the database was written in another station zone: record the new "
                                 "one (logged; without it such a start is refused)")
        parser.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                            help="log level (overrides [logging] level)")


def config_from_args(args: argparse.Namespace) -> EdgeConfig:
    overrides: dict[str, Any] = {}
    if getattr(args, "db", None):
        overrides.setdefault("storage", {})["database"] = str(args.db)
    if getattr(args, "model", None):
        overrides.setdefault("model", {})["path"] = str(args.model)
    if getattr(args, "labels", None):
        overrides.setdefault("model", {})["labels"] = str(args.labels)
    if getattr(args, "detector", None):
        overrides.setdefault("detector", {})["path"] = str(args.detector)
    if getattr(args, "timezone", None):
        overrides.setdefault("station", {})["timezone"] = args.timezone
    if getattr(args, "log_level", None):
        overrides.setdefault("logging", {})["level"] = args.log_level
    if getattr(args, "watch", None):
        names: list[str] = []
        cameras = []
        for folder in args.watch:
            name = folder.resolve().name or "camera"
            while name in names:
                name += "_"
            names.append(name)
            cameras.append({"name": name, "path": str(folder), "recursive": bool(args.recursive),
                            "mode": "poll" if args.poll else "inotify"})
        overrides["cameras"] = cameras
    return load_config(args.config, overrides=overrides)


# -- commands --------------------------------------------------------------------------------


def _refuse(findings: list[Finding]) -> int:
    """Print a refused start's configuration problems (one line each, naming the key); exit 2."""
    for finding in findings:
        print(f"edge: {finding.line()}", file=sys.stderr)
    return EXIT_USAGE


def cmd_run(args: argparse.Namespace) -> int:
    """Check everything `edge check` checks, and only then create anything.

    The preflight runs before the daemon, its field operation or the store touch the disk, so
    a refused start (exit 2, each problem naming its key) leaves no database, no state folder
    and no status.json behind.
    """
    keep_daemon_light()
    from edge.classify.model import ModelError
    from edge.daemon.lifecycle import DaemonError
    from edge.daemon.preflight import StateDirError, preflight
    from edge.daemon.wiring import build
    from edge.store.db import StoreError

    config = config_from_args(args)
    setup_logging(config.logging.level)
    checked = preflight(config, once=args.once, force_timezone=args.force_timezone)
    if checked.errors:
        return _refuse(checked.errors)
    # The daemon with its field operation (systemd notify/watchdog, status.json, metrics,
    # retention, disk pause) and MQTT when enabled; the state folder is made in its before_open
    # hook, after every check.
    daemon = build(config, once=args.once, force_timezone=args.force_timezone)
    try:
        code = daemon.run(handle_signals=True, classifier=checked.classifier, finder=checked.finder)
        if daemon.summary is not None:  # --once: what the run did, on stdout (the log is stderr)
            print(daemon.summary)
        return code
    except (DaemonError, ModelError) as error:
        raise UsageError(str(error)) from None
    except (StateDirError, StoreError) as error:  # the disk changed since the preflight probed it
        log.error("%s", error)
        return EXIT_FAILURE


def cmd_check(args: argparse.Namespace) -> int:
    """Run the preflight `edge run` runs, without running; one line per check.

    Exit 0 when `edge run` would start, 2 when it would refuse (warnings do not count).
    """
    from edge.config import DEFAULT_CONFIG_PATH
    from edge.daemon.preflight import preflight

    config = config_from_args(args)
    source = args.config or (DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.exists() else "defaults and flags")
    print(f"config: ok ({source})")
    checked = preflight(config, force_timezone=args.force_timezone)
    for finding in checked.findings:
        print(finding.line())
    for line in _export_lacks(config):
        print(line)
    problems = len(checked.errors)
    print("check: " + ("all ok" if not problems else f"{problems} problem(s)"))
    return EXIT_OK if not problems else EXIT_USAGE


def _export_lacks(config: EdgeConfig) -> list[str]:
    """Warnings: what a Camtrap DP export would lack (deployments, project metadata, scientific
    names). Counting works without any of it, so none of them refuses a start."""
    from edge.classify.model import ModelError, resolve_model
    from edge.ecology.deployments import labels_without_scientific_name, lacks

    lines = [f"export: warning: {problem}" for problem in lacks(config)]
    if config.model.path is not None:
        try:
            spec = resolve_model(config.model.path, config.model.labels, config.model.no_bird_label)
        except ModelError:
            return lines  # preflight has said what is wrong with the model
        missing = labels_without_scientific_name(spec.labels, spec.no_bird_label)
        if missing:
            shown = ", ".join(repr(name) for name in missing[:5]) + (", ..." if len(missing) > 5 else "")
            lines.append(f"export: warning: model: {len(missing)} of {len(spec.labels)} labels have no scientific name "
                         f"({shown}): give [model] labels a CSV with scientific_name, or train with "
                         "`trainer train --taxonomy FILE`")
    if not lines:
        lines.append("export: ok (deployments, project metadata and scientific names for Camtrap DP)")
    return lines


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


def cmd_classify(args: argparse.Namespace) -> int:
    """One-shot: no database, no config file unless --config names one.

    With a detector (--detector, or [detector] path of --config) each image goes the daemon's
    way: BirdFinder.locate (built by load_configured_finder), each bird's crop classified and
    decided by decide_bird with the [classify] section (its defaults without --config), so
    `edge classify` and `edge run` say the same of the same frame.
    """
    from collections import Counter

    from edge.classify.decision import DecisionContext, unknown_species
    from edge.classify.model import Classifier, ModelError, resolve_model
    from edge.config.classify import ClassifyConfig
    from edge.ingest.imaging import FrameError

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
    from edge.classify.taxonomy import rollup_from_config
    from edge.config.taxonomy import TaxonomyConfig

    rollup = (rollup_from_config(names, config.taxonomy if config is not None else TaxonomyConfig())
              if finder is not None else None)
    if finder is not None:
        problems = unknown_species(classify_config, names)
        if problems:
            raise UsageError("\n".join(problems))

    def where_and_when(image: Path, picture) -> tuple[DecisionContext | None, dict[str, Any] | None]:
        """The prior's context for one image: --date's week, else its capture time's (as edge run)."""
        if station_prior is None:
            return None, None
        from edge.classify.prior import birdnet_week, local_week
        from edge.ingest.capture_time import capture_time

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
    if args.annotate is not None:
        try:
            args.annotate.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise UsageError(f"--annotate: {args.annotate}: {error.strerror or error}") from None
    from edge.detect.analyse import FrameAnalyser

    analyser = FrameAnalyser(classifier, classify_config, finder, args.top_k, rollup)
    results = []
    failed = 0
    for image in args.images:
        entry: dict[str, Any] = {"path": str(image)}

        def context_for(picture, image: Path = image, entry: dict[str, Any] = entry) -> DecisionContext | None:
            """The prior's context for this image (where_and_when), with the roll-up of the
            detector route: what `edge run` knows of a frame beyond the scores (bound to this
            iteration's image and entry)."""
            context, entry_prior = where_and_when(image, picture)
            if entry_prior is not None:
                entry["prior"] = entry_prior
            if rollup is not None:
                context = DecisionContext(occurrence=context.occurrence if context is not None else None,
                                          rollup=rollup)
            return context

        def taken_at(picture, image: Path = image):  # noqa: ANN001, ANN202
            """The image's capture time (EXIF, else the file's mtime; UTC, as only the time
            between two frames of a folder matters): the folder is the camera, and the frames
            of its bursts are compared for motion as `edge run` compares them."""

            from edge.ingest.capture_time import capture_time

            return capture_time(picture, Path(image).stat().st_mtime, UTC)[0]

        try:
            data = Path(image).read_bytes()
            # The one frame analysis `edge run` runs (edge/detect/analyse.py); the folder is the camera.
            analysis = analyser.analyse(data, context_for, str(Path(image).absolute().parent), taken_at)
            if analysis.birds is None:
                entry["top"] = _top(analysis.predictions, names)
                entry["inference_ms"] = round(analysis.inference_ms, 2)
                if analysis.context is not None and analysis.decision is not None:
                    # The model's own top species (above) and the range-aware decision, side by side.
                    entry["prior"] = entry.pop("prior", None)
                    entry["decision"] = _decision_entry(analysis.decision)
            else:
                context = analysis.context
                detections = []
                for bird in analysis.birds:
                    decision, box = bird.decision, bird.box
                    decided = _decision_entry(decision)
                    if context is None or context.occurrence is None:  # no prior: the fields as they were
                        decided = {k: decided[k] for k in ("species", "kind", "confidence")}
                        if decision.rank != "species":  # a roll-up says its rank and the model's own top-1
                            decided.update(rank=decision.rank, model_species=decision.model_species,
                                           model_confidence=_rounded(decision.model_confidence))
                        if decision.not_bird:  # the classifier's veto or neither model sure: say so, and why
                            decided.update(flag=decision.flag, reason=decision.reason,
                                           model_species=decision.model_species)
                    detections.append({
                        "box": [round(v, 4) for v in (box.ymin, box.xmin, box.ymax, box.xmax)],
                        "score": round(box.score, 6), "detector_label": box.label,
                        **decided, "top": _top(bird.predictions, names)})
                counted = Counter(d["species"] for d in detections if d["kind"] != "none")
                entry.update({"birds": len(detections), "detections": detections,
                              "counts": dict(sorted(counted.items(), key=lambda item: (-item[1], item[0]))),
                              "inference_ms": round(analysis.inference_ms, 2),
                              "night": analysis.night})  # an infrared night frame (edge/detect/night.py)
                if analysis.others:  # people and vehicles: recorded by edge run, never classified
                    entry["others"] = [{"kind": o.kind, "detector_label": o.label, "score": round(o.score, 6),
                                        "box": [round(v, 4) for v in o.coords]} for o in analysis.others]
                if args.annotate is not None:
                    _write_annotated(args.annotate, Path(image), data, [b.box for b in analysis.birds],
                                     [_caption(d) for d in detections])
        except (OSError, FrameError) as error:
            entry = {"path": str(image),
                     "error": str(error.strerror if isinstance(error, OSError) and error.strerror else error)}
            failed += 1
        results.append(entry)
    if args.format == "json":
        print(json.dumps({"model_id": classifier.model_id, "runtime": classifier.runtime, "images": results},
                         indent=2, ensure_ascii=False))
    else:
        for entry in results:
            if "error" in entry:
                print(f"{entry['path']}: error: {entry['error']}")
            elif "detections" in entry:
                found = entry["detections"]
                others = "".join(f"; {o['kind']} {o['score']:.2f}" for o in entry.get("others", ()))
                if not found:
                    print(f"{entry['path']}: " + (f"no bird{others}" if others else "empty")
                          + (" (night)" if entry.get("night") else ""))
                else:
                    counted = sum(d["kind"] != "none" for d in found)
                    noun = "bird" if len(found) == 1 else "birds"
                    if counted != len(found):  # boxes that are recorded, not counted: say both
                        noun = f"{'box' if len(found) == 1 else 'boxes'}, {counted} counted"
                    print(f"{entry['path']}: {len(found)} {noun}: " + ", ".join(_caption(d) for d in found) + others
                          + (" (night)" if entry.get("night") else ""))
            else:
                top = ", ".join(f"{t['label']} {t['score']:.3f}" for t in entry["top"])
                print(f"{entry['path']}: {top}")
                if "decision" in entry:
                    print(f"  {_prior_caption(entry['prior'], entry['decision'])}")
    return EXIT_OK if not failed else EXIT_FAILURE


def _open_reader(args: argparse.Namespace):
    from edge.store.db import StoreError, open_readonly

    if args.db is not None and args.config is None:
        database, busy = args.db, 30.0
    else:
        config = load_config(args.config, overrides={"storage": {"database": str(args.db)}} if args.db else None)
        database, busy = config.storage.database, config.storage.busy_timeout_s
    try:
        return open_readonly(database, busy)
    except StoreError as error:
        raise UsageError(f"--db: {error}") from None


def _zone(args: argparse.Namespace, db):
    from zoneinfo import ZoneInfoNotFoundError

    from edge.store.queries import station_zone

    try:
        return station_zone(db, args.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"--timezone: unknown time zone {args.timezone!r}") from None


def _report(query, db, **options):
    """One report query; a --since/--until it cannot read is a usage error (exit 2)."""
    from edge.store import queries

    try:
        return query(db, **options)
    except queries.ReportError as error:
        raise UsageError(f"--since/--until: {error}") from None


def _central(args: argparse.Namespace):
    """A CentralReader (fleet/reports.py) when --db is a central database (a postgresql://
    URL, or a SQLite file with the central schema), else None (a device's own database)."""
    database = getattr(args, "db", None)
    if database is None:
        return None
    from fleet.db import CentralDbError
    from fleet.reports import CentralReader, is_central

    if not is_central(database):
        return None
    try:
        return CentralReader(database)
    except CentralDbError as error:
        raise UsageError(f"--db: {error}") from None


def _report_zone(args: argparse.Namespace):
    """--timezone for a central report (None: each device's own station zone)."""
    if not args.timezone:
        return None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(args.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"--timezone: unknown time zone {args.timezone!r}") from None


def _own_device(args: argparse.Namespace, db) -> None:
    """--device on a device's own database: only its own id (meta station_id) makes sense."""
    if not getattr(args, "device", None):
        return
    row = db.execute("SELECT value FROM meta WHERE key = 'station_id'").fetchone()
    if row is None or row[0] != args.device:
        raise UsageError(f"--device: this is the database of device {row[0] if row else '(unnamed)'!r}; a fleet's "
                         "devices are in the central database (--db postgresql://... or the collector's SQLite file)")


def _namer(args: argparse.Namespace):
    """The station's names (edge.classify.names.Namer): [station] language of --config (else of
    the default configuration, else English) and the names pack beside the database."""
    from edge.classify.names import Namer, namer, pack_folder

    try:
        config = load_config(args.config, overrides={"storage": {"database": str(args.db)}} if args.db else None)
    except ConfigError:
        return Namer()  # --db alone and no readable default configuration: the model's own names
    return namer(config.station.language, pack_folder(config))


def _readable(args: argparse.Namespace, db, rows: list[dict[str, Any]],
              columns: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """A table's species as people read them (edge.classify.names.display_name: the common name in
    [station] language, else the scientific name), with a `scientific` column beside when the two
    differ anywhere. CSV and JSON keep the label as stored: it is what --species takes and
    what a program joins on."""
    if args.format != "table" or "species" not in columns:
        return rows, columns
    from edge.store.taxa import taxa

    namer, known = _namer(args), taxa(db)
    readable, differs = [], False
    for row in rows:
        label = row.get("species")
        taxon = known.get(label) if label else None
        if taxon is None:
            readable.append(row)
            continue
        shown = namer.display(label, taxon.scientific_name, taxon.common_name)
        scientific = taxon.scientific_name or label
        differs = differs or shown != scientific
        extra = {}
        if isinstance(row.get("species_counts"), list):  # each species of a visit, as people read it
            extra["species_counts"] = [
                {**c, "species": namer.display(c["species"], *(
                    (known[c["species"]].scientific_name, known[c["species"]].common_name)
                    if c["species"] in known else (None, None)))}
                for c in row["species_counts"]]
        readable.append({**row, "species": shown, "scientific": scientific, **extra})
    if differs:
        at = columns.index("species") + 1
        columns = [*columns[:at], "scientific", *columns[at:]]
    return readable, columns


def cmd_counts(args: argparse.Namespace) -> int:
    from edge.store import queries

    unit = "frames" if args.frames else "individuals" if args.individuals else "events"
    central = _central(args)
    if central is not None:
        with central:
            rows = _report(lambda _db, **o: central.counts(**o), None, device=args.device, by=args.by, unit=unit,
                           since=args.since, until=args.until, camera=args.camera, species=args.species,
                           zone=_report_zone(args))
        print(tables.render(rows, ["period", "species", unit], args.format))
        return EXIT_OK
    db = _open_reader(args)
    _own_device(args, db)
    rows = _report(queries.counts, db, by=args.by, unit=unit, since=args.since, until=args.until,
                   camera=args.camera, species=args.species, zone=_zone(args, db))
    print(tables.render(*_readable(args, db, rows, ["period", "species", unit]), args.format))
    return EXIT_OK


def cmd_events(args: argparse.Namespace) -> int:
    from edge.store import queries

    # species / individuals: the visit's headline species and its MaxN; species_counts: every
    # species the visit counts with its own MaxN (edge/store/events.py), "A 1; B 2" in a table.
    columns = ["start_local", "end_local", "camera", "species", "individuals", "species_counts", "confidence",
               "frame_count", "state", "review", "uid"]
    central = _central(args)
    if central is not None:
        with central:
            rows = _report(lambda _db, **o: central.events(**o), None, device=args.device, since=args.since,
                           until=args.until, camera=args.camera, species=args.species, limit=args.limit,
                           zone=_report_zone(args))
        # The whole fleet: which device each visit is from (one device: the device's own columns).
        columns = columns if args.device else ["device", *columns]
        _print_limited(tables.render(_species_counts_text(rows, args.format), columns, args.format),
                       tables.left_out_note(rows, "event"), args.format)
        return EXIT_OK
    db = _open_reader(args)
    _own_device(args, db)
    rows = _report(queries.events, db, since=args.since, until=args.until, camera=args.camera,
                   species=args.species, limit=args.limit, zone=_zone(args, db))
    readable, shown = _readable(args, db, rows, columns)
    _print_limited(tables.render(_species_counts_text(readable, args.format), shown, args.format),
                   tables.left_out_note(rows, "event"), args.format)
    return EXIT_OK


def _species_counts_text(rows: list[dict[str, Any]], fmt: str) -> list[dict[str, Any]]:
    """The per-species counts of each visit as one cell ("Zenaida macroura 1; Dryobates
    pubescens 1") for a table or CSV; JSON keeps the list of objects."""
    if fmt == "json":
        return rows
    for row in rows:
        listed = row.get("species_counts")
        if isinstance(listed, list):
            row["species_counts"] = "; ".join(f"{c['species']} {c['individuals']}" for c in listed)
    return rows


def cmd_frames(args: argparse.Namespace) -> int:
    from edge.store import queries

    db = _open_reader(args)
    rows = _report(queries.frames, db, errors=args.errors, since=args.since, until=args.until,
                   camera=args.camera, limit=args.limit, zone=_zone(args, db), by_processed=args.by_processed)
    # time_source: where the capture time came from (exif, exif-local, mtime); time_flags: what
    # is doubtful about it (empty: nothing).
    columns = (["processed_at", "camera", "path", "error"] if args.errors else
               ["captured_local", "time_source", "time_flags", "camera", "path", "status", "species", "confidence",
                "birds", "night", "inference_ms", "error"])
    note = tables.left_out_note(rows, "failed frame" if args.errors else "frame")
    _print_limited(tables.render(*_readable(args, db, rows, columns), args.format), note, args.format)
    return EXIT_OK


def _print_limited(rendered: str, note: str | None, fmt: str) -> None:
    """A report, then the note on rows a --limit left out: a footer line under a table (read by
    a person), on stderr for CSV and JSON so that their stdout stays pure data for a program."""
    print(rendered)
    if note is None:
        return
    if fmt == "table":
        print(note)
    else:
        print(f"edge: {note}", file=sys.stderr)


def _limit(text: str) -> int:
    """--limit N: the newest N rows; 0 means all of them."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative (0 means all rows)")
    return value


# -- parser ----------------------------------------------------------------------------------


def _report_flags(parser: argparse.ArgumentParser, formats: list[str], *, central: bool = False,
                  bounded: str = "") -> None:
    """The options every report shares; `bounded`: what --since/--until bound, added to their help."""
    if central:
        parser.add_argument("--db", help="SQLite database (default: [storage] database), or a fleet's central "
                                         "database: postgresql://... or the collector's SQLite file")
        parser.add_argument("--device", metavar="ID",
                            help="with a central database: only this device (its [station] device_id)")
    else:
        parser.add_argument("--db", type=Path, help="SQLite database (default: [storage] database)")
    parser.add_argument("--config", type=Path, help="TOML configuration to take the database path from")
    parser.add_argument("--since", help="local date YYYY-MM-DD or date-time YYYY-MM-DDTHH:MM (inclusive)" + bounded)
    parser.add_argument("--until", help="local date (inclusive, whole day) or date-time (exclusive)" + bounded)
    parser.add_argument("--camera", help="only this camera")
    parser.add_argument("--timezone", help="report in this zone instead of the station's")
    parser.add_argument("--format", choices=formats, default="table",
                        help="output format (a table names species by their common name in [station] language, "
                             "with a scientific column; csv and json keep the label as stored)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge", description="trailcam field daemon: camera frames → species counts")
    parser.add_argument("--version", action="version", version=f"trailcam edge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = sub.add_parser("run", help="run the daemon (watch → classify → store)")
    _add_config_flags(run, daemon=True)
    run.add_argument("--once", action="store_true", help="process the frames already there, then exit")
    run.set_defaults(func=cmd_run)

    check = sub.add_parser("check", help="validate config, model and database without running")
    _add_config_flags(check, daemon=True)
    check.set_defaults(func=cmd_check)

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

    counts = sub.add_parser("counts", help="species counts per hour or day (events by default)")
    _report_flags(counts, ["table", "csv", "json"], central=True)
    counts.add_argument("--by", choices=["hour", "day", "total"], default="day",
                        help="one row per species and local hour, day, or for the whole period")
    counts.add_argument("--species", help="only this species (label as stored)")
    unit = counts.add_mutually_exclusive_group()
    unit.add_argument("--frames", action="store_true", help="count frames instead of events")
    unit.add_argument("--individuals", action="store_true",
                      help="count birds: each visit's most birds in one frame (MaxN), summed")
    counts.set_defaults(func=cmd_counts)

    events = sub.add_parser("events", help="recent events (visits), newest first")
    _report_flags(events, ["table", "csv", "json"], central=True)
    events.add_argument("--species", help="only this species")
    events.add_argument("--limit", type=_limit, default=50, metavar="N", help="newest N events (default 50; 0: all)")
    events.set_defaults(func=cmd_events)

    frames = sub.add_parser("frames", help="recently processed frames, newest first, with the capture time, "
                                           "where it came from (time_source) and what is doubtful about it (time_flags)")
    _report_flags(frames, ["table", "csv", "json"],
                  bounded="; of the capture time (a failed frame has none: of its processing time)")
    frames.add_argument("--by-processed", action="store_true",
                        help="--since/--until bound the time each frame was processed instead of its capture time")
    frames.add_argument("--errors", action="store_true",
                        help="only frames that failed, with the reason (--since/--until: when they were processed)")
    frames.add_argument("--limit", type=_limit, default=50, metavar="N", help="newest N frames (default 50; 0: all)")
    frames.set_defaults(func=cmd_frames)

    status.register(sub)
    models.register(sub)
    install_service.register(sub)
    bridge.register(sub)
    export.register(sub)
    report.register(sub)
    clock.register(sub)
    repeats.register(sub)
    web.register(sub)
    return parser


# A command whose reader went away (`edge frames | head`), the status of a writer SIGPIPE ends.
EXIT_BROKEN_PIPE = 141


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
        sys.stdout.flush()  # inside the try: a closed pipe shows here for output still buffered
        return code
    except BrokenPipeError:
        # The reader closed the pipe (`edge counts | head`): end quietly. stdout goes to
        # /dev/null so that the interpreter's flush at exit fails no more (the Python docs'
        # pattern, "Note on SIGPIPE").
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except ConfigError as error:
        for problem in error.problems:
            print(f"edge: {error.source}: {problem}", file=sys.stderr)
        return EXIT_USAGE
    except UsageError as error:
        for line in str(error).splitlines() or [""]:  # several problems: each line says "edge:"
            print(f"edge: {line}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
