"""`edge export camtrap-dp` and `edge export coco-ct`: the station's data for ecologists' tools.

The work is in edge/exports (camtrap_dp.py, coco_ct.py, camtrap_dp_validate.py); this module parses the
flags, reads the configuration (deployments, project) and the database, and prints. Exit codes:
0 ok, 1 the package was written and --validate found it invalid, 2 usage (an output in the way,
missing deployment metadata without --force, a bad period or camera; nothing was written).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edge.cli.common import EXIT_OK
from edge.config import EdgeConfig, load_config

EXIT_INVALID = 1  # the package does not validate
CACHE = "cache"  # --validate without a folder: the official files, fetched once into the cache


def register(sub) -> None:
    """Add `camtrap-dp` and `coco-ct` to `edge export`'s sub-commands."""
    dp = sub.add_parser(
        "camtrap-dp", help="a Camtrap DP 1.0.2 package (deployments, media, observations) for GBIF, camtrapdp, Agouti",
        description="Write DIR/datapackage.json, deployments.csv, media.csv and observations.csv (Camtrap DP 1.0.2). "
                    "Event-level observations: one per event (animal / unknown / blank, counts summing to `edge "
                    "counts --individuals`), human where reviewed; media-level: one per detected bird with its box, "
                    "blank for empty frames. Deployments come from [cameras.deployment], project metadata from "
                    "[project]; missing coordinates or required project metadata refuse the export unless --force.")
    dp.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder to create (new or empty)")
    _period_flags(dp)
    dp.add_argument("--validate", nargs="?", const=CACHE, metavar="FOLDER",
                    help="validate the package with frictionless (pip install 'trailcam[ecology]'): against the "
                         "official Camtrap DP 1.0.2 files, fetched once into ~/.cache/trailcam/camtrap-dp-1.0.2, or "
                         "against a local copy in FOLDER (no network); exit 1 when invalid")
    dp.add_argument("--force", action="store_true",
                    help="write even when Camtrap DP's required metadata is missing (the summary lists what)")
    _db_flags(dp)
    dp.set_defaults(func=cmd_camtrap_dp)

    coco = sub.add_parser(
        "coco-ct", help="COCO Camera Traps JSON (images, sequences, boxes) for MegaDetector's tools and Timelapse",
        description="Write FILE: images (location = deploymentID, local datetime, seq_id = event, seq_num_frames, "
                    "frame_num), annotations (one per bird: category, bbox in absolute pixels where the image size "
                    "is known and bbox_relative normalised; category 0 = empty for frames with no bird), categories "
                    "(0 = empty, one per label with its scientific name).")
    coco.add_argument("--out", type=Path, required=True, metavar="FILE", help="JSON file to write (refused if it exists)")
    _period_flags(coco)
    coco.add_argument("--force", action="store_true", help="replace FILE when it exists")
    _db_flags(coco)
    coco.set_defaults(func=cmd_coco_ct)


def _period_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", metavar="DATE", help="from this local date (YYYY-MM-DD) or date-time on")
    parser.add_argument("--until", metavar="DATE", help="up to this local date (included) or date-time")
    parser.add_argument("--camera", action="append", default=[], metavar="NAME",
                        help="only this camera (repeatable; default: every camera with data or a deployment)")


def _db_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", type=Path, help="SQLite database (default: [storage] database)")
    parser.add_argument("--config", type=Path,
                        help="TOML configuration (deployments, [project], database); without it and with --db, "
                             "the station id and zone come from the database and no deployment has coordinates")


def _usage(message: str):
    from edge.cli.common import UsageError

    return UsageError(message)


