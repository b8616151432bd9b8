"""The message handler and the sink on both engines, without a broker: idempotency rules."""

from __future__ import annotations

import hashlib
import json
import random
import string
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from collector.importer import import_file
from collector.messages import EventRow, Rejected, parse
from collector.sink import Message, Sink
from edge.publish.messages import event_message
from fleet.db import engine_of
from tests.collector.helpers import (
    assert_row_matches,
    context,
    count,
    day_counts,
    event_history,
    event_row,
    events_by_uid,
    final_event,
    info_payload,
    query,
    species_by_uid,
)


def _messages(device: str, pairs: list[tuple[str, str]]) -> list[Message]:
    return [Message(f"trailcam/{device}/{t}", parse(f"trailcam/{device}/{t}", p.encode())) for t, p in pairs]


def test_shuffled_duplicated_replay_leaves_the_newest_rows(central_db: str) -> None:
    pairs = [p for n in range(40) for p in event_history("cam-a", n, frames=1 + n % 4)]
    messages = _messages("cam-a", pairs)
    shuffled = messages + messages[::3]
    random.Random(7).shuffle(shuffled)
    sink = Sink(central_db)
    try:
        for start in range(0, len(shuffled), 17):
            sink.write(shuffled[start:start + 17])
        sink.write(messages)  # and a full replay, in order
    finally:
        sink.close()
    rows = events_by_uid(central_db)
    assert len(rows) == 40 == count(central_db, "events")
    for n in range(40):
        payload = final_event("cam-a", n, frames=1 + n % 4)
        assert_row_matches(rows[payload["event_id"]], payload)
        assert rows[payload["event_id"]]["change"] == "end"
        # A device without `species_counts` (the previous release): the visit counts its species once.
        assert species_by_uid(central_db)[payload["event_id"]] == [
            (payload["species"], payload["scientific_name"], payload["individuals"], payload["frame_count"])]


def _mixed_history(device: str) -> list[tuple[str, str]]:
    """One visit's messages as a device with per-species counts publishes them: a jay, then a
    cardinal beside two jays in one frame, then (end) a bird review moved the cardinal away."""
    ctx = context(device)
    lists = [[("Blue Jay", 1, 1)], [("Blue Jay", 2, 2), ("Northern Cardinal", 1, 1)],
             [("Blue Jay", 2, 3), ("Northern Cardinal", 1, 1)], [("Blue Jay", 2, 3)]]
    out = []
    for (frames, change), counts in zip(((1, "new"), (2, "update"), (3, "update"), (3, "end")), lists):
        event = event_row(device, 0, frames, species="Blue Jay", individuals=3,
                          species_counts=[{"species": s, "individuals": n, "frames": f} for s, n, f in counts])
        out.append(event_message(event, change, ctx))
    return [(m.topic, m.payload) for m in out]


def test_species_counts_are_replaced_whole_by_the_newest_message(central_db: str) -> None:
    messages = _messages("cam-m", _mixed_history("cam-m"))
    payloads = [json.loads(m[1]) for m in _mixed_history("cam-m")]
    assert payloads[2]["individuals"] == 2 and payloads[2]["birds"] == 3  # the headline's MaxN; all birds at once
    sink = Sink(central_db)
    try:
        sink.write(messages[:3])
        assert species_by_uid(central_db) == {"cam-m-ev-00000": [
            ("Blue Jay", "Cyanocitta cristata", 2, 3), ("Northern Cardinal", "Cardinalis cardinalis", 1, 1)]}
        sink.write([messages[3]])
        for order in (messages[::-1], [messages[1]], messages[:2] + messages[:2]):  # stale copies change nothing
            sink.write(order)
    finally:
        sink.close()
    assert species_by_uid(central_db) == {"cam-m-ev-00000": [("Blue Jay", "Cyanocitta cristata", 2, 3)]}
    assert events_by_uid(central_db)["cam-m-ev-00000"]["individuals"] == 2


