"""`collector devices`: the fleet's devices, with the silent ones flagged.

"Silent" = nothing at all (event, count, status, info) received for longer than the threshold:
a device can be `online` by its retained status and still silent (its link hangs without the
broker noticing yet), or `offline` by its will and recently seen (it just dropped).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

from edge.fleet import db as central
from edge.fleet.schema import create_schema

COLUMNS = ("device", "state", "state_at", "first_seen", "last_seen", "software_version", "model_id",
           "model_version", "detector_id", "timezone", "cameras", "deployments", "info_at")


def _iso(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return value


def _moment(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def list_devices(db: str, *, silent_after: timedelta, now: datetime | None = None) -> list[dict[str, Any]]:
    """Every device, ordered by id, each with `silent` (bool) and `silent_for_s`."""
    now = now or datetime.now(timezone.utc)
    engine = central.engine_of(db)
    conn = central.connect(db)
    try:
        create_schema(conn, engine)
        rows = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM devices ORDER BY device").fetchall()
    finally:
        conn.close()
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


def render_table(devices: list[dict[str, Any]]) -> str:
    header = ("device", "state", "last seen (UTC)", "silent", "software", "model", "timezone", "cameras")
    rows = [
        (d["device"], d["state"], str(d["last_seen"])[:19], "SILENT" if d["silent"] else "",
         d["software_version"] or "-", " ".join(filter(None, (d["model_id"], d["model_version"]))) or "-",
         d["timezone"] or "-", ",".join(d["cameras"] or []) or "-")
        for d in devices
    ]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip() for r in [header, *rows]]
    silent = sum(1 for d in devices if d["silent"])
    lines.append(f"{len(devices)} devices, {silent} silent")
    return "\n".join(lines)