def _inputs(args: argparse.Namespace):
    """(configuration, read-only database, selection) from the flags."""
    from edge.ecology.deployments import database_cameras
    from edge.ecology.media import Selection
    from edge.store.db import StoreError, open_readonly, schema_version
    from edge.store.queries import ReportError, parse_bound
    from edge.store.schema import SCHEMA_VERSION

    config = None
    if args.config is not None or args.db is None:
        config = load_config(args.config, overrides={"storage": {"database": str(args.db)}} if args.db else None)
    database = args.db if config is None else config.storage.database
    try:
        db = open_readonly(database, 30.0 if config is None else config.storage.busy_timeout_s)
    except StoreError as error:
        raise _usage(f"--db: {error}") from None
    version = schema_version(db)
    if version != SCHEMA_VERSION:
        db.conn.close()
        raise _usage(f"--db: {database}: schema version {version}, the exports need {SCHEMA_VERSION}: restart the "
                     "daemon once so that it migrates the database")
    if config is None:
        config = _config_from_database(db, database)
    zone = config.station.zone
    try:
        since = parse_bound(args.since, zone, end=False).moment if args.since else None
        until = parse_bound(args.until, zone, end=True).moment if args.until else None
    except ReportError as error:
        db.conn.close()
        raise _usage(f"--since/--until: {error}") from None
    if since is not None and until is not None and until <= since:
        db.conn.close()
        raise _usage(f"--until: {args.until} is not after --since {args.since}")
    known = [c.name for c in config.cameras] + [c for c in database_cameras(db) if c not in {x.name for x in config.cameras}]
    unknown = [name for name in args.camera if name not in known]
    if unknown:
        db.conn.close()
        raise _usage(f"--camera: {', '.join(map(repr, unknown))}: no such camera (known: {', '.join(known) or 'none'})")
    return config, db, Selection(since, until, tuple(dict.fromkeys(args.camera)))


def _config_from_database(db, database: Path) -> EdgeConfig:
    """--db alone: the station's id and zone as the daemon recorded them in `meta`."""
    meta = dict(db.conn.execute("SELECT key, value FROM meta WHERE key IN ('station_id', 'timezone')").fetchall())
    station = {key: meta[name] for key, name in (("device_id", "station_id"), ("timezone", "timezone")) if meta.get(name)}
    try:
        return EdgeConfig.model_validate({"station": station, "storage": {"database": str(database)}})
    except ValueError:
        return EdgeConfig.model_validate({"storage": {"database": str(database)}})


def cmd_camtrap_dp(args: argparse.Namespace) -> int:
    from edge.exports.camtrap_dp import ExportError, export_camtrap_dp, prepare_out

    try:
        prepare_out(args.out)
    except ExportError as error:
        raise _usage(str(error)) from None
    config, db, selection = _inputs(args)
    try:
        summary = export_camtrap_dp(config, db, args.out, selection, force=args.force)
    except ExportError as error:
        raise _usage(str(error)) from None
    finally:
        db.conn.close()
    print("\n".join(summary.lines()))
    if args.validate is None:
        return EXIT_OK
    return _validate(args.out, args.validate)


def _validate(package: Path, source: str) -> int:
    from edge.exports.camtrap_dp_validate import ValidationSetupError, fetch_standards, validate_package

    try:
        if source == CACHE:
            standards, fetched = fetch_standards()
            print(f"standards: {'fetched into' if fetched else 'cached in'} {standards}")
        else:
            standards = Path(source)
        report = validate_package(package, standards)
    except ValidationSetupError as error:
        raise _usage(f"--validate: {error} (the package was written to {package})") from None
    print("\n".join(report.lines()))
    return EXIT_OK if report.valid else EXIT_INVALID


def cmd_coco_ct(args: argparse.Namespace) -> int:
    from edge.exports.coco_ct import CocoError, export_coco_ct

    if args.out.exists() and (args.out.is_dir() or not args.force):
        raise _usage(f"--out: {args.out} exists (nothing was written"
                     + ("" if args.out.is_dir() else "; --force replaces it") + ")")
    config, db, selection = _inputs(args)
    try:
        summary = export_coco_ct(config, db, args.out, selection, force=args.force)
    except CocoError as error:
        raise _usage(str(error)) from None
    finally:
        db.conn.close()
    print("\n".join(summary.lines()))
    return EXIT_OK
