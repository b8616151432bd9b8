"""`edge export training-set` and `edge thresholds suggest`: the station's side of the feedback loop.

The work is in edge/exports/training_set.py and edge/operate/thresholds.py; this module parses
the flags, finds the database (and the classifier's input size) from --db / --config, and
prints. Exit codes: 0 ok, 2 usage (a bad option, an output folder in the way, no crop size).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from edge.cli.common import EXIT_OK, EXIT_USAGE, positive_int
from edge.cli.tables import aligned
from edge.config import EdgeConfig, load_config


def register(subparsers) -> None:
    """Add `edge export training-set` and `edge thresholds suggest` to the `edge` parser."""
    export = subparsers.add_parser("export", help="export what the station learnt (training set of reviewed crops)")
    sub = export.add_subparsers(dest="export_command", metavar="WHAT", required=True)
    ts = sub.add_parser(
        "training-set", help="reviewed (and confident) birds as a folder-per-species set of crops for the trainer",
        description="Cut every labelled bird from its frame file as the edge cut it (same box, margin, decode and "
                    "resize) into OUT/<species>/*.png, hard negatives (rejected) into OUT/_negatives/, and write "
                    "OUT/manifest.json (per crop: frame sha256, detection id, box, label, label source, reviewer; "
                    "counts; frames whose file is gone). Labels: a bird's own review, else its event's review, else "
                    "(without --reviewed-only) the machine's species at or above the threshold. `unknown` never "
                    "labels a crop. The folder is what `trainer train --data OUT --init-from BUNDLE` reads.")
    ts.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder to create (new or empty)")
    ts.add_argument("--reviewed-only", action="store_true", help="only crops a review labels (no machine labels)")
    ts.add_argument("--since", metavar="DATE", help="only frames captured from this local date (YYYY-MM-DD) or date-time on")
    ts.add_argument("--size", type=positive_int, metavar="N",
                    help="square crop size (default: the configured classifier's input size)")
    ts.add_argument("--min-confidence", type=_fraction, metavar="X",
                    help="machine labels: confidence needed (default: [classify] thresholds / threshold)")
    ts.add_argument("--margin", type=_fraction, metavar="F",
                    help="margin around each box, a fraction of its longer side (default: [detector] crop_margin)")
    _db_flags(ts)
    ts.set_defaults(func=cmd_training_set)
    from edge.cli import ecology  # camtrap-dp, coco-ct

    ecology.register(sub)
    from edge.cli import share  # ebird, inaturalist

    share.register(sub)

    from edge.cli.events_export import add_events_parser  # its own module: edge/exports/events.py
    add_events_parser(sub)

    thresholds = subparsers.add_parser("thresholds", help="per-species confidence thresholds from reviews")
    tsub = thresholds.add_subparsers(dest="thresholds_command", metavar="ACTION", required=True)
    sg = tsub.add_parser(
        "suggest", help="the lowest threshold per species that keeps the reviewed precision at the goal",
        description="For each species the machine named in reviewed events and birds (confirmed = right, corrected "
                    "or rejected = wrong): the lowest reviewed confidence at which the share right among those at "
                    "or above it reaches --precision. Species with fewer than --min-reviews reviews are listed as such.")
    sg.add_argument("--precision", type=_fraction, default=0.95, metavar="P", help="precision goal, 0..1 (default 0.95)")
    sg.add_argument("--min-reviews", type=positive_int, default=20, metavar="N",
                    help="reviews a species needs for a suggestion (default 20)")
    sg.add_argument("--write", type=Path, metavar="CONFIG",
                    help="write the suggestions into this TOML's [classify] thresholds, keeping the rest of the file "
                         "(needs the tomlkit package; without it the lines to paste are printed)")
    sg.add_argument("--format", choices=["table", "json"], default="table", help="output format")
    _db_flags(sg)
    sg.set_defaults(func=cmd_thresholds_suggest)


def _db_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", type=Path, help="SQLite database (default: [storage] database)")
    parser.add_argument("--config", type=Path, help="TOML configuration (database, model, thresholds)")


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{value} must be between 0 and 1")
    return value


def _usage(message: str):
    from edge.cli.common import UsageError

    return UsageError(message)


def _config(args: argparse.Namespace) -> EdgeConfig | None:
    """The configuration: --config, else the default file when --db is not given; None for --db alone."""
    if args.db is not None and args.config is None:
        return None
    return load_config(args.config, overrides={"storage": {"database": str(args.db)}} if args.db else None)


def _open(args: argparse.Namespace, config: EdgeConfig | None):
    from edge.store.db import StoreError, open_readonly

    database = args.db if config is None else config.storage.database
    busy = 30.0 if config is None else config.storage.busy_timeout_s
    try:
        return open_readonly(database, busy)
    except StoreError as error:
        raise _usage(f"--db: {error}") from None


def _crop_size(args: argparse.Namespace, config: EdgeConfig | None) -> tuple[int, int]:
    """--size, else the configured classifier's input (from its manifest, else its interpreter)."""
    if args.size is not None:
        return args.size, args.size
    if config is None or config.model.path is None:
        raise _usage("--size: needed without a configured classifier ([model] path of --config)")
    from edge.classify.model import ModelError, TFLiteModel, resolve_model

    try:
        spec = resolve_model(config.model.path, config.model.labels)
    except ModelError as error:
        raise _usage(f"model.path: {error}") from None
    shape = ((spec.manifest or {}).get("input") or {}).get("shape")
    if shape and len(shape) == 4:
        return int(shape[2]), int(shape[1])
    return TFLiteModel(spec.tflite_path, threads=1).input_size


