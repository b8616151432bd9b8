"""The `edge` command's front door: the parser, `edge run`, `edge check`, and how errors exit.

Exit codes: 0 success, 1 runtime failure, 2 bad configuration or arguments (the message names
the key or argument and the problem), 141 when the reader of stdout went away (`edge frames | head`:
no traceback). Commands that need no database or config (classify)
never read /etc/trailcam/edge.toml unless asked to.

Every other command lives in its own module and adds itself with `register(subparsers)`:
`edge classify` in edge/cli/classify.py; `edge counts`, `edge events` and `edge frames` (the
station's records) in edge/cli/records.py; `edge status`, `edge install-service`, `edge models`,
`edge export`, `edge report`, `edge clock`, `edge repeats`, `edge web` and the bridge in theirs.
Every table is rendered by edge/cli/tables.py.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge import __version__
from edge.cli import bridge, classify, clock, export, install_service, models, records, repeats, report, status, web
from edge.cli.common import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError, keep_daemon_light, setup_logging
from edge.config import ConfigError, EdgeConfig, load_config

if TYPE_CHECKING:
    from edge.daemon.preflight import Finding

log = logging.getLogger("edge")


# -- configuration from file + flags -----------------------------------------------------------


def _add_config_flags(parser: argparse.ArgumentParser, *, daemon: bool) -> None:
    parser.add_argument("--config", type=Path, help="TOML configuration (default /etc/trailcam/edge.toml when it exists)")
    parser.add_argument("--db", type=Path, help="SQLite database (overrides [storage] database)")
    if daemon:
        parser.add_argument("--model", type=Path, help="bundle folder or .tflite (overrides [model] path)")
        parser.add_argument("--labels", type=Path, help="labels .txt or .csv (overrides [model] labels)")
        parser.add_argument("--detector", type=Path, metavar="PATH",
                            help="bird detector .tflite or .onnx: detect, then classify each bird (overrides [detector] path)")
        parser.add_argument("--watch", type=Path, action="append", metavar="DIR",
                            help="camera folder (repeatable; replaces [[cameras]]; camera name = folder name)")
        parser.add_argument("--poll", action="store_true", help="with --watch: poll instead of inotify (network mounts)")
        parser.add_argument("--recursive", action="store_true", help="with --watch: include sub-folders")
        parser.add_argument("--timezone", help="station time zone (overrides [station] timezone)")
        parser.add_argument("--force-timezone", action="store_true",
                            help="start although the database was written in another station zone: record the new "
                                 "one (logged; without it such a start is refused)")
        parser.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                            help="log level (overrides [logging] level)")


def config_from_args(args: argparse.Namespace) -> EdgeConfig:
    overrides: dict[str, Any] = {}
    if getattr(args, "db", None):
        overrides.setdefault("storage", {})["database"] = str(args.db)
    if getattr(args, "model", None):
        overrides.setdefault("model", {})["path"] = str(args.model)
    if getattr(args, "labels", None):
        overrides.setdefault("model", {})["labels"] = str(args.labels)
    if getattr(args, "detector", None):
        overrides.setdefault("detector", {})["path"] = str(args.detector)
    if getattr(args, "timezone", None):
        overrides.setdefault("station", {})["timezone"] = args.timezone
    if getattr(args, "log_level", None):
        overrides.setdefault("logging", {})["level"] = args.log_level
    if getattr(args, "watch", None):
        names: list[str] = []
        cameras = []
        for folder in args.watch:
            name = folder.resolve().name or "camera"
            while name in names:
                name += "_"
            names.append(name)
            cameras.append({"name": name, "path": str(folder), "recursive": bool(args.recursive),
                            "mode": "poll" if args.poll else "inotify"})
        overrides["cameras"] = cameras
    return load_config(args.config, overrides=overrides)


# -- commands --------------------------------------------------------------------------------


def _refuse(findings: list[Finding]) -> int:
    """Print a refused start's configuration problems (one line each, naming the key); exit 2."""
    for finding in findings:
        print(f"edge: {finding.line()}", file=sys.stderr)
    return EXIT_USAGE


