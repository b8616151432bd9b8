"""The `collector` command: `run`, `devices`, `import` (docs/fleet.md, docs/cli.md).

Parses flags and calls collector.service / devices / importer; paho and psycopg are imported
only by the command that needs them, so `collector --help` works anywhere.
Usage errors exit 2; a database that cannot be opened exits 1 with its reason.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from edge.cli.common import positive_int  # one set of argparse types for both commands


def _broker(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r}: expected HOST:PORT, e.g. broker.example.org:8883")
    return host.strip("[]"), int(port)


def _duration(text: str):  # noqa: ANN202 - a timedelta
    from collector.devices import parse_duration

    try:
        return parse_duration(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a duration like 90s, 15m, 2h or 3d") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="collector",
        description="The fleet's central half: devices' MQTT messages into PostgreSQL or SQLite (docs/fleet.md).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="subscribe to the devices' topics and write them to the central database",
                         description="Subscribe (MQTT 5, persistent session, manual acknowledgement after commit) "
                                     "to <prefix>/+/events, counts/+, status and info, and write them to --db.")
    run.add_argument("--broker", required=True, type=_broker, metavar="HOST:PORT", help="the central MQTT broker")
    run.add_argument("--db", required=True,
                     help="postgresql://user@host/db (password from PGPASSWORD or ~/.pgpass) or a SQLite file path")
    run.add_argument("--prefix", default="trailcam", help="the devices' topic prefix ([mqtt] prefix)")
    run.add_argument("--group", default=None, metavar="NAME",
                     help="share the stream with the other collectors of this group ($share/NAME/...)")
    run.add_argument("--client-id", default=None,
                     help="MQTT client id, unique per collector (default trailcam-collector-<hostname>); "
                          "it names the broker's persistent session")
    run.add_argument("--username", default=None, help="MQTT user name")
    run.add_argument("--password-file", type=Path, default=None,
                     help="file holding the MQTT password (default: $CREDENTIALS_DIRECTORY/mqtt_password if present)")
    run.add_argument("--tls", action="store_true", help="connect with TLS (the system CAs unless --ca-file)")
    run.add_argument("--ca-file", default=None, help="CA certificate for the broker (implies --tls)")
    run.add_argument("--cert-file", default=None, help="client certificate (with --key-file; implies --tls)")
    run.add_argument("--key-file", default=None, help="client key")
    run.add_argument("--batch-size", type=positive_int, default=500, help="most messages per transaction")
    run.add_argument("--batch-ms", type=positive_int, default=50,
                     help="longest wait after a batch's first message before it is written (milliseconds)")
    run.add_argument("--receive-maximum", type=positive_int, default=2000,
                     help="most unacknowledged messages the broker may send (MQTT 5 Receive Maximum)")
    run.add_argument("--session-expiry", type=_duration, default="7d",
                     help="how long the broker keeps this collector's session and queue while it is away")
    run.add_argument("--protocol", choices=("5", "3.1.1"), default="5",
                     help="MQTT version: 5 (session expiry, Receive Maximum) or 3.1.1 (about twice the messages/s "
                          "in paho; the broker's settings then bound the session and the in-flight window)")
    run.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                     help="log verbosity (a summary line every minute at INFO)")

    devices = sub.add_parser("devices", help="list the fleet's devices, flagging the silent ones",
                             description="Every device the collector has heard of: state (online/offline/stopped), "
                                         "last seen, versions, time zone; silent ones flagged.")
    devices.add_argument("--db", required=True, help="the central database (URL or SQLite path)")
    devices.add_argument("--silent-after", type=_duration, default="2h",
                         help="flag devices not heard from for longer than this (90s, 15m, 2h, 3d)")
    devices.add_argument("--format", choices=("table", "json"), default="table",
                         help="a table for people or JSON (every column, silent flag, seconds silent) for scripts")

    imp = sub.add_parser("import", help="load an `edge export events` file (JSON Lines) with the same idempotency",
                         description="Load a file written by `edge export events` through the same message handler "
                                     "as MQTT: importing it twice leaves the same rows.")
    imp.add_argument("file", type=Path, help="the JSON Lines file")
    imp.add_argument("--db", required=True, help="the central database (URL or SQLite path)")
    imp.add_argument("--prefix", default="trailcam", help="the topic prefix in the file")
    return parser


def _password(args: argparse.Namespace) -> str | None:
    path = args.password_file
    if path is None and os.environ.get("CREDENTIALS_DIRECTORY"):
        candidate = Path(os.environ["CREDENTIALS_DIRECTORY"]) / "mqtt_password"
        path = candidate if candidate.exists() and candidate.stat().st_size else None
    return None if path is None else path.read_text(encoding="utf-8").rstrip("\r\n")


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from collector.service import Collector, CollectorConfig

    if (args.cert_file is None) != (args.key_file is None):
        parser.error("--cert-file and --key-file must be given together")
    try:
        password = _password(args)
    except OSError as exc:
        parser.error(f"--password-file: {exc}")
    host, port = args.broker
    config = CollectorConfig(
        broker_host=host, broker_port=port, db=args.db, prefix=args.prefix, group=args.group,
        username=args.username, password=password,
        tls=bool(args.tls or args.ca_file or args.cert_file), ca_file=args.ca_file,
        cert_file=args.cert_file, key_file=args.key_file, batch_size=args.batch_size, batch_ms=args.batch_ms,
        receive_maximum=args.receive_maximum, protocol=args.protocol, session_expiry_s=int(args.session_expiry.total_seconds()),
    )
    if args.client_id:
        config.client_id = args.client_id
    collector = Collector(config)
    collector.install_signal_handlers()
    return collector.run()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=getattr(args, "log_level", "INFO"), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from fleet.db import CentralDbError
    from fleet.schema import SchemaError

    try:
        if args.command == "run":
            return _run(args, parser)
        if args.command == "devices":
            from collector.devices import list_devices, render_table

            found = list_devices(args.db, silent_after=args.silent_after)
            print(json.dumps(found, indent=2) if args.format == "json" else render_table(found))
            return 0
        if args.command == "import":
            from collector.importer import import_file
            from collector.sink import Sink, SinkUnavailable

            if not args.file.is_file():
                parser.error(f"{args.file}: no such file")
            sink = Sink(args.db)
            try:
                stats = import_file(args.file, sink, prefix=args.prefix)
            except SinkUnavailable as exc:
                print(f"collector import: database unavailable: {exc}", file=sys.stderr)
                return 1
            finally:
                sink.close()
            print(f"imported {args.file}: {stats.events} event messages, {stats.counts} counts, "
                  f"{stats.statuses} status, {stats.infos} info, {stats.rejected} rejected, {stats.ignored} ignored")
            return 0
    except (CentralDbError, SchemaError) as exc:
        print(f"collector {args.command}: {exc}", file=sys.stderr)
        return 1
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