def cmd_training_set(args: argparse.Namespace) -> int:
    from edge.exports.training_set import TrainingSetError, export_training_set
    from edge.store.queries import ReportError, parse_bound, station_zone
    from edge.store.times import format_utc

    config = _config(args)
    size = _crop_size(args, config)
    db = _open(args, config)
    since = None
    if args.since:
        try:
            since = format_utc(parse_bound(args.since, station_zone(db), end=False).moment)
        except ReportError as error:
            raise _usage(f"--since: {error}") from None
    classify = config.classify if config is not None else None

    def threshold(species: str) -> float:
        if args.min_confidence is not None:
            return args.min_confidence
        if classify is None:
            return 0.5
        return classify.thresholds.get(species, classify.threshold)

    margin = args.margin if args.margin is not None else (config.detector.crop_margin if config else 0.15)
    source: dict[str, Any] = {"database": str(args.db if config is None else config.storage.database),
                              "model": str(config.model.path) if config and config.model.path else None}
    try:
        report = export_training_set(db.conn, args.out, size, margin=margin, reviewed_only=args.reviewed_only,
                                     since_utc=since, threshold=threshold, source=source,
                                     hide_people=config.privacy.hide_people if config is not None else True)
    except TrainingSetError as error:
        raise _usage(str(error)) from None
    finally:
        db.conn.close()
    print("\n".join(report.lines()))
    return EXIT_OK


def cmd_thresholds_suggest(args: argparse.Namespace) -> int:
    from edge.operate.thresholds import reviewed_outcomes, suggest, toml_lines

    config = _config(args)
    db = _open(args, config)
    try:
        suggestions = suggest(reviewed_outcomes(db.conn), args.precision, args.min_reviews)
    finally:
        db.conn.close()
    current = config.classify if config is not None else None
    if args.format == "json":
        print(json.dumps([s.__dict__ for s in suggestions], indent=2, ensure_ascii=False))
    else:
        _print_table(suggestions, current, args.precision)
    if args.write is None:
        return EXIT_OK
    lines = toml_lines(suggestions)
    if not any(s.threshold is not None for s in suggestions):
        print("nothing to write: no species has a suggestion", file=sys.stderr)
        return EXIT_OK
    try:
        import tomlkit
    except ImportError:
        print(f"edge: --write: the tomlkit package is not installed, so {args.write} is left as it is (rewriting it "
              "without tomlkit would lose its comments and layout); paste these lines into it instead:",
              file=sys.stderr)
        print("\n".join(lines))
        return EXIT_USAGE
    write_thresholds(tomlkit, args.write, {s.species: s.threshold for s in suggestions if s.threshold is not None})
    print(f"wrote [classify] thresholds for {sum(s.threshold is not None for s in suggestions)} species into {args.write}")
    return EXIT_OK


def write_thresholds(tomlkit, path: Path, thresholds: dict[str, float]) -> None:
    """Merge `thresholds` into the file's [classify] thresholds (other species' entries and the
    rest of the file, comments included, stay), atomically; the result must still load."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    document = tomlkit.parse(text)
    classify = document.get("classify")
    if classify is None:
        classify = tomlkit.table()
        document["classify"] = classify
    table = classify.get("thresholds")
    if table is None:
        table = tomlkit.inline_table()
        classify["thresholds"] = table
    for species, value in sorted(thresholds.items()):
        table[species] = value
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(tomlkit.dumps(document), encoding="utf-8")
    load_config(tmp)  # refuse to leave a file the daemon would not start with
    os.replace(tmp, path)


def _print_table(suggestions, current, precision: float) -> None:
    rows = [["species", "reviews", "right", "current", f"suggested (>= {precision:.0%})", "precision", "kept", "note"]]
    for s in suggestions:
        now = current.thresholds.get(s.species, current.threshold) if current is not None else None
        rows.append([s.species, str(s.reviews), str(s.right), f"{now:.2f}" if now is not None else "-",
                     f"{s.threshold:.3f}" if s.threshold is not None else "-",
                     f"{s.precision:.3f}" if s.precision is not None else "-", str(s.kept),
                     "" if s.status == "ok" else s.status])
    if len(rows) == 1:
        print("no reviewed events or birds with a machine species yet")
        return
    print("\n".join(aligned(rows, [False, True, True, True, True, True, True, False])))