def test_a_rejected_visit_counts_no_species(central_db: str) -> None:
    ctx = context("cam-x")
    end = event_row("cam-x", 1, 2, species_counts=[{"species": "Northern Cardinal", "individuals": 2, "frames": 2}])
    rejected = dict(end, review_state="rejected", reviewed_at="2026-11-29T08:00:00.000Z", species_counts=[])
    pairs = [(m.topic, m.payload) for m in (event_message(end, "end", ctx), event_message(rejected, "end", ctx))]
    sink = Sink(central_db)
    try:
        sink.write(_messages("cam-x", pairs[:1]))
        assert [r[0] for r in species_by_uid(central_db)["cam-x-ev-00001"]] == ["Northern Cardinal"]
        sink.write(_messages("cam-x", pairs[1:]))
    finally:
        sink.close()
    assert species_by_uid(central_db) == {}
    assert events_by_uid(central_db)["cam-x-ev-00001"]["individuals"] == 0


def test_reviews_and_undo_win_over_earlier_messages_whatever_the_order(central_db: str) -> None:
    ctx = context("cam-r")
    end = event_row("cam-r", 1, 3)
    rejected = dict(end, review_state="rejected", reviewed_at="2026-11-29T08:00:00.000Z")
    undone = dict(end, review_state=None, reviewed_at="2026-11-29T08:05:00.000Z")
    pairs = [(m.topic, m.payload) for m in (
        event_message(event_row("cam-r", 1, 1), "new", ctx), event_message(end, "end", ctx),
        event_message(rejected, "update", ctx), event_message(undone, "update", ctx))]
    msgs = _messages("cam-r", pairs)
    sink = Sink(central_db)
    try:
        sink.write(msgs[:3])
        row = events_by_uid(central_db)["cam-r-ev-00001"]
        assert row["species"] is None and row["review"] == "rejected"  # a rejected visit counts for nothing
        sink.write([msgs[3], msgs[1], msgs[0], msgs[2]])  # undo, then stale copies of the rest
    finally:
        sink.close()
    row = events_by_uid(central_db)["cam-r-ev-00001"]
    assert row["species"] == end["species"] and row["review"] is None
    assert row["message_id"].endswith(":reviewed:2026-11-29T08:05:00.000Z")


def test_day_counts_newest_updated_at_wins(central_db: str) -> None:
    t0 = datetime(2026, 11, 29, 7, tzinfo=UTC)
    older = day_counts("cam-c", {"Blue Jay": {"events": 2, "frames": 5}}, t0)
    newer = day_counts("cam-c", {"Blue Jay": {"events": 3, "frames": 9, "individuals": 4}}, t0 + timedelta(minutes=1))
    per_species = [p for p in newer + older if p[0].startswith("counts/")]
    sink = Sink(central_db)
    try:
        sink.write(_messages("cam-c", per_species))
        sink.write(_messages("cam-c", [p for p in older if p[0].startswith("counts/")]))
    finally:
        sink.close()
    rows = query(central_db, "SELECT device, species, events, frames, individuals FROM day_counts")
    assert rows == [("cam-c", "Blue Jay", 3, 9, 4)]
    assert str(query(central_db, "SELECT day FROM day_counts")[0][0]) == "2026-11-29"


