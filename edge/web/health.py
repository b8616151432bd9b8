"""The Health page's words: `edge status`'s facts (edge.operate.status_reader.collect_status)
turned into what a person reads at a glance.

Why not the raw dict: a table of dotted keys (`daemon.snapshot_age_s 4.1`, `disk[0].free_bytes
12345678901`, UTC stamps) answered "is it working?" worse than `edge status` in a terminal. This
module says it as `edge status` does, and more plainly: one state badge, the problems first (each
a sentence saying what is wrong), then the facts in sections, times in the station's zone with
how long ago, sizes and rates in words. Pure functions over the dict: no I/O, so every sentence
is tested without a daemon.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

from edge.store.times import parse_utc

LOW_DISK_BYTES = 1_000_000_000  # under 1 GB free: said among the problems (the daemon pauses at [retention] min_free_mb)
MQTT_FINE = (None, "", "connected", "disabled", "off", "starting")


@dataclass(frozen=True)
class Fact:
    """One line of a section: what, its words, and a state for the badge ("ok", "warn", "bad" or "")."""

    label: str
    text: str
    state: str = ""


@dataclass
class HealthView:
    """The page: the daemon's state (the badge), the problems (sentences), the sections of facts."""

    state: str
    badge: str  # "ok" | "warn" | "bad"
    problems: list[str] = field(default_factory=list)
    sections: list[tuple[str, list[Fact]]] = field(default_factory=list)


def human_bytes(n: int | None) -> str:
    """Decimal units, as disks are sold and `df -H` prints: 12.3 GB."""
    if n is None or n < 0:
        return "unknown"
    value = float(n)
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} bytes"


def ago(seconds: float | None) -> str:
    """How long ago, in the largest whole unit: "just now", "4 minutes ago", "3 days ago"."""
    if seconds is None:
        return ""
    if seconds < 0:
        return "in the future"
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'' if n == 1 else 's'} ago"
    return "just now"


def when(stamp: str | None, zone: tzinfo, now: datetime) -> str:
    """A stored UTC time as the station's local time and how long ago ("2026-05-12 07:03 (4 minutes ago)")."""
    if not stamp:
        return "never"
    try:
        moment = parse_utc(stamp)
    except ValueError:
        return stamp
    local = moment.astimezone(zone)
    day = "today" if local.date() == now.astimezone(zone).date() else local.strftime("%Y-%m-%d")
    return f"{day} {local.strftime('%H:%M')} ({ago((now - moment).total_seconds())})"


def per_minute(rate: float | None, noun: str) -> str:
    """A rate in words: "12 frames a minute", "about one frame every 5 minutes", "none"."""
    if rate is None:
        return "unknown"
    if rate <= 0:
        return f"no {noun}s"
    if rate >= 1:
        shown = f"{rate:.0f}" if rate >= 10 else f"{rate:.1f}".rstrip("0").rstrip(".")
        return f"{shown} {noun}{'' if shown == '1' else 's'} a minute"
    return f"about one {noun} every {max(1, round(1 / rate))} minutes"


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def health_view(status: dict[str, Any], zone: tzinfo, now: datetime | None = None) -> HealthView:
    """The page for `status` (collect_status's dict), times in `zone`: the problems first (any
    turns a running daemon's badge to warn), then the facts."""
    now = now or datetime.now(UTC)
    daemon = status.get("daemon") or {}
    state = str(daemon.get("state") or "unknown")
    badge = {"running": "ok", "paused": "warn", "stalled": "bad"}.get(state, "bad")
    problems = _problems(status, state, zone, now)
    if problems and badge == "ok":
        badge = "warn"
    return HealthView(state, badge, problems, _sections(status, state, badge, zone, now))


