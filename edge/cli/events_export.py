"""`edge export events`: the flags and the command; the lines come from edge/exports/events.py.

Without --config the device id and time zone come from the database's `meta` and the cameras
from its events (no deployments, no scientific names, no model version); with it, from the
configuration, as the daemon publishes them.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from edge.cli.common import EXIT_OK, EXIT_USAGE
from edge.config import load_config

log = logging.getLogger(__name__)


def add_events_parser(sub) -> None:
    """Add `events` to `edge export`."""
    ev = sub.add_parser(
        "events", help="events, day counts and the device's info as JSON Lines, for `collector import`",
        description="Write the device's MQTT messages of a period as a file, one {\"topic\", \"payload\"} object a "
                    "line, built exactly as the daemon publishes them: its info, each event (change end, or update "
                    "while open, with its review) and each day's counts. For sites without a network: carry the "
                    "file to the central collector (`collector import FILE`), which loads it with the same "
                    "idempotency as MQTT. See docs/sites.md.")
    ev.add_argument("--out", required=True, metavar="FILE", help="file to write (replaced); - for standard output")
    ev.add_argument("--since", help="local date YYYY-MM-DD or date-time YYYY-MM-DDTHH:MM (inclusive)")
    ev.add_argument("--until", help="local date (inclusive, whole day) or date-time (exclusive)")
    ev.add_argument("--camera", help="only this camera's events (then no day counts: they are the device's)")
    ev.add_argument("--prefix", help="topic prefix (default: [mqtt] prefix of --config, else trailcam)")
    ev.add_argument("--db", type=Path, help="SQLite database (default: [storage] database)")
    ev.add_argument("--config", type=Path, help="TOML configuration (database, device, zone, cameras, model)")
    ev.set_defaults(func=cmd_export_events)


def _model_details(config) -> tuple[str | None, dict[str, str], str | None]:
    """(model_version, scientific names, detector id) of the configured models; what cannot be
    read (a model moved since) is left out with a warning rather than failing the export."""
    version, names, detector_id = None, {}, None
    if config.model.path is not None:
        from edge.classify.model import ModelError, resolve_model

        try:
            spec = resolve_model(config.model.path, config.model.labels, config.model.no_bird_label)
            version, names = spec.model_version, dict(spec.scientific_names)
        except (ModelError, OSError) as error:
            print(f"edge: warning: [model] path: {error}; exported without model version and scientific names",
                  file=sys.stderr)
    if config.detector.path is not None:
        from edge.detect.model import DetectorError, resolve_detector

        try:
            detector_id = resolve_detector(config.detector.path, config.detector.labels, config.detector.label_offset,
                                           config.detector.bird_labels).model_id
        except (DetectorError, OSError) as error:
            print(f"edge: warning: [detector] path: {error}; exported without the detector id", file=sys.stderr)
    return version, names, detector_id


def cmd_export_events(args: argparse.Namespace) -> int:
    from edge import __version__
    from edge.exports.events import context_from_database, export_messages, write_export
    from edge.store.db import StoreError, open_readonly
    from edge.store.queries import ReportError

    config = None
    if args.config is not None or args.db is None:
        config = load_config(args.config, overrides={"storage": {"database": str(args.db)}} if args.db else None)
    # No --db means the configuration was loaded just above.
    database = args.db if args.db is not None or config is None else config.storage.database
    try:
        db = open_readonly(database, config.storage.busy_timeout_s if config else 30.0)
    except StoreError as error:
        return _usage(f"--db: {error}")
    try:
        if config is not None:
            version, names, detector_id = _model_details(config)
            ctx = context_from_database(db.conn, config.station.device_id, config.station.timezone, version, names)
            cameras, prefix = list(config.cameras) or None, config.mqtt.prefix
        else:
            ctx = context_from_database(db.conn)
            cameras, prefix, detector_id = None, "trailcam", None
        prefix = args.prefix or prefix
        db.conn.execute("BEGIN")  # one snapshot: events and tallies agree
        messages = export_messages(db.conn, ctx, since=args.since, until=args.until, camera=args.camera,
                                   cameras=cameras, software_version=__version__, detector_id=detector_id)
        out = sys.stdout if args.out == "-" else Path(args.out)
        summary = write_export(messages, out, prefix, ctx.device_id)
    except ReportError as error:
        return _usage(f"--since/--until: {error}")
    except ValueError as error:
        return _usage(str(error))
    except OSError as error:
        return _usage(f"--out: {args.out}: {error.strerror or error}")
    finally:
        db.conn.close()
    print(f"exported {summary.events} event(s) ({summary.open_events} still open), {summary.days} day(s) of counts, "
          f"{summary.lines} line(s) for device {ctx.device_id}" + (f" to {args.out}" if args.out != "-" else ""),
          file=sys.stderr)
    return EXIT_OK


def _usage(message: str) -> int:
    print(f"edge export events: {message}", file=sys.stderr)
    return EXIT_USAGE
