"""Shared helpers for the MQTT tests: an outbox database filled directly, event payloads."""

from __future__ import annotations

import json
from pathlib import Path

import sqlite_utils

from edge.publish.messages import MessageContext, counts_messages, event_message
from edge.store import outbox

CTX = MessageContext(device_id="dev1", station_tz="Europe/Berlin", model_id="m-1", model_version="v1",
                     scientific_names={"Blue Jay": "Cyanocitta cristata"})


def make_db(path: Path) -> sqlite_utils.Database:
    db = sqlite_utils.Database(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")  # thousands of one-frame commits; durability is not under test here
    outbox.create_table(db)
    return db


def event(n: int, species: str = "Blue Jay") -> dict[str, object]:
    return {
        "uid": f"ev-{n:05d}", "camera": "cam1", "species": species, "confidence": 0.9,
        "started_at": "2026-11-29T01:02:03Z", "ended_at": "2026-11-29T01:02:13Z",
        "frame_count": 1, "model_id": "m-1",
    }


def enqueue_frame(db: sqlite_utils.Database, n: int, max_rows: int = 100_000) -> None:
    """What the store does for one frame: an event message and the day's counts, one transaction."""
    with db.atomic():
        messages = [event_message(event(n), "new", CTX)]
        messages += counts_messages({"Blue Jay": {"events": n + 1, "frames": n + 1}}, "2026-11-29", CTX)
        outbox.enqueue(db, messages, max_rows)


def event_ids(messages: list) -> list[str]:  # noqa: ANN001 - list[Received]
    return [json.loads(m.payload)["event_id"] for m in messages if m.topic.endswith("/events")]