def _problems(status: dict[str, Any], state: str, zone: tzinfo, now: datetime) -> list[str]:
    """What is wrong, each a sentence saying so and what to do."""
    daemon = status.get("daemon") or {}
    problems: list[str] = []
    if state == "not running":
        problems.append("The daemon is not running: no new pictures are counted (systemctl status trailcam-edge).")
    elif state == "stalled":
        problems.append(f"The daemon has not reported for {ago(daemon.get('snapshot_age_s')).removesuffix(' ago')}: "
                        "its loop may be stuck (journalctl -u trailcam-edge).")
    elif state == "paused":
        problems.append(f"Processing is paused: {daemon.get('pause_reason') or 'no reason given'}.")
    if status.get("database_error"):
        problems.append(f"The database cannot be read: {status['database_error']}.")
    errors, retrying = int(status.get("frames_error") or 0), int(status.get("frames_retrying") or 0)
    last_error = status.get("last_error") or {}
    if errors:
        text = f"{_plural(errors, 'picture')} could not be read"
        if last_error:
            text += (f"; the latest {when(last_error.get('processed_at'), zone, now)}: "
                     f"{last_error.get('path')}: {last_error.get('error')}")
        problems.append(text + (f" ({retrying} will be tried again)." if retrying else "."))
    mqtt = daemon.get("mqtt_state")
    if mqtt not in MQTT_FINE:
        problems.append(f"MQTT is {mqtt}: counts wait in the outbox ({status.get('outbox_depth', '?')} messages).")
    if status.get("outbox_dropped_events"):
        problems.append(f"{_plural(int(status['outbox_dropped_events']), 'event message')} were dropped when the "
                        "MQTT outbox was full.")
    for disk in status.get("disk", []):
        if disk.get("error"):
            problems.append(f"Free space on {disk['path']} cannot be read: {disk['error']}.")
        elif disk.get("free_bytes") is not None and 0 <= disk["free_bytes"] < LOW_DISK_BYTES:
            problems.append(f"Only {human_bytes(disk['free_bytes'])} free on {disk['path']}.")
    if status.get("frames_time_doubtful"):
        problems.append(f"{_plural(int(status['frames_time_doubtful']), 'picture')} have a doubtful camera clock: "
                        "they are counted but left out of effort (edge clock correct).")
    notify = status.get("notifications") or {}
    dropped = sum(v for k, v in notify.items() if k.startswith("dropped_") and v)
    if dropped or notify.get("expired"):
        problems.append(f"Notifications: {dropped} dropped, {notify.get('expired') or 0} expired before delivery.")
    return problems


def _sections(status: dict[str, Any], state: str, badge: str, zone: tzinfo,
              now: datetime) -> list[tuple[str, list[Fact]]]:
    """The facts, in sections: the daemon, the pictures, the storage, the sending."""
    daemon = status.get("daemon") or {}
    errors = int(status.get("frames_error") or 0)
    mqtt = daemon.get("mqtt_state")
    notify = status.get("notifications") or {}
    last = status.get("last_frame") or {}
    window_min = int((status.get("rate_window_s") or 300) // 60)
    skipped = daemon.get("frames_skipped") or {}
    return [
        ("Daemon", [
            Fact("state", state, badge if state != "running" else "ok"),
            Fact("started", when(daemon.get("started_at"), zone, now) if daemon.get("started_at") else "—"),
            Fact("model", str(daemon.get("model_id") or "—")),
            Fact("waiting to be processed", "—" if daemon.get("backlog") is None
                 else "nothing" if not daemon["backlog"] else _plural(int(daemon["backlog"]), "picture"),
                 "warn" if daemon.get("backlog") else ""),
            Fact("camera folders", f"{_plural(sum(skipped.values()), 'file')} skipped, "
                 f"{daemon.get('rescan_found') or 0} found by a rescan"
                 + (f" (last rescan {when(daemon['last_rescan_at'], zone, now)})" if daemon.get("last_rescan_at") else "")),
        ]),
        ("Pictures", [
            Fact("last picture", when(last.get("processed_at"), zone, now)
                 + (f": {last['species']}" if last.get("species") else "") if last else "none yet"),
            Fact("processed", f"{status.get('frames_total', '—')} in all, {errors} could not be read",
                 "bad" if errors else "ok"),
            Fact(f"rate (last {window_min} minutes)",
                 f"{per_minute(status.get('rate_frames_per_min'), 'picture')}; "
                 f"{per_minute(status.get('rate_errors_per_min'), 'error')}",
                 "bad" if status.get("rate_errors_per_min") else ""),
            Fact("capture times", "none doubtful" if not status.get("frames_time_flagged") else
                 f"{status.get('frames_time_doubtful', 0)} doubtful; flagged: "
                 + ", ".join(f"{flag} {n}" for flag, n in status["frames_time_flagged"].items()),
                 "warn" if status.get("frames_time_doubtful") else ""),
        ]),
        ("Storage", [
            Fact("database", str(status.get("database", "—")), "bad" if status.get("database_error") else ""),
            *(Fact(f"free on {disk['path']}", disk.get("error") or human_bytes(disk.get("free_bytes")),
                   "bad" if disk.get("error") or (disk.get("free_bytes") or 0) < LOW_DISK_BYTES else "ok")
              for disk in status.get("disk", [])),
        ]),
        ("Sending", [
            Fact("MQTT", str(mqtt or "not configured"), "" if mqtt in (None, "") else "ok" if mqtt in MQTT_FINE else "bad"),
            Fact("outbox", "empty" if not status.get("outbox_depth") else f"{status['outbox_depth']} messages waiting"),
            Fact("notifications", "none" if not any(notify.values()) else
                 f"{notify.get('queued', 0)} waiting, {notify.get('sent', 0)} sent"
                 + (f", {notify['failed_attempts']} failed tries" if notify.get("failed_attempts") else "")),
        ]),
    ]
