"""Every table the `edge` command prints, in one place: the reports (`edge counts | events |
frames`, as a table, CSV or JSON) and `edge status`. The store and the status reader return
rows and dicts; only the CLI renders them, all through `aligned`.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any, Literal


def left_out_note(rows, noun: str) -> str | None:
    """The line that says a limit hid rows ("… 120 more events not shown (use --limit 0 for all)"),
    or None when every matching row is shown. `noun` is singular ("event", "failed frame")."""
    if not rows.left_out:
        return None
    return f"… {rows.left_out} more {noun}{'' if rows.left_out == 1 else 's'} not shown (use --limit 0 for all)"


def render(rows: list[dict[str, Any]], columns: Sequence[str], fmt: Literal["table", "csv", "json"]) -> str:
    """Rows as an aligned table, CSV (header + rows) or a JSON array."""
    if fmt == "json":
        return json.dumps([{c: row.get(c) for c in columns} for row in rows], indent=2, ensure_ascii=False)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if row.get(c) is None else row.get(c) for c in columns])
        return buffer.getvalue().rstrip("\n")
    cells = [[("" if row.get(c) is None else str(row.get(c))) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    numeric = [all(_is_number(r[i]) for r in cells if r[i]) and bool(cells) for i in range(len(columns))]
    out = aligned([list(columns), ["-" * w for w in widths], *cells], numeric)
    if not rows:
        out.append("(no rows)")
    return "\n".join(out)


def aligned(cells: list[list[str]], numeric: Sequence[bool] = ()) -> list[str]:
    """The one table layout: each column padded to its widest cell, two spaces apart, numeric
    columns right-aligned, no trailing spaces (greppable, readable over SSH)."""
    if not cells:
        return []
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    numeric = list(numeric) or [False] * len(widths)
    return ["  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(row, widths, numeric)).rstrip()
            for row in cells]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _human_bytes(n: int | None) -> str:
    if n is None or n < 0:
        return "-"
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"


def stream_text(stream: dict[str, Any]) -> str:
    """One live camera (status.json `streams`, URL already redacted): its state, then figures."""
    state = str(stream.get("state") or "?")
    if state == "reconnecting" and stream.get("next_try_in_s") is not None:
        state += f" (next try in {stream['next_try_in_s']:.0f} s)"
    if stream.get("last_error") and stream.get("state") != "connected":
        state += f": {stream['last_error']}"
    dropped = sum((stream.get("frames_dropped") or {}).values())
    return (f"{state}; {stream.get('source')}; {stream.get('frames_read', 0)} frames read, "
            f"{stream.get('episodes', 0)} motion episodes, {stream.get('frames_written', 0)} written, "
            f"{dropped} dropped; last frame {stream.get('last_frame_at') or '-'}")


def _watching_text(daemon: dict[str, Any]) -> str:
    """e.g. "2 skipped (symlink 1, not_regular 1), 3 found by rescan (last 2026-12-01T20:00:00Z)"."""
    skipped = daemon.get("frames_skipped") or {}
    text = f"{sum(skipped.values())} skipped" + (
        " (" + ", ".join(f"{k} {v}" for k, v in sorted(skipped.items())) + ")" if skipped else "")
    text += f", {daemon.get('rescan_found') or 0} found by rescan"
    if daemon.get("last_rescan_at"):
        text += f" (last {daemon['last_rescan_at']})"
    return text


def _time_flags_text(status: dict[str, Any]) -> str:
    """Frames whose capture time was flagged (edge/store/clock_checks.py), by flag."""
    flagged = status.get("frames_time_flagged")
    if flagged is None:
        return "-"
    if not flagged:
        return "none flagged"
    return (f"{status.get('frames_time_doubtful', 0)} doubtful (kept out of effort), by flag: "
            + ", ".join(f"{flag} {n}" for flag, n in flagged.items()))


def status_table(status: dict[str, Any]) -> str:
    """Two aligned columns, one fact per line: easy to read over SSH and to grep."""
    daemon = status.get("daemon", {})
    last = status.get("last_frame") or {}
    last_err = status.get("last_error") or {}
    rows: list[tuple[str, str]] = [
        ("daemon", daemon.get("state", "?") + (f" (pid {daemon['pid']})" if daemon.get("pid")
                                                and daemon.get("state") != "not running" else "")),
    ]
    if daemon.get("pause_reason"):
        rows.append(("paused because", daemon["pause_reason"]))
    rows += [
        ("model", str(daemon.get("model_id") or "-")),
        ("database", status.get("database", "-")),
    ]
    if "database_error" in status:
        rows.append(("database error", status["database_error"]))
    rows += [
        ("last frame", f"{last.get('processed_at') or '-'}  {last.get('species') or ''}".rstrip()),
        ("backlog", str(daemon.get("backlog", "-") if daemon.get("backlog") is not None else "-")),
        ("frames", f"{status.get('frames_total', '-')} total, {status.get('frames_error', '-')} errors"
                   + (f" ({status['frames_retrying']} to be retried)" if status.get("frames_retrying") else "")),
        ("rate", f"{status.get('rate_frames_per_min', '-')} frames/min, "
                 f"{status.get('rate_errors_per_min', '-')} errors/min "
                 f"(last {int(status.get('rate_window_s', 0) // 60)} min)"),
        ("last error", f"{last_err.get('processed_at')} {last_err.get('path')}: {last_err.get('error')}"
         if last_err else "-"),
        ("watching", _watching_text(daemon)),
        *((f"stream {stream.get('camera')}", stream_text(stream)) for stream in daemon.get("streams") or ()),
        ("mqtt", str(daemon.get("mqtt_state") or "-")),
        ("capture times", _time_flags_text(status)),
        ("outbox", f"{status.get('outbox_depth', '-')} waiting"
         + (f", {status['outbox_dropped_events']} events dropped when full"
            if status.get("outbox_dropped_events") else "")),
        ("notifications", _notifications_text(status.get("notifications"))),
    ]
    for disk in status.get("disk", []):
        rows.append((f"free disk {disk['path']}", disk.get("error") or _human_bytes(disk.get("free_bytes"))))
    return "\n".join(aligned([list(row) for row in rows]))


def _notifications_text(figures: dict | None) -> str:
    """[notify]'s queue: waiting, sent, failed tries, expired and dropped (edge/store/notifications.py)."""
    if not figures or not any(figures.values()):
        return "-"
    dropped = {key.removeprefix("dropped_").replace("_", " "): value for key, value in figures.items()
               if key.startswith("dropped_") and value}
    text = f"{figures.get('queued', 0)} waiting, {figures.get('sent', 0)} sent"
    if figures.get("failed_attempts"):
        text += f", {figures['failed_attempts']} failed tries"
    if figures.get("expired"):
        text += f", {figures['expired']} expired"
    if dropped:
        text += ", dropped: " + ", ".join(f"{value} {key}" for key, value in dropped.items())
    return text
