"""The fleet's devices as rows, with the silent ones flagged: one rule for `collector devices`
and the web app's fleet view (`edge web --db <central>`).

"Silent" = nothing at all (event, count, status, info) received for longer than the threshold:
a device can be `online` by its retained status and still silent (its link hangs without the
broker noticing yet), or `offline` by its will and recently seen (it just dropped).

Pure reading: it never creates or alters the schema, so the read-only web view can use it (the
collector creates the schema itself before listing). It lives in fleet, not in the
`collector` package, because the edge must not import the collector.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

COLUMNS = ("device", "state", "state_at", "first_seen", "last_seen", "software_version", "model_id",
           "model_version", "detector_id", "timezone", "cameras", "deployments", "info_at")
DEFAULT_SILENT_AFTER = "2h"


def _iso(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return value


def _moment(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def read_devices(conn: Any, *, silent_after: timedelta, now: datetime | None = None) -> list[dict[str, Any]]:
    """Every device of the central database on `conn` (either engine), ordered by id, each with
    `silent` (bool) and `silent_for_s`; times as ISO 8601 UTC text."""
    now = now or datetime.now(UTC)
    rows = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM devices ORDER BY device").fetchall()
    out = []
    for row in rows:
        item = {name: _iso(value) for name, value in zip(COLUMNS, row)}
        for name in ("cameras", "deployments"):
            if isinstance(item[name], str):
                item[name] = json.loads(item[name])
        quiet = (now - _moment(row[COLUMNS.index("last_seen")])).total_seconds()
        item["silent_for_s"] = round(quiet, 1)
        item["silent"] = quiet > silent_after.total_seconds()
        out.append(item)
    return out


def parse_duration(text: str) -> timedelta:
    """`90s`, `15m`, `2h`, `3d` (or plain seconds) → a timedelta; ValueError otherwise."""
    text = text.strip().lower()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = (text[:-1], text[-1]) if text and text[-1] in units else (text, "s")
    value = float(number)
    if value <= 0:
        raise ValueError("must be positive")
    return timedelta(seconds=value * units[unit])


def format_silence(seconds: float) -> str:
    """A silence for people: `45 s`, `12 min`, `3.5 h`, `2.0 d`."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"
