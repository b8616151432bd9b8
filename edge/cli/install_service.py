"""`edge install-service`: the flags and the command; the files themselves come from
edge.operate.service (user, commented configuration skeleton, credential, unit, drop-in)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path, PurePosixPath

from edge.operate.service import DEFAULT_CONFIG, DEFAULT_USER, Installer, default_exec_path, writable_paths_from_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", type=Path, default=None,
                        help="install under this directory instead of / (no useradd, no systemctl)")
    parser.add_argument("--exec", dest="exec_path", default=None,
                        help="command for ExecStart (default: the edge script of this Python)")
    parser.add_argument("--user", default=DEFAULT_USER, help="system user the service runs as")
    parser.add_argument("--service-config", dest="service_config", default=DEFAULT_CONFIG,
                        help="config path written into the unit's ExecStart")
    parser.add_argument("--no-enable", dest="enable", action="store_false", help="install without enabling")
    parser.add_argument("--web", action="store_true",
                        help="also install (and enable) trailcam-web.service, `edge web`, with its credential "
                             "file web_password_hash")

def run_install_service(args: argparse.Namespace) -> int:
    if args.root is None and os.geteuid() != 0:
        print("edge install-service: must run as root (or pass --root DIR to stage the files)", file=sys.stderr)
        return 2
    root = args.root.absolute() if args.root is not None else None
    config_file = (root / args.service_config.lstrip("/")) if root else Path(args.service_config)
    installer = Installer(root, args.exec_path or default_exec_path(), args.service_config, args.user,
                          args.enable, writable_paths_from_config(config_file), web=args.web)
    executable = installer.exec_path.split()[0]
    if any(PurePosixPath(executable).is_relative_to(h) for h in ("/home", "/root", "/run/user")):
        print(f"warning: ExecStart {executable} is under a home directory, which ProtectHome=yes hides "
              f"from the service: install into /opt/trailcam/venv (see the README) or pass --exec", file=sys.stderr)
    changed = installer.install()
    print(f"{len(changed)} change(s)" if changed else "nothing to change")
    return 0

def register(subparsers) -> None:
    """Add `edge install-service` to the `edge` parser."""
    parser = subparsers.add_parser("install-service", help="create the system user, a commented config, "
                                                           "the credential file and the systemd unit; enable it")
    add_arguments(parser)
    parser.set_defaults(func=run_install_service)
