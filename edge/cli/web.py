"""`edge web`: the operator's window (edge.web), served by uvicorn; `edge web hash-password`.

The app refuses to start beyond loopback without a login (exit 2, naming web.host and
web.users, before anything is created). The password for `hash-password` comes from stdin
or the terminal, never from the command line (argv is visible to every user in `ps`).
With `--db` naming a central database (postgresql://... or a central SQLite file) it serves
the read-only fleet view instead (fleet.web; docs/web.md, "The fleet view").
"""

from __future__ import annotations

import getpass
import logging
import socket
import sys
from pathlib import Path

from edge.cli.common import EXIT_FAILURE, EXIT_USAGE
from edge.config import load_config

SILENT_AFTER_DEFAULT = "2h"
log = logging.getLogger("edge.web")


def register(subparsers) -> None:
    """Add `edge web` (and `edge web hash-password`) to the `edge` parser."""
    parser = subparsers.add_parser("web", help="the operator's window: pages, charts and review in a browser")
    parser.add_argument("--config", type=Path, help="TOML configuration (default /etc/trailcam/edge.toml when it exists)")
    parser.add_argument("--db", help="SQLite database (overrides [storage] database); or the central database "
                                     "(postgresql://... or a central SQLite file): the read-only fleet view")
    parser.add_argument("--device", help="with a central --db: show this device only (default: the whole fleet)")
    # The default is fleet.devices.DEFAULT_SILENT_AFTER, named here as text so that registering
    # the flag does not load the fleet's server code on a device (tests/edge/web/test_central.py).
    parser.add_argument("--silent-after", default=SILENT_AFTER_DEFAULT,
                        help="with a central --db: flag devices silent for longer than this on the devices page "
                             "(90s, 15m, 2h, 3d; default %(default)s)")
    parser.add_argument("--host", help="address to bind (overrides [web] host; not loopback: a login is required)")
    parser.add_argument("--port", type=int, help="TCP port (overrides [web] port)")
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"],
                        help="log level (overrides [logging] level)")
    parser.set_defaults(func=cmd_web)
    sub = parser.add_subparsers(dest="web_command", metavar="COMMAND")
    hashing = sub.add_parser("hash-password", help="print the scrypt hash of a password read from stdin or "
                                                   "the terminal, for [web] users or the web_password_hash credential")
    hashing.set_defaults(func=cmd_hash_password)


def _read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if first != getpass.getpass("again: "):
            raise ValueError("the two passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def cmd_hash_password(args) -> int:
    from edge.web.auth import hash_password

    try:
        print(hash_password(_read_password()))
    except ValueError as error:
        print(f"edge: {error}", file=sys.stderr)
        return EXIT_USAGE
    return 0


class CentralUnreachable(Exception):
    """The central database cannot be reached (its message names the database redacted)."""


def _central_app(config, args):  # noqa: ANN001, ANN202
    """The fleet view's app (fleet.web); a bad --silent-after is a usage error."""
    from edge.web.app import WebStartError
    from fleet.db import CentralDbError
    from fleet.devices import parse_duration
    from fleet.web import create_central_app

    try:
        silent_after = parse_duration(args.silent_after)
    except ValueError as error:
        raise WebStartError(f"--silent-after {args.silent_after!r}: {error} (e.g. 90s, 15m, 2h, 3d)") from None
    try:
        return create_central_app(config, args.db, device=args.device, silent_after=silent_after)
    except CentralDbError as error:
        raise CentralUnreachable(str(error)) from None


def _is_central(database: str) -> bool:
    """Whether --db names a central database; the fleet's code loads only when --db is given."""
    from fleet.reports import is_central

    return is_central(database)


def cmd_web(args) -> int:
    from edge.cli.common import keep_daemon_light, setup_logging

    keep_daemon_light()  # before sqlite-utils loads: no pandas in a long-lived process
    from edge.web.app import WebStartError, create_app

    central = args.db is not None and _is_central(args.db)
    if args.device is not None and not central:
        print("edge: --device needs --db naming a central database (postgresql://... or a central SQLite file)",
              file=sys.stderr)
        return EXIT_USAGE
    overrides: dict = {}
    if args.db and not central:
        overrides["storage"] = {"database": str(Path(args.db))}
    if args.host or args.port:
        overrides["web"] = {k: v for k, v in (("host", args.host), ("port", args.port)) if v}
    if args.log_level:
        overrides["logging"] = {"level": args.log_level}
    config = load_config(args.config, overrides=overrides or None)
    setup_logging(config.logging.level)
    try:
        if central:
            app = _central_app(config, args)
        else:
            app = create_app(config)
    except WebStartError as error:
        print(f"edge: {error}", file=sys.stderr)
        return EXIT_USAGE
    except CentralUnreachable as error:
        print(f"edge: {error}", file=sys.stderr)
        return EXIT_FAILURE
    from edge.web.server import OpenFileLimitError, check_open_files, serve

    try:
        check_open_files(config.web.max_connections)
    except OpenFileLimitError as error:
        print(f"edge: {error}", file=sys.stderr)
        return EXIT_USAGE
    host = config.web.host
    shown = f"[{host}]" if ":" in host else host
    # The socket is bound and listening before the URL is logged: whoever reads the line (an
    # operator, a test, a health check) can connect at once.
    try:
        listening = socket.create_server((host, config.web.port), family=socket.AF_INET6 if ":" in host else socket.AF_INET,
                                         backlog=128)
    except OSError as error:
        print(f"edge: web.host/web.port: cannot listen on {shown}:{config.web.port}: {error.strerror or error}",
              file=sys.stderr)
        return EXIT_FAILURE
    from fleet.db import redact

    database = f"the fleet view of {redact(args.db)}" if central else f"database {config.storage.database}"
    log.info("serving the trailcam web app on http://%s:%d/ (%s)", shown, config.web.port, database)
    if not config.web.loopback and config.web.allowed_hosts is None:
        log.warning("web.allowed_hosts is unset: requests are answered only for %s; add the names people use "
                    "to reach this device", ", ".join(sorted(config.web.host_names())))
    serve(app, config.web, listening)
    return 0
