"""What `edge status` reads: the daemon's status.json and a read-only look at the database.

A separate, read-only process: it combines the daemon's snapshot (backlog, MQTT state, pause
reason: things only the daemon knows; written by edge/operate/health.py) with what the
database says (last frame, errors, rates, outbox depth) and live free-disk figures. It therefore
works when the daemon is down, too, and says so. It returns one JSON-ready dict; the CLI
(edge/cli/status.py, edge/cli/tables.py) prints it.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edge.operate.health import read_snapshot, status_file_for
from edge.store import clock_checks, notifications
from edge.store.db import StoreError, connect, standing_error_sql
from edge.store.disk import free_bytes
from edge.store.times import format_utc, parse_utc


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by the service user
        return True
    return True


def _age_seconds(iso: str | None) -> float | None:
    if not iso:
        return None
    try:
        moment = parse_utc(iso)
    except ValueError:
        return None
    return (datetime.now(UTC) - moment).total_seconds()


def _db_facts(db_path: Path, rate_window_s: float) -> dict[str, Any]:
    """Read-only queries over the one connection helper (query_only: never takes a write lock)."""
    conn = connect(db_path, busy_timeout_s=5.0, readonly=True)
    try:
        q = lambda sql, *args: conn.execute(sql, args).fetchone()  # noqa: E731
        # Errors that a later row at their path replaced (superseded) are not errors any more.
        error, retrying = standing_error_sql(conn)
        # Only error rows can be standing errors or retries: read them by the status index; the
        # number of rows comes from the trigger-kept counter, so nothing reads every row.
        try:  # schema 4: kept by triggers (edge/store/schema.py); older: counted
            total = q("SELECT count FROM row_counts WHERE name = 'frames'")[0]
        except (sqlite3.OperationalError, TypeError):
            total = q("SELECT COUNT(*) FROM frames")[0]
        # INDEXED BY: with ANALYZE statistics from a database of nearly only `ok` rows the planner
        # would otherwise scan the table to find the few errors (measured: 150 ms at 10^6 frames).
        errors, retries = q(f"SELECT COALESCE(SUM({error}), 0), COALESCE(SUM({retrying}), 0) FROM frames "
                            "INDEXED BY frames_status WHERE status = 'error'")
        last = q("SELECT processed_at, captured_at, path, species FROM frames ORDER BY id DESC LIMIT 1")
        last_err = q(f"SELECT processed_at, path, error FROM frames WHERE {error} "
                     "ORDER BY processed_at DESC, id DESC LIMIT 1")  # a retried row's processed_at moves on
        since = format_utc(datetime.fromtimestamp(time.time() - rate_window_s, UTC))
        recent, recent_err = q(f"SELECT COUNT(*), COALESCE(SUM({error}), 0) FROM frames "
                               "WHERE processed_at >= ?", since)
        try:
            outbox = q("SELECT COUNT(*) FROM outbox")[0]
        except sqlite3.OperationalError:
            outbox = None
        try:  # cumulative coalesced/dropped counters kept by edge.store.outbox
            outbox_stats = dict(conn.execute("SELECT key, value FROM outbox_stats").fetchall())
        except sqlite3.OperationalError:
            outbox_stats = {}
        notify = notifications.figures(conn)
        tallies = q("SELECT COUNT(*) FROM daily_tallies")[0]
        time_flagged, time_doubtful = _time_flags(conn)
    finally:
        conn.close()
    minutes = rate_window_s / 60.0
    return {
        "frames_total": total,
        "frames_error": errors,
        "frames_retrying": retries,
        "last_frame": ({"processed_at": last[0], "captured_at": last[1], "path": last[2], "species": last[3]}
                       if last else None),
        "last_error": ({"processed_at": last_err[0], "path": last_err[1], "error": last_err[2]}
                       if last_err else None),
        "rate_frames_per_min": round(recent / minutes, 2),
        "rate_errors_per_min": round(recent_err / minutes, 2),
        "rate_window_s": rate_window_s,
        "outbox_depth": outbox,
        "outbox_dropped_events": outbox_stats.get("dropped_events", 0),
        "outbox_coalesced_counts": outbox_stats.get("coalesced_counts", 0),
        "tally_rows": tallies,
        "notifications": notify,
        "frames_time_flagged": time_flagged,
        "frames_time_doubtful": time_doubtful,
    }


def _time_flags(conn) -> tuple[dict[str, int], int]:
    """(frames by capture-time flag, frames with a doubtful time: kept out of effort and
    deployment spans), read through the partial index of the few flagged rows
    (edge/store/clock_checks.py); a database older than schema 6 has none."""
    try:
        rows = conn.execute("SELECT time_flags, COUNT(*) FROM frames WHERE time_flags IS NOT NULL "
                            "GROUP BY time_flags").fetchall()
    except sqlite3.OperationalError:
        return {}, 0
    by_flag: dict[str, int] = {}
    doubtful_frames = 0
    for text, count in rows:
        flags = clock_checks.parse(text)
        for flag in flags:
            by_flag[flag] = by_flag.get(flag, 0) + int(count)
        if clock_checks.doubtful(flags):
            doubtful_frames += int(count)
    return dict(sorted(by_flag.items())), doubtful_frames


def collect_status(db_path: Path | str, status_path: Path | str | None = None,
                   disk_paths: Iterable[Path | str] = (), rate_window_s: float = 300.0,
                   stale_after_s: float = 60.0) -> dict[str, Any]:
    """Everything `edge status` shows, as one JSON-ready dict."""
    db_path = Path(db_path)
    status_path = Path(status_path) if status_path else status_file_for(db_path)
    result: dict[str, Any] = {"database": str(db_path)}
    if db_path.exists():
        try:
            result.update(_db_facts(db_path, rate_window_s))
        except (sqlite3.Error, StoreError) as exc:
            result["database_error"] = str(exc)
    else:
        result["database_error"] = "database file does not exist (the daemon has not run yet?)"
    snap = read_snapshot(status_path)
    if snap is None:
        result["daemon"] = {"state": "not running", "detail": f"no snapshot at {status_path}"}
    else:
        age = _age_seconds(snap.get("updated_at"))
        alive = _pid_alive(snap.get("pid"))
        if alive and age is not None and age <= stale_after_s:
            state = "paused" if snap.get("paused") else "running"
        elif alive:
            state = "stalled"  # process there but no snapshot for a while: stuck loop?
        else:
            state = "not running"
        result["daemon"] = {"state": state, "snapshot_age_s": None if age is None else round(age, 1),
                            **{k: snap.get(k) for k in ("pid", "started_at", "model_id", "backlog", "paused",
                                                       "pause_reason", "mqtt_state",
                                                       "last_species", "rate_per_minute",
                                                       "frames_skipped", "rescan_found", "last_rescan_at",
                                                       "time_flagged", "streams")}}
    disks = []
    for path in dict.fromkeys([str(db_path.parent), *map(str, disk_paths)]):
        try:
            disks.append({"path": path, "free_bytes": free_bytes(path)})
        except OSError as exc:
            disks.append({"path": path, "error": str(exc)})
    result["disk"] = disks
    return result
