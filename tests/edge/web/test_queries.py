"""The page queries on their own: the heatmap (from the hourly tallies, or counted from the events
in SQL) equals counting each visit in Python, across a daylight-saving change and in a half-hour zone."""

from __future__ import annotations

import random
import sqlite3
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from edge.store.times import format_utc
from edge.store.writer import Store
from edge.web.queries import Reader


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/St_Johns", "Asia/Kolkata", "UTC"])
def test_hour_matrix_matches_counting_each_visit(tmp_path: Path, zone: str) -> None:
    path = tmp_path / "edge.db"
    Store(path, station_tz=zone).close()
    rng = random.Random(3)
    start = datetime(2026, 3, 20, tzinfo=UTC)  # Europe's and Newfoundland's DST change inside
    rows = []
    for index in range(3000):
        at = start + timedelta(seconds=rng.uniform(0, 20 * 86400))
        rows.append((index + 1, f"u{index}", "cam", rng.choice(["robin", "jay", "wren"]), 0.9, format_utc(at),
                     format_utc(at), 1, "closed", 1, "rejected" if index % 50 == 0 else None))
    conn = sqlite3.connect(path)
    conn.executemany("""INSERT INTO events (id, uid, camera, species, confidence, started_at, ended_at, frame_count,
                            state, individuals, review_state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""", rows)
    # What each visit counts per species (the store's event_species): a rejected one nothing,
    # every 7th a sparrow beside its headline species (a mixed visit counts both).
    counted = [(i, s) for i, _, _, s, _, _, _, _, _, _, review in rows if review is None]
    counted += [(i, "sparrow") for i, _, _, _, _, _, _, _, _, _, review in rows if review is None and i % 7 == 0]
    conn.executemany("INSERT INTO event_species (event_id, species, individuals, frames, day) VALUES (?, ?, 1, 1, '')",
                     counted)
    conn.commit()
    first, last = date(2026, 3, 21), date(2026, 4, 5)
    expected: dict[str, list[int]] = defaultdict(lambda: [0] * 24)
    tz = ZoneInfo(zone)
    for index, _, _, species, _, started, _, _, _, _, review in rows:
        local = datetime.fromisoformat(started.replace("Z", "+00:00")).astimezone(tz)
        if review is None and first <= local.date() <= last:
            expected[species][local.hour] += 1
            if index % 7 == 0:
                expected["sparrow"][local.hour] += 1
    reader = Reader(conn)
    assert reader.hourly  # the hourly tallies (edge/store/hourly.py), kept by triggers on these inserts
    got = reader.hour_matrix(first, last)
    assert got == dict(expected)
    assert reader.hour_matrix(first, last, species="jay") == {"jay": expected["jay"]}
    # The tallies answer what the events answered (a half-hour zone reads the events anyway).
    from_events = Reader(conn)
    from_events.hourly = False
    assert from_events.hour_matrix(first, last) == got
    assert from_events.hour_matrix(first, last, species="sparrow") == reader.hour_matrix(first, last, species="sparrow")
    conn.close()
