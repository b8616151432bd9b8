"""`edge bridge-config`: write a site mosquitto's bridge to the central broker (edge/operate/bridge.py).

A command of its own rather than an `edge install-service` flag: the site broker is often not
on a device at all (one gateway per site, several devices publishing to it), it needs neither
root nor systemd nor a trailcam configuration, and its output is a mosquitto conf.d file, not
a trailcam unit. `--config` only lends the topic prefix ([mqtt] prefix).

With `--device ID ... --acl-out FILE --passwd-out FILE --credentials-dir DIR` it also writes the
broker's access control (edge/operate/broker_access.py): one user per device that may write only
its own topics, so one device cannot publish as another (issue 22, item 3). Either part alone is
fine: `--remote`/`--out` for the bridge, `--acl-out`/`--passwd-out` for the access control.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge.cli.common import EXIT_OK, EXIT_USAGE
from edge.config import load_config
from edge.operate.bridge import (
    DEFAULT_AUTOSAVE_INTERVAL_S,
    DEFAULT_MAX_QUEUED_MESSAGES,
    DEFAULT_RESTART_TIMEOUT,
    PROTOCOLS,
    BridgeError,
    BridgeSettings,
    parse_address,
    read_password_file,
    render_bridge,
    write_private,
)
from edge.operate.broker_access import AccessError, BrokerAccess, new_passwords, render_acl, render_password_file
from edge.operate.broker_access import read_password_file as read_users


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _restart(text: str) -> tuple[int, int]:
    base, _, cap = text.partition(":")
    try:
        return int(base), int(cap or base)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not BASE[:CAP] seconds") from None


def register(subparsers) -> None:
    """Add `edge bridge-config` to the `edge` parser."""
    p = subparsers.add_parser(
        "bridge-config", help="write a site mosquitto's bridge to the central broker (store and forward)",
        description="Write a mosquitto configuration fragment (for /etc/mosquitto/conf.d/) that bridges a site "
                    "broker to the central one: the devices' topics <prefix>/# go out with QoS 1, queued in the "
                    "site broker's persistent store while the link is down. The file is written with mode 0600 "
                    "(it holds the bridge password). See docs/sites.md.")
    p.add_argument("--remote", metavar="HOST:PORT", help="the central broker (with --out: write the bridge)")
    p.add_argument("--out", type=Path, metavar="FILE",
                   help="file to write, e.g. /etc/mosquitto/conf.d/trailcam-bridge.conf (replaced when it exists)")
    p.add_argument("--config", type=Path, help="TOML configuration to take the topic prefix from ([mqtt] prefix)")
    p.add_argument("--prefix", help="topic prefix to forward (default: [mqtt] prefix of --config, else trailcam)")
    p.add_argument("--name", help="bridge connection name and client id at the central broker "
                                  "(default: trailcam-site-<host name>)")
    p.add_argument("--protocol", choices=PROTOCOLS, default="mqttv50", help="MQTT version of the bridge link")
    tls = p.add_argument_group("TLS and login at the central broker")
    tls.add_argument("--tls", action="store_true",
                     help="connect with TLS, verifying the broker against the system's CAs (implied by --cafile)")
    tls.add_argument("--cafile", type=Path, help="CA certificate (PEM) to verify the central broker with")
    tls.add_argument("--certfile", type=Path, help="client certificate (PEM), for brokers that require one")
    tls.add_argument("--keyfile", type=Path, help="private key (PEM) of --certfile")
    tls.add_argument("--username", help="user name at the central broker")
    tls.add_argument("--password-file", type=Path, metavar="FILE",
                     help="file holding the password (first line); never on the command line")
    queue = p.add_argument_group("store and forward")
    queue.add_argument("--max-queued-messages", type=_whole, default=DEFAULT_MAX_QUEUED_MESSAGES, metavar="N",
                       help=f"messages held for the central broker while it is away "
                            f"(default {DEFAULT_MAX_QUEUED_MESSAGES}; about 1 KiB of memory each)")
    queue.add_argument("--autosave-interval", type=_whole, default=DEFAULT_AUTOSAVE_INTERVAL_S, metavar="S",
                       help=f"seconds between saves of the broker's store to disk "
                            f"(default {DEFAULT_AUTOSAVE_INTERVAL_S}; a power cut loses at most this much)")
    queue.add_argument("--persistence-location", type=Path, metavar="DIR",
                       help="folder of the broker's store; only when mosquitto.conf does not set one "
                            "(Debian's does: /var/lib/mosquitto/)")
    queue.add_argument("--restart-timeout", type=_restart, default=DEFAULT_RESTART_TIMEOUT, metavar="BASE[:CAP]",
                       help="reconnect backoff in seconds, jittered from BASE up to CAP "
                            f"(default {DEFAULT_RESTART_TIMEOUT[0]}:{DEFAULT_RESTART_TIMEOUT[1]})")
    access = p.add_argument_group(
        "broker access (docs/fleet.md, \"Broker access\"): per-device users that write only their own topics")
    access.add_argument("--device", action="append", default=[], metavar="ID",
                        help="a device's [station] device_id, its user name at the broker (repeat for each device)")
    access.add_argument("--acl-out", type=Path, metavar="FILE",
                        help="write mosquitto's acl_file: `pattern write <prefix>/%%u/#`, the collector's read "
                             "access, the bridge user's (--username) write access to these devices' topics")
    access.add_argument("--passwd-out", type=Path, metavar="FILE",
                        help="write (or add to) mosquitto's password_file: one user per --device and the collector; "
                             "users already in it keep their passwords")
    access.add_argument("--credentials-dir", type=Path, metavar="DIR",
                        help="where each new user's generated password goes, as <user>.password (mode 0600), "
                             "for the device's [mqtt] password_file; needed with --passwd-out")
    access.add_argument("--collector-user", default="collector", metavar="NAME",
                        help="the collector's user name, reading <prefix>/# (default collector)")
    access.add_argument("--discovery-prefix", default=None, metavar="PREFIX",
                        help="Home Assistant's discovery prefix (default: [mqtt] discovery_prefix of --config, "
                             "else homeassistant)")
    p.set_defaults(func=cmd_bridge_config)


def cmd_bridge_config(args: argparse.Namespace) -> int:
    config = load_config(args.config) if args.config is not None else None
    prefix = args.prefix or (config.mqtt.prefix if config is not None else "trailcam")
    bridge = args.remote is not None or args.out is not None
    access = args.acl_out is not None or args.passwd_out is not None
    if not bridge and not access:
        return _usage("nothing to write: --remote and --out (the bridge), and/or --acl-out / --passwd-out (access)")
    if access or args.device:
        discovery = args.discovery_prefix or (config.mqtt.discovery_prefix if config is not None else "homeassistant")
        status = _write_access(args, prefix, discovery)
        if status != EXIT_OK or not bridge:
            return status
    if args.remote is None or args.out is None:
        return _usage("--remote and --out: both are needed to write the bridge")
    try:
        host, port = parse_address(args.remote)
    except BridgeError as error:
        return _usage(f"--remote: {error}")
    password = None
    if args.password_file is not None:
        if args.username is None:
            return _usage("--password-file: needs --username")
        try:
            password = read_password_file(args.password_file)
        except BridgeError as error:
            return _usage(f"--password-file: {error}")
    settings = BridgeSettings(
        host=host, port=port, prefix=prefix, name=args.name or "", protocol=args.protocol, tls=args.tls,
        cafile=args.cafile.absolute() if args.cafile else None,
        certfile=args.certfile.absolute() if args.certfile else None,
        keyfile=args.keyfile.absolute() if args.keyfile else None,
        username=args.username, password=password, max_queued_messages=args.max_queued_messages,
        autosave_interval_s=args.autosave_interval,
        persistence_location=args.persistence_location.absolute() if args.persistence_location else None,
        restart_timeout=args.restart_timeout,
    )
    for option, path in (("--cafile", settings.cafile), ("--certfile", settings.certfile),
                         ("--keyfile", settings.keyfile)):
        if path is not None and not path.is_file():
            return _usage(f"{option}: {path} is not a file")
    try:
        text = render_bridge(settings)
    except BridgeError as error:
        return _usage(str(error))
    try:
        write_private(args.out, text)
    except OSError as error:
        return _usage(f"--out: {args.out}: {error.strerror or error}")
    print(f"wrote {args.out} (bridge {settings.connection} → {host}:{port}, topics {prefix}/#); "
          "reload mosquitto to start it")
    return EXIT_OK


def _write_access(args: argparse.Namespace, prefix: str, discovery: str) -> int:
    """The ACL and the password file (with each new user's password beside them)."""
    if args.passwd_out is not None and args.credentials_dir is None:
        return _usage("--passwd-out: needs --credentials-dir (where each new user's password goes)")
    if args.device and args.acl_out is None and args.passwd_out is None:
        return _usage("--device: needs --acl-out and/or --passwd-out")
    access = BrokerAccess(devices=tuple(args.device), prefix=prefix, discovery_prefix=discovery,
                          collector_user=args.collector_user or None, bridge_user=args.username)
    try:
        acl = render_acl(access)
        existing = read_users(args.passwd_out) if args.passwd_out is not None else {}
        passwords = new_passwords(access, existing) if args.passwd_out is not None else {}
        users = render_password_file(access, existing, passwords)
    except AccessError as error:
        return _usage(f"--device: {error}")
    except OSError as error:
        return _usage(f"--passwd-out: {args.passwd_out}: {error.strerror or error}")
    try:
        if args.passwd_out is not None:
            args.credentials_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            for user, password in passwords.items():
                write_private(args.credentials_dir / f"{user}.password", password + "\n")
            write_private(args.passwd_out, users)
        if args.acl_out is not None:
            write_private(args.acl_out, acl)
    except OSError as error:
        return _usage(f"{error.filename}: {error.strerror or error}")
    written = [str(path) for path in (args.acl_out, args.passwd_out) if path is not None]
    print(f"wrote {', '.join(written)} ({len(access.devices)} devices; {len(passwords)} new passwords"
          f"{f' in {args.credentials_dir}' if passwords else ''}); reload mosquitto to apply")
    return EXIT_OK


def _usage(message: str) -> int:
    print(f"edge bridge-config: {message}", file=sys.stderr)
    return EXIT_USAGE
