"""`edge clock correct | history`: fix a camera's recorded times after the fact.

The correction itself is edge/store/corrections.py (one transaction; visits and tallies follow);
this module parses the flags, reads the configuration (station zone, independence interval,
database) and prints what moved. Exit codes: 0 applied (or planned with --dry-run), 2 usage (a
bad option, a range with no frame, a visit the range would split).
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from edge.cli.common import EXIT_OK
from edge.config import ConfigError, load_config


def register(subparsers) -> None:
    """Add `edge clock` to the `edge` parser."""
    clock = subparsers.add_parser(
        "clock", help="camera clocks after the fact: correct a camera's recorded times, list the corrections",
        description="A camera's clock was wrong (reset after a battery change, on winter time, drifting): shift "
                    "the capture times of its recorded frames in a range by an offset; its visits move with "
                    "them and the daily tallies follow, in one transaction, and the correction is recorded. "
                    "See docs/edge.md (Camera clocks).")
    commands = clock.add_subparsers(dest="clock_command", required=True, metavar="{correct,history}")
    correct = commands.add_parser(
        "correct", help="shift a camera's recorded times in a range",
        description="--since/--until are the camera's own (wrong) times as `edge frames` shows them, in the "
                    "station's zone: a local date (whole day) or date-time. Give the offset in seconds, or a "
                    "pair read at a site visit: what the camera showed (--camera-time) and the true time "
                    "(--true-time). A visit with frames on both sides of the range is not split: the "
                    "correction is refused and names it.")
    correct.add_argument("--camera", required=True, metavar="NAME", help="the camera whose clock was wrong")
    correct.add_argument("--since", required=True, metavar="DATE", help="start of the range, camera time (inclusive)")
    correct.add_argument("--until", required=True, metavar="DATE",
                         help="end of the range, camera time (a date: the whole day; a date-time: exclusive)")
    how = correct.add_mutually_exclusive_group(required=True)
    how.add_argument("--offset-s", type=float, metavar="SECONDS",
                     help="seconds to add to the camera's times (negative: the camera was ahead)")
    how.add_argument("--camera-time", metavar="DATETIME",
                     help="what the camera's clock showed (with --true-time), e.g. 2000-01-01T00:07:00")
    correct.add_argument("--true-time", metavar="DATETIME", help="the true time at that moment, e.g. 2026-06-10T09:41:00")
    correct.add_argument("--reviewer", required=True, metavar="NAME", help="who makes the correction (recorded)")
    correct.add_argument("--reason", metavar="TEXT", help="why (recorded), e.g. 'reset after a battery change'")
    correct.add_argument("--dry-run", action="store_true", help="say what would move, write nothing")
    correct.add_argument("--db", type=Path, help="SQLite database (default: [storage] database)")
    correct.add_argument("--config", type=Path, help="TOML configuration (station zone, [events] independence_s)")
    correct.set_defaults(func=cmd_correct)
    history = commands.add_parser("history", help="the clock corrections recorded")
    history.add_argument("--camera", metavar="NAME", help="only this camera")
    history.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    history.add_argument("--db", type=Path, help="SQLite database (default: [storage] database)")
    history.add_argument("--config", type=Path, help="TOML configuration")
    history.set_defaults(func=cmd_history)


def _usage(message: str):
    from edge.cli.common import UsageError

    return UsageError(message)


def _settings(args: argparse.Namespace) -> tuple[Path, float, float, object]:
    """(database, independence_s, busy timeout, the MQTT outbox or None) from --config/--db (--db
    alone: the defaults, no MQTT)."""
    try:
        config = load_config(args.config, overrides={"storage": {"database": str(args.db)}} if args.db else None)
    except ConfigError:
        if args.db is None:
            raise
        return args.db, 60.0, 30.0, None
    outbox = None
    if config.mqtt.enabled:  # the moved visits go out again; the daemon's publisher sends them
        from edge.publish.outbox_writer import OutboxWriter

        outbox = OutboxWriter(config.station.device_id, config.station.timezone, None, {}, config.mqtt.outbox_max_rows)
    return config.storage.database, config.events.independence_s, config.storage.busy_timeout_s, outbox


def _local(text: str, zone: ZoneInfo, what: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise _usage(f"{what}: {text!r} is not a date-time (YYYY-MM-DDTHH:MM[:SS], optionally with an offset)") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


def cmd_correct(args: argparse.Namespace) -> int:
    from edge.store.corrections import Correction, CorrectionError, correct, offset_from_pair, open_for_correction
    from edge.store.db import StoreError
    from edge.store.queries import ReportError, parse_bound

    if args.camera_time is not None and args.true_time is None:
        raise _usage("--camera-time needs --true-time (the true time at the same moment)")
    if args.true_time is not None and args.camera_time is None:
        raise _usage("--true-time goes with --camera-time")
    database, independence_s, busy, outbox = _settings(args)
    try:
        conn = open_for_correction(database, busy)
    except StoreError as error:
        raise _usage(f"--db: {error}") from None
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'timezone'").fetchone()
        zone = ZoneInfo(row[0] if row and row[0] else "UTC")
        try:
            since = parse_bound(args.since, zone, end=False).moment
            until = parse_bound(args.until, zone, end=True).moment
        except ReportError as error:
            raise _usage(f"--since/--until: {error}") from None
        if args.offset_s is not None:
            offset = timedelta(seconds=args.offset_s)
        else:
            try:
                offset = offset_from_pair(_local(args.camera_time, zone, "--camera-time"),
                                          _local(args.true_time, zone, "--true-time"))
            except CorrectionError as error:
                raise _usage(str(error)) from None
        try:
            result = correct(conn, Correction(args.camera, since, until, offset, args.reviewer, args.reason), zone,
                             independence_s=independence_s, dry_run=args.dry_run, outbox=outbox)
        except CorrectionError as error:
            raise _usage(str(error)) from None
    finally:
        conn.close()
    verb = "would move" if args.dry_run else "moved"
    print(f"camera {args.camera}: {verb} {result.frames} frame(s) and {len(result.events)} visit(s) by "
          f"{offset.total_seconds():+.0f} s ({_human(offset)})"
          + ("" if args.dry_run else f"; correction {result.correction_id} recorded"))
    for moved, other in result.near:
        print(f"note: visit {moved[:8]} now lies within {independence_s:g} s of visit {other[:8]} (not merged)")
    return EXIT_OK


def _human(offset: timedelta) -> str:
    seconds = abs(offset.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    text = (f"{int(days)} d " if days else "") + f"{int(hours):02d}:{int(minutes):02d}:{seconds:06.3f}"
    return ("-" if offset < timedelta(0) else "+") + text


def cmd_history(args: argparse.Namespace) -> int:
    from edge.cli import tables
    from edge.store.corrections import history
    from edge.store.db import StoreError, open_readonly

    database, _, busy, _ = _settings(args)
    try:
        db = open_readonly(database, busy)
    except StoreError as error:
        raise _usage(f"--db: {error}") from None
    try:
        rows = history(db.conn, args.camera)
    finally:
        db.conn.close()
    columns = ["id", "created_at", "reviewer", "camera", "since", "until", "offset_s", "frames", "events", "reason"]
    if args.format == "json":
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    else:
        print(tables.render(rows, columns, "table"))
    return EXIT_OK
