"""`collector devices`: the fleet's devices, with the silent ones flagged (edge/fleet/devices.py).

"Silent" = nothing at all (event, count, status, info) received for longer than the threshold:
a device can be `online` by its retained status and still silent (its link hangs without the
broker noticing yet), or `offline` by its will and recently seen (it just dropped).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fleet import db as central
from fleet.devices import COLUMNS, parse_duration, read_devices
from fleet.schema import create_schema

__all__ = ["COLUMNS", "list_devices", "parse_duration", "render_table"]


def list_devices(db: str, *, silent_after: timedelta, now: datetime | None = None) -> list[dict[str, Any]]:
    """Every device, ordered by id, each with `silent` (bool) and `silent_for_s` (the rule is
    fleet.devices', shared with the web app's fleet view)."""
    engine = central.engine_of(db)
    conn = central.connect(db)
    try:
        create_schema(conn, engine)
        return read_devices(conn, silent_after=silent_after, now=now)
    finally:
        conn.close()


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
