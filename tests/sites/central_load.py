"""Load a device's messages into the central schema with plain SQL, per docs/fleet.md "Schema".

A stand-in for the collector's message handler (collector/, another branch) until it lands:
the same upsert rules (events: newest order_key wins; day_counts: newest updated_at wins;
devices: from info), so that the fleet readers can be tested against a real PostgreSQL and a
real central SQLite file. When collector/ is merged, tests/sites/test_fleet_reports.py should
feed the lines through its handler instead.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from edge.fleet.db import connect, engine_of
from edge.fleet.schema import create_schema, event_order_key
from edge.store.times import format_utc, parse_utc


def _time(engine: str, text: str) -> Any:
    return parse_utc(text) if engine == "postgresql" else format_utc(parse_utc(text))


def load(db: str, lines: list[dict[str, Any]]) -> None:
    """Apply every {"topic", "payload"} line (edge export events' format) in one transaction."""
    engine = engine_of(db)
    conn = connect(db)
    try:
        create_schema(conn, engine)
        mark = "%s" if engine == "postgresql" else "?"
        now = _time(engine, format_utc(datetime.now(timezone.utc)))
        if engine == "sqlite":
            conn.execute("BEGIN IMMEDIATE")

        def run(sql: str, params: tuple) -> None:
            conn.execute(sql.replace("?", mark), params)

        for line in lines:
            topic, p = line["topic"], line["payload"]
            device = topic.split("/")[-2] if "/counts/" not in topic else topic.split("/")[-3]
            kind = topic.split("/")[-1] if "/counts/" not in topic else "counts/"
            if kind == "info":
                run("""INSERT INTO devices (device, first_seen, last_seen, software_version, model_id, model_version,
                       detector_id, timezone, cameras, deployments, info_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)
                       ON CONFLICT (device) DO UPDATE SET timezone = excluded.timezone, last_seen = excluded.last_seen""",
                    (device, now, now, p["software_version"], p["model_id"], p["model_version"], p["detector_id"],
                     p["timezone"], json.dumps(p["cameras"]), json.dumps(p["deployments"]),
                     _time(engine, p["published_at"])))
            elif kind == "events":
                reviewed = p["id"].split(":reviewed:")[1] if ":reviewed:" in p["id"] else None
                key = event_order_key(p["change"], p["frame_count"], reviewed)
                run("""INSERT INTO events (device, uid, camera, species, scientific_name, confidence, started_at,
                       ended_at, frame_count, individuals, review, model_species, model_id, model_version, timezone,
                       change, message_id, order_key, received_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
                       ON CONFLICT (device, uid) DO UPDATE SET species = excluded.species,
                       ended_at = excluded.ended_at, frame_count = excluded.frame_count,
                       individuals = excluded.individuals, review = excluded.review, change = excluded.change,
                       message_id = excluded.message_id, order_key = excluded.order_key
                       WHERE excluded.order_key > events.order_key""",
                    (device, p["event_id"], p["camera"], p["species"], p["scientific_name"], p["confidence"],
                     _time(engine, p["start"]), _time(engine, p["end"]), p["frame_count"], p["individuals"],
                     p["review"], p["model_species"], p["model_id"], p["model_version"], p["timezone"], p["change"],
                     p["id"], key, now))
            elif kind == "counts/":
                day = p["day"] if engine == "sqlite" else datetime.strptime(p["day"], "%Y-%m-%d").date()
                run("""INSERT INTO day_counts (device, day, species, scientific_name, events, frames, individuals,
                       timezone, updated_at, message_id, received_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)
                       ON CONFLICT (device, day, species) DO UPDATE SET events = excluded.events,
                       frames = excluded.frames, individuals = excluded.individuals, updated_at = excluded.updated_at,
                       message_id = excluded.message_id WHERE excluded.updated_at > day_counts.updated_at""",
                    (device, day, p["species"], p["scientific_name"], p["events"], p["frames"], p["individuals"],
                     p["timezone"], _time(engine, p["updated_at"]), p["id"], now))
        conn.commit() if engine == "postgresql" else conn.execute("COMMIT")
    finally:
        conn.close()
