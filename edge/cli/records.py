"""`edge counts`, `edge events`, `edge frames`: what the station recorded, as tables, CSV or JSON.

Each command is a query of edge/store/queries.py (a device's own database) or of
fleet/reports.py (a central database: a postgresql:// URL or the collector's SQLite file),
printed by edge/cli/tables.py; the species are named as people read them in a table, and kept
as stored in CSV and JSON (what --species takes and a program joins on).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from edge.cli import tables
from edge.cli.common import EXIT_OK, UsageError
from edge.config import ConfigError, load_config


def register(sub) -> None:
    """Add `edge counts`, `edge events` and `edge frames`."""
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