def test_poison_messages_are_kept_with_their_reason_and_do_not_block(central_db: str) -> None:
    good = _messages("cam-p", event_history("cam-p", 1))
    bad_json = Message("trailcam/cam-p/events", parse("trailcam/cam-p/events", b"{not json"))
    wrong_device = json.loads(event_history("cam-q", 2)[0][1])
    other = Message("trailcam/cam-p/events",
                    parse("trailcam/cam-p/events", json.dumps(wrong_device).encode()))
    no_start = {k: v for k, v in json.loads(event_history("cam-p", 3)[0][1]).items() if k != "start"}
    missing = Message("trailcam/cam-p/events", parse("trailcam/cam-p/events", json.dumps(no_start).encode()))
    newer = dict(json.loads(event_history("cam-p", 4)[0][1]), schema=2)
    future = Message("trailcam/cam-p/events", parse("trailcam/cam-p/events", json.dumps(newer).encode()))
    status = Message("trailcam/cam-p/status", parse("trailcam/cam-p/status", b"sleeping"))
    assert all(isinstance(m.parsed, Rejected) for m in (bad_json, other, missing, future, status))
    sink = Sink(central_db)
    try:
        stats = sink.write([bad_json, *good, other, missing, future, status])
    finally:
        sink.close()
    assert stats.rejected == 5 and stats.events == len(good)
    assert set(events_by_uid(central_db)) == {"cam-p-ev-00001"}
    reasons = [r[0] for r in query(central_db, "SELECT reason FROM rejected_messages ORDER BY id")]
    assert reasons[0].startswith("payload is not JSON")
    assert "differs from the topic's device 'cam-p'" in reasons[1]
    assert reasons[2] == "field 'start' is missing"
    assert "payload schema 2 is newer" in reasons[3]
    assert "'sleeping' is not one of online, offline, stopped" in reasons[4]


def test_bad_species_counts_are_rejected_with_their_reason(central_db: str) -> None:
    base = json.loads(_mixed_history("cam-v")[1][1])
    item = base["species_counts"][0]
    bad = {
        "not a list": {"species_counts": {"Blue Jay": 1}},
        "too many": {"species_counts": [dict(item, species=f"s{n}") for n in range(101)]},
        "not an object": {"species_counts": ["Blue Jay"]},
        "no species": {"species_counts": [{"individuals": 1, "frames": 1}]},
        "long label": {"species_counts": [dict(item, species="x" * 201)]},
        "negative": {"species_counts": [dict(item, individuals=-1)]},
        "not an integer": {"species_counts": [dict(item, frames=1.5)]},
        "twice": {"species_counts": [item, item]},
        "birds": {"birds": -2},
    }
    parsed = {name: parse("trailcam/cam-v/events", json.dumps(dict(base, **change)).encode())
              for name, change in bad.items()}
    assert all(isinstance(p, Rejected) for p in parsed.values()), parsed
    reasons = {name: p.reason for name, p in parsed.items()}
    assert reasons["not a list"] == "field 'species_counts' is not a list"
    assert reasons["too many"] == "field 'species_counts' lists 101 species (at most 100)"
    assert reasons["not an object"] == "species_counts[0]: not an object"
    assert reasons["no species"] == "species_counts[0]: field 'species' is missing"
    assert reasons["long label"] == "species_counts[0]: field 'species' is empty or longer than 200 characters"
    assert reasons["negative"] == "species_counts[0]: field 'individuals' is negative"
    assert reasons["not an integer"] == "species_counts[0]: field 'frames' has the wrong type (float)"
    assert reasons["twice"] == "field 'species_counts' lists 'Blue Jay' twice"
    assert reasons["birds"] == "field 'birds' is negative"
    good = _messages("cam-v", _mixed_history("cam-v"))
    sink = Sink(central_db)
    try:
        stats = sink.write([Message("trailcam/cam-v/events", p) for p in parsed.values()] + good)
    finally:
        sink.close()
    assert stats.rejected == len(bad) and count(central_db, "rejected_messages") == len(bad)
    assert species_by_uid(central_db) == {"cam-v-ev-00000": [("Blue Jay", "Cyanocitta cristata", 2, 3)]}


def _incompressible(n: int) -> str:
    """Text PostgreSQL cannot compress below its index row limit (a run of one letter it can)."""
    rng = random.Random(n)
    return "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(n))


