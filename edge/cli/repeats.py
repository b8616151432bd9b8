"""`edge repeats list | release`: the places repeat-detection elimination suppressed (and its
candidates), and a person's word that a place is a bird place.

The rule is edge/detect/repeats.py, the memory edge/store/repeats.py; this module parses the
flags and prints. Exit codes: 0 done, 2 usage (a bad option, a database that cannot be opened,
an unknown place id).
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path

from edge.cli.common import EXIT_OK
from edge.config import ConfigError, load_config

STATE_CHOICES = ("suppressed", "released", "candidate", "all")
COLUMNS = ["id", "camera", "state", "box", "repeats", "days", "counted", "suppressed", "first_seen", "last_seen",
           "released_by"]


def register(subparsers) -> None:
    """Add `edge repeats` to the `edge` parser."""
    repeats = subparsers.add_parser(
        "repeats", help="repeat detections: the places suppressed as never moving (a rock, a stump), and release",
        description="With a detector, a box that recurs at the same place of a camera's frame with the same look "
                    "over many frames and days ([repeats]) is suppressed: recorded with flag `repeat`, never "
                    "counted. List the places, and release one that is really a bird place: it is never "
                    "suppressed again. See docs/edge.md (Repeat detections).")
    commands = repeats.add_subparsers(dest="repeats_command", required=True, metavar="{list,release}")
    listed = commands.add_parser(
        "list", help="the places, per camera: box, repeats, days, first and last seen, state",
        description="`counted` is how many of the place's detections were counted as birds (before it was "
                    "suppressed, or since it was released: suppression is not retroactive); `suppressed` how "
                    "many were not. Box: ymin,xmin,ymax,xmax as fractions of the frame. Times are UTC capture times.")
    listed.add_argument("--state", choices=STATE_CHOICES, action="append", metavar="STATE",
                        help="suppressed | released | candidate | all; repeatable (default: suppressed and released)")
    listed.add_argument("--camera", metavar="NAME", help="only this camera")
    listed.add_argument("--min-repeats", type=int, default=1, metavar="N",
                        help="only places seen at least N times (candidates: most are a bird seen once)")
    listed.add_argument("--limit", type=int, default=100, metavar="N", help="at most N places (0: all; default 100)")
    listed.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")
    listed.add_argument("--db", type=Path, help="SQLite database (default: [storage] database)")
    listed.add_argument("--config", type=Path, help="TOML configuration")
    listed.set_defaults(func=cmd_list)
    released = commands.add_parser(
        "release", help="a place is a bird place: never suppress it again",
        description="From now on the place's detections are counted as the classifier decides, whatever they look "
                    "like. Detections suppressed before stay as they were recorded.")
    released.add_argument("id", type=int, help="the place's id (edge repeats list)")
    released.add_argument("--reviewer", metavar="NAME", help="who releases it (recorded; default: the login name)")
    released.add_argument("--db", type=Path, help="SQLite database (default: [storage] database)")
    released.add_argument("--config", type=Path, help="TOML configuration")
    released.set_defaults(func=cmd_release)


def _usage(message: str):
    from edge.cli.common import UsageError

    return UsageError(message)


def _database(args: argparse.Namespace) -> tuple[Path, float]:
    """(database, busy timeout) from --db or the configuration."""
    try:
        config = load_config(args.config, overrides={"storage": {"database": str(args.db)}} if args.db else None)
    except ConfigError:
        if args.db is None:
            raise
        return args.db, 30.0
    return config.storage.database, config.storage.busy_timeout_s


def _states(chosen: list[str] | None) -> tuple[str, ...]:
    if not chosen:
        return ("suppressed", "released")
    if "all" in chosen:
        return ("suppressed", "released", "candidate")
    return tuple(dict.fromkeys(chosen))


def _row(place: dict) -> dict:
    box = ",".join(f"{place[k]:.3f}" for k in ("ymin", "xmin", "ymax", "xmax"))
    return {**place, "box": box}


def cmd_list(args: argparse.Namespace) -> int:
    from edge.cli import tables
    from edge.store.db import StoreError, open_readonly
    from edge.store.repeats import list_places

    if args.min_repeats < 1:
        raise _usage(f"--min-repeats: {args.min_repeats} must be at least 1")
    if args.limit < 0:
        raise _usage(f"--limit: {args.limit} must be 0 (all) or more")
    database, busy = _database(args)
    try:
        db = open_readonly(database, busy)
    except StoreError as error:
        raise _usage(f"--db: {error}") from None
    try:
        rows = [_row(p) for p in list_places(db.conn, camera=args.camera, states=_states(args.state),
                                             min_repeats=args.min_repeats, limit=args.limit or None)]
    finally:
        db.conn.close()
    if args.format == "json":
        keys = ["id", "camera", "state", "ymin", "xmin", "ymax", "xmax", "repeats", "days", "counted", "suppressed",
                "first_seen", "last_seen", "suppressed_at", "released_at", "released_by"]
        print(json.dumps([{k: row[k] for k in keys} for row in rows], indent=2, ensure_ascii=False))
    else:
        print(tables.render(rows, COLUMNS, args.format))
    return EXIT_OK


def cmd_release(args: argparse.Namespace) -> int:
    from edge.store.db import StoreError, user_name
    from edge.store.repeat_release import open_writer, release
    from edge.store.repeats import RepeatError

    database, busy = _database(args)
    try:
        conn = open_writer(database, busy)
    except StoreError as error:
        raise _usage(f"--db: {error}") from None
    try:
        done = release(conn, args.id, args.reviewer or user_name(), datetime.now(UTC))
    except RepeatError as error:
        raise _usage(str(error)) from None
    finally:
        conn.close()
    place = done.place
    if done.already:
        print(f"place {place['id']} of camera {place['camera']}: already released by {place['released_by']} "
              f"at {place['released_at']}")
    else:
        print(f"place {place['id']} of camera {place['camera']}: released; its detections are counted from now on "
              f"({place['suppressed']} suppressed before stay as recorded)")
    return EXIT_OK
