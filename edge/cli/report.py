"""`edge report`: effort, relative abundance, species accumulation, activity, naive occupancy and
detection histories for a period and a set of cameras, as CSVs and one HTML page.

The analyses are edge/ecology/analyses.py, the files edge/ecology/report.py; this module parses
the flags, reads the configuration (deployments, project title) and the database, and prints
what it wrote. Exit codes: 0 written, 2 usage (a bad option, an output folder in the way, a
database the daemon has not migrated yet).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge.cli.common import EXIT_OK, positive_int
from edge.config import EdgeConfig, load_config


def register(subparsers) -> None:
    """Add `edge report` to the `edge` parser."""
    from edge.ecology.analyses import DEFAULT_GAP_HOURS, DEFAULT_OCCASION_DAYS

    report = subparsers.add_parser(
        "report", help="camera-trap analyses as an HTML report and CSVs (effort, RAI, accumulation, activity, "
                       "occupancy, detection histories)",
        description="Write OUT/report.html (plots embedded, no network needed to view it) and the tables as CSV: "
                    "effort.csv and gaps.csv (camera-days per deployment, silences without any frame), rai.csv "
                    "(independent events per 100 camera-days, per species and deployment), accumulation.csv, "
                    "activity.csv (events per station-local hour), occupancy.csv (naive occupancy), "
                    "detection_histories.csv (long) with detection_histories/<species>.csv (deployment x occasion "
                    "matrices for unmarked) and detection_effort.csv. Events count as reviewed. The plots need "
                    "matplotlib (pip install 'trailcam[report]'); without it the tables are still written. "
                    "See docs/report.md.")
    report.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder to create (new or empty)")
    report.add_argument("--since", metavar="DATE",
                        help="local date YYYY-MM-DD or date-time YYYY-MM-DDTHH:MM (inclusive; default: each "
                             "deployment's start)")
    report.add_argument("--until", metavar="DATE",
                        help="local date (inclusive, whole day) or date-time (exclusive; default: each deployment's end)")
    report.add_argument("--camera", action="append", metavar="NAME",
                        help="only this camera (repeatable; default: every camera of the config and the database)")
    report.add_argument("--occasion-days", type=positive_int, default=DEFAULT_OCCASION_DAYS, metavar="N",
                        help=f"length of a detection-history occasion in days (default {DEFAULT_OCCASION_DAYS})")
    report.add_argument("--gap-hours", type=_hours, default=DEFAULT_GAP_HOURS, metavar="H",
                        help=f"a camera without any frame for longer than this is counted as off (no effort) "
                             f"(default {DEFAULT_GAP_HOURS:g}; 0: never)")
    report.add_argument("--db", type=Path, help="SQLite database (default: [storage] database)")
    report.add_argument("--config", type=Path,
                        help="TOML configuration: deployments ([cameras.deployment]), project title, database")
    report.set_defaults(func=cmd_report)


def _hours(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{value} must be 0 or more hours")
    return value


def _usage(message: str):
    from edge.cli.common import UsageError

    return UsageError(message)


def _config_and_db(args: argparse.Namespace):
    """The configuration and a read-only database. --db alone: no configuration file is read (the
    defaults, with the station's zone and id taken from the database)."""
    from edge.store.db import StoreError, open_readonly, schema_version
    from edge.store.schema import SCHEMA_VERSION

    config: EdgeConfig | None = None
    if args.db is None or args.config is not None:
        config = load_config(args.config, overrides={"storage": {"database": str(args.db)}} if args.db else None)
    database = args.db if config is None else config.storage.database
    try:
        db = open_readonly(database, 30.0 if config is None else config.storage.busy_timeout_s)
    except StoreError as error:
        raise _usage(f"--db: {error}") from None
    version = schema_version(db) or 0
    if version < 4:
        db.conn.close()
        raise _usage(f"--db: {database}: schema version {version}, the report needs 4 or later (reviews): restart "
                     "the daemon once so that it migrates the database")
    if version > SCHEMA_VERSION:
        db.conn.close()
        raise _usage(f"--db: {database}: schema version {version} is newer than this trailcam: upgrade trailcam")
    if config is None:
        meta = dict(db.conn.execute("SELECT key, value FROM meta WHERE key IN ('timezone', 'station_id')").fetchall())
        station = {"timezone": meta.get("timezone") or "UTC"}
        if meta.get("station_id"):
            station["device_id"] = meta["station_id"]
        config = EdgeConfig.model_validate({"station": station, "storage": {"database": str(database)}})
    return config, db


def cmd_report(args: argparse.Namespace) -> int:
    from edge.classify.names import station_namer
    from edge.ecology.analyses import analyse, load
    from edge.ecology.report import ReportOutputError, check_out, write_report
    from edge.store.queries import ReportError, parse_bound

    try:
        check_out(args.out)  # before reading anything: refuse early, write nothing
    except ReportOutputError as error:
        raise _usage(str(error)) from None
    config, db = _config_and_db(args)
    zone = config.station.zone
    try:
        try:
            since = parse_bound(args.since, zone, end=False).moment if args.since else None
            until = parse_bound(args.until, zone, end=True).moment if args.until else None
        except ReportError as error:
            raise _usage(f"--since/--until: {error}") from None
        if since is not None and until is not None and until <= since:
            raise _usage(f"--until ({args.until}) must be after --since ({args.since})")
        loaded = load(config, db, cameras=args.camera, since=since, until=until)
    finally:
        db.conn.close()
    if args.camera:
        missing = sorted(set(args.camera) - {site.camera for site in loaded.sites})
        if missing:
            print(f"edge: --camera: no deployment with effort in the period for {', '.join(missing)}", file=sys.stderr)
    result = analyse(loaded.sites, loaded.frames, loaded.observations, zone,
                     gap_hours=args.gap_hours, occasion_days=args.occasion_days)
    title = config.project.title or f"trailcam report: {config.station.device_id}"
    period = "Period: " + (f"from {args.since}" if args.since else "from each deployment's start") + ", " + (
        f"until {args.until}" if args.until else "to each deployment's end")
    try:
        written = write_report(args.out, result, title=title, period=period, taxa=loaded.taxa,
                               namer=station_namer(config))
    except ReportOutputError as error:
        raise _usage(str(error)) from None
    if written.note:
        print(f"edge: {written.note}", file=sys.stderr)
    if not result.efforts:
        from edge.ecology.report import NO_DEPLOYMENTS

        print(f"edge: {NO_DEPLOYMENTS}", file=sys.stderr)
    print(f"wrote {written.out}/report.html and {len(written.files) - 1} CSV files: {len(result.efforts)} deployments, "
          f"{sum(e.effective_days for e in result.efforts):.1f} camera-days after gaps, {result.observations} events, "
          f"{len(result.occupancy)} species")
    return EXIT_OK