def test_a_value_the_database_refuses_is_rejected_alone(central_db: str) -> None:
    """Defence in depth behind the validation (bypassed here with rows built by hand): a row the
    database refuses must not block its batch. An integer past 64 bits (both engines) and a
    species past PostgreSQL's btree row size (ProgramLimitExceeded, which psycopg raises as an
    OperationalError, once taken for "database down" and retried forever: issue 22, item 2)
    are rejected alone, with the payload as received; the rest lands, and no retry is needed."""
    raw = event_history("cam-big", 1)[0][1].encode()
    valid = parse("trailcam/cam-big/events", raw)
    assert isinstance(valid, EventRow)
    huge_int = Message("trailcam/cam-big/events", replace(valid, frame_count=2**70), raw)
    long_raw = event_history("cam-big", 3)[0][1].encode()
    long_row = replace(parse("trailcam/cam-big/events", long_raw), species=_incompressible(6000),
                       species_counts=())
    long_species = Message("trailcam/cam-big/events", long_row, long_raw)
    good = _messages("cam-big", event_history("cam-big", 2))
    sink = Sink(central_db)
    try:
        stats = sink.write([*good, huge_int, long_species])
    finally:
        sink.close()
    stored = {"cam-big-ev-00002"} | ({"cam-big-ev-00003"} if engine_of(central_db) == "sqlite" else set())
    assert set(events_by_uid(central_db)) == stored
    rows = query(central_db, "SELECT reason, payload, payload_size, payload_sha256 FROM rejected_messages ORDER BY id")
    assert stats.rejected == len(rows) == 3 - len(stored)
    assert all(reason.startswith("refused by the database") for reason, *_ in rows)
    assert (rows[0][1], rows[0][2], rows[0][3]) == (raw.decode(), len(raw), hashlib.sha256(raw).hexdigest())


def test_devices_from_status_info_and_events(central_db: str) -> None:
    sink = Sink(central_db)
    try:
        sink.write(_messages("cam-d", event_history("cam-d", 1, tz="America/Toronto")))
        row = query(central_db, "SELECT state, model_id, model_version, timezone FROM devices WHERE device = 'cam-d'")
        assert row == [("unknown", "aiy-birds-v1", "1.2", "America/Toronto")]  # from the event, no info yet
        sink.write(_messages("cam-d", [("status", "online"), ("info", info_payload("cam-d"))]))
        sink.write(_messages("cam-d", [("info", info_payload("cam-d", "2026-11-28T00:00:00.000Z",
                                                             software_version="0.0.9"))]))  # older: ignored
        sink.write(_messages("cam-d", event_history("cam-d", 2, tz="UTC")))  # info wins over events now
        sink.write(_messages("cam-d", [("status", "offline")]))
    finally:
        sink.close()
    row = query(central_db, "SELECT state, software_version, detector_id, timezone, cameras, deployments FROM devices")
    state, software, detector, tz, cameras, deployments = row[0]
    assert (state, software, detector, tz) == ("offline", "0.1.0", "ssd-v2", "Europe/Berlin")
    as_json = [c if isinstance(c, list) else json.loads(c) for c in (cameras, deployments)]
    assert as_json == [["feeder", "pond"], [{"id": "d1", "site": "north"}]]


def test_import_twice_is_import_once(central_db: str, tmp_path: Path) -> None:
    lines = []
    for n in range(25):
        for topic, payload in event_history("cam-i", n):
            lines.append({"topic": f"trailcam/cam-i/{topic}", "payload": json.loads(payload)})
    lines.append({"topic": "trailcam/cam-i/status", "payload": "stopped"})
    lines.append({"topic": "trailcam/cam-i/info", "payload": json.loads(info_payload("cam-i"))})
    path = tmp_path / "export.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\nnot a line\n")
    sink = Sink(central_db)
    try:
        first = import_file(path, sink)
        before = events_by_uid(central_db)
        second = import_file(path, sink)
    finally:
        sink.close()
    assert first.events == second.events == 25 * 4 and first.rejected == 1
    assert events_by_uid(central_db) == before and len(before) == 25
    assert count(central_db, "events") == 25
    assert query(central_db, "SELECT state FROM devices") == [("stopped",)]
    assert "line 103: not a {topic, payload} JSON object" in query(central_db, "SELECT reason FROM rejected_messages ORDER BY id")[0][0]