def cmd_run(args: argparse.Namespace) -> int:
    """Check everything `edge check` checks, and only then create anything.

    The preflight runs before the daemon, its field operation or the store touch the disk, so
    a refused start (exit 2, each problem naming its key) leaves no database, no state folder
    and no status.json behind.
    """
    keep_daemon_light()
    from edge.classify.model import ModelError
    from edge.daemon.lifecycle import DaemonError
    from edge.daemon.preflight import StateDirError, preflight
    from edge.daemon.wiring import build
    from edge.store.db import StoreError

    config = config_from_args(args)
    setup_logging(config.logging.level)
    checked = preflight(config, once=args.once, force_timezone=args.force_timezone)
    if checked.errors:
        return _refuse(checked.errors)
    # The daemon with its field operation (systemd notify/watchdog, status.json, metrics,
    # retention, disk pause) and MQTT when enabled; the state folder is made in its before_open
    # hook, after every check.
    daemon = build(config, once=args.once, force_timezone=args.force_timezone)
    try:
        code = daemon.run(handle_signals=True, classifier=checked.classifier, finder=checked.finder)
        if daemon.summary is not None:  # --once: what the run did, on stdout (the log is stderr)
            print(daemon.summary)
        return code
    except (DaemonError, ModelError) as error:
        raise UsageError(str(error)) from None
    except (StateDirError, StoreError) as error:  # the disk changed since the preflight probed it
        log.error("%s", error)
        return EXIT_FAILURE


def cmd_check(args: argparse.Namespace) -> int:
    """Run the preflight `edge run` runs, without running; one line per check.

    Exit 0 when `edge run` would start, 2 when it would refuse (warnings do not count).
    """
    from edge.config import DEFAULT_CONFIG_PATH
    from edge.daemon.preflight import preflight

    config = config_from_args(args)
    source = args.config or (DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.exists() else "defaults and flags")
    print(f"config: ok ({source})")
    checked = preflight(config, force_timezone=args.force_timezone)
    for finding in checked.findings:
        print(finding.line())
    for line in _export_lacks(config):
        print(line)
    problems = len(checked.errors)
    print("check: " + ("all ok" if not problems else f"{problems} problem(s)"))
    return EXIT_OK if not problems else EXIT_USAGE


def _export_lacks(config: EdgeConfig) -> list[str]:
    """Warnings: what a Camtrap DP export would lack (deployments, project metadata, scientific
    names). Counting works without any of it, so none of them refuses a start."""
    from edge.classify.model import ModelError, resolve_model
    from edge.ecology.deployments import labels_without_scientific_name, lacks

    lines = [f"export: warning: {problem}" for problem in lacks(config)]
    if config.model.path is not None:
        try:
            spec = resolve_model(config.model.path, config.model.labels, config.model.no_bird_label)
        except ModelError:
            return lines  # preflight has said what is wrong with the model
        missing = labels_without_scientific_name(spec.labels, spec.no_bird_label)
        if missing:
            shown = ", ".join(repr(name) for name in missing[:5]) + (", ..." if len(missing) > 5 else "")
            lines.append(f"export: warning: model: {len(missing)} of {len(spec.labels)} labels have no scientific name "
                         f"({shown}): give [model] labels a CSV with scientific_name, or train with "
                         "`trainer train --taxonomy FILE`")
    if not lines:
        lines.append("export: ok (deployments, project metadata and scientific names for Camtrap DP)")
    return lines


# -- parser ----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge", description="trailcam field daemon: camera frames → species counts")
    parser.add_argument("--version", action="version", version=f"trailcam edge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = sub.add_parser("run", help="run the daemon (watch → classify → store)")
    _add_config_flags(run, daemon=True)
    run.add_argument("--once", action="store_true", help="process the frames already there, then exit")
    run.set_defaults(func=cmd_run)

    check = sub.add_parser("check", help="validate config, model and database without running")
    _add_config_flags(check, daemon=True)
    check.set_defaults(func=cmd_check)

    classify.register(sub)
    records.register(sub)


    status.register(sub)
    models.register(sub)
    install_service.register(sub)
    bridge.register(sub)
    export.register(sub)
    report.register(sub)
    clock.register(sub)
    repeats.register(sub)
    web.register(sub)
    return parser


# A command whose reader went away (`edge frames | head`), the status of a writer SIGPIPE ends.
EXIT_BROKEN_PIPE = 141


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
        sys.stdout.flush()  # inside the try: a closed pipe shows here for output still buffered
        return code
    except BrokenPipeError:
        # The reader closed the pipe (`edge counts | head`): end quietly. stdout goes to
        # /dev/null so that the interpreter's flush at exit fails no more (the Python docs'
        # pattern, "Note on SIGPIPE").
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except ConfigError as error:
        for problem in error.problems:
            print(f"edge: {error.source}: {problem}", file=sys.stderr)
        return EXIT_USAGE
    except UsageError as error:
        for line in str(error).splitlines() or [""]:  # several problems: each line says "edge:"
            print(f"edge: {line}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
