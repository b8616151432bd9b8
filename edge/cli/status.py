"""`edge status`: the daemon's health as the operator reads it (table or JSON).

The facts come from edge.operate.status_reader (status.json and a read-only look at the
database); this module only parses the flags and prints (the table: edge.cli.tables). Exit 0 when the daemon is running, 1 when it is
not, paused or stalled, so a script or a monitoring check can use it.
"""

from __future__ import annotations

import json
from pathlib import Path

from edge.cli.tables import status_table
from edge.config import load_config
from edge.operate.status_reader import collect_status


def register(subparsers) -> None:
    """Add `edge status` to the `edge` parser."""
    parser = subparsers.add_parser("status", help="health of the daemon: last frame, backlog, rates, errors, "
                                                  "MQTT, outbox, free disk")
    parser.add_argument("--config", type=Path, help="TOML configuration (default /etc/trailcam/edge.toml when it exists)")
    parser.add_argument("--db", type=Path, help="SQLite database (overrides [storage] database)")
    parser.add_argument("--format", choices=["table", "json"], default="table", help="output format")
    parser.set_defaults(func=cmd_status)

def cmd_status(args) -> int:
    """Exit 0 when the daemon is running, 1 when it is not, paused or stalled (scriptable)."""
    overrides = {"storage": {"database": str(args.db)}} if args.db else None
    config = load_config(args.config, overrides=overrides)
    disk_paths = []
    if config.retention.after_processing == "archive" and config.retention.archive_dir is not None:
        disk_paths.append(config.retention.archive_dir)
    status = collect_status(config.storage.database, disk_paths=disk_paths,
                            rate_window_s=config.health.rate_window_s,
                            stale_after_s=max(60.0, 6 * config.health.status_interval_s))
    if args.format == "json":
        print(json.dumps(status, indent=2, sort_keys=True))
    else:
        print(status_table(status))
    return 0 if status["daemon"]["state"] == "running" else 1
