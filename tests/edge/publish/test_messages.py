"""Payload builders: every documented field, local times across DST, topic-safe species."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from edge.publish.messages import MessageContext, counts_messages, event_message, topic_segment
from edge.store.outbox import OutboxMessage

EVENT = {
    "uid": "cam1-20261129T010203Z-ab12",
    "camera": "cam1",
    "species": "Cyanocitta cristata",
    "confidence": 0.912345678,
    "started_at": "2026-11-29T01:02:03Z",
    "ended_at": "2026-11-29T01:02:33Z",
    "frame_count": 4,
    "model_id": "convnet-int8-3f2a9c1d",
    "state": "open",
}
EVENT_FIELDS = {
    "schema", "id", "event_id", "change", "device", "camera", "species", "scientific_name", "common_name",
    "confidence", "start", "end", "start_local", "end_local", "utc_offset", "timezone",
    "duration_s", "frame_count", "individuals", "species_counts", "birds", "review", "model_species", "model_id",
    "model_version",
}


def ctx(tz: str = "Europe/Berlin") -> MessageContext:
    return MessageContext(
        device_id="station-7",
        station_tz=tz,
        model_id="fallback-model",
        model_version="2026-11-29T00:00:00Z",
        scientific_names={"Blue Jay": "Cyanocitta cristata", "Cyanocitta cristata": "Cyanocitta cristata"},
        # A station that reads German (edge.classify.names.Namer.common: the names pack's name).
        common_names={"Blue Jay": "Blauhäher", "Cyanocitta cristata": "Blauhäher"},
    )


def test_event_payload_has_every_documented_field() -> None:
    message = event_message(EVENT, "update", ctx())
    assert (message.topic, message.qos, message.retain, message.kind) == ("events", 1, False, "event")
    payload = json.loads(message.payload)
    # An event row without its per-species counts (a caller outside the store): no list, so a
    # consumer counts (species, individuals) as from a device before the list.
    assert set(payload) == EVENT_FIELDS - {"species_counts"}
    assert payload["id"] == "cam1-20261129T010203Z-ab12:update:4"
    assert payload["event_id"] == EVENT["uid"]
    assert payload["change"] == "update"
    assert payload["device"] == "station-7"
    assert payload["species"] == "Cyanocitta cristata"
    assert payload["scientific_name"] == "Cyanocitta cristata"
    assert payload["common_name"] == "Blauhäher"
    assert "Blauhäher" in message.payload  # UTF-8 as it is, not \u escapes
    assert payload["confidence"] == 0.9123
    assert payload["start"] == "2026-11-29T01:02:03.000Z"
    assert payload["end"] == "2026-11-29T01:02:33.000Z"
    assert payload["start_local"] == "2026-11-29T02:02:03.000+01:00"
    assert payload["end_local"] == "2026-11-29T02:02:33.000+01:00"
    assert payload["utc_offset"] == "+01:00"
    assert payload["timezone"] == "Europe/Berlin"
    assert payload["duration_s"] == 30.0
    assert payload["frame_count"] == 4
    assert payload["individuals"] == 1  # an event row without the column: one bird per frame
    assert json.loads(event_message({**EVENT, "individuals": 3}, "update", ctx()).payload)["individuals"] == 3
    assert payload["model_id"] == "convnet-int8-3f2a9c1d"
    assert payload["model_version"] == "2026-11-29T00:00:00Z"


def test_event_payload_counts_each_species_of_a_mixed_visit() -> None:
    """Two jays and a cardinal in one frame: `individuals` is the headline's MaxN, `birds` all at once."""
    counts = [{"species": "Blue Jay", "individuals": 2, "frames": 3},
              {"species": "Northern Cardinal", "individuals": 1, "frames": 1}]
    payload = json.loads(event_message({**EVENT, "species": "Blue Jay", "individuals": 3, "species_counts": counts},
                                       "update", ctx()).payload)
    assert set(payload) == EVENT_FIELDS
    assert (payload["species"], payload["individuals"], payload["birds"]) == ("Blue Jay", 2, 3)
    assert payload["species_counts"] == [
        {"species": "Blue Jay", "scientific_name": "Cyanocitta cristata", "common_name": "Blauhäher",
         "individuals": 2, "frames": 3},
        {"species": "Northern Cardinal", "scientific_name": None, "common_name": None, "individuals": 1, "frames": 1}]
    # A rejected visit counts nothing: an empty list, no species, 0 individuals.
    rejected = json.loads(event_message({**EVENT, "review_state": "rejected", "species_counts": []}, "end",
                                        ctx()).payload)
    assert (rejected["species"], rejected["individuals"], rejected["species_counts"]) == (None, 0, [])


def test_event_ids_differ_per_change_and_frame_count() -> None:
    ids = {
        json.loads(event_message({**EVENT, "frame_count": n}, change, ctx()).payload)["id"]
        for change in ("new", "update", "end")
        for n in (1, 2)
    }
    assert len(ids) == 6


def test_event_local_offset_follows_dst_and_negative_offsets() -> None:
    summer = {**EVENT, "started_at": "2026-07-01T12:00:00Z", "ended_at": "2026-07-01T12:00:10Z"}
    assert json.loads(event_message(summer, "new", ctx()).payload)["utc_offset"] == "+02:00"
    payload = json.loads(event_message(EVENT, "new", ctx("America/St_Johns")).payload)
    assert payload["utc_offset"] == "-03:30"
    assert payload["start_local"] == "2026-11-28T21:32:03.000-03:30"


def test_event_without_known_scientific_name_or_model_falls_back() -> None:
    event = {**EVENT, "species": "unknown", "model_id": None, "ended_at": None}
    payload = json.loads(event_message(event, "new", ctx()).payload)
    assert payload["scientific_name"] is None
    assert payload["common_name"] is None
    assert payload["model_id"] == "fallback-model"
    assert payload["end"] == payload["start"]


def test_event_rejects_bad_change_and_missing_field() -> None:
    with pytest.raises(ValueError, match="change"):
        event_message(EVENT, "created", ctx())  # type: ignore[arg-type]
    broken = dict(EVENT)
    del broken["camera"]
    with pytest.raises(ValueError, match="camera"):
        event_message(broken, "new", ctx())


def test_counts_messages_summary_and_per_species() -> None:
    now = datetime(2026, 11, 29, 1, 5, tzinfo=UTC)
    tallies = {"Blue Jay": {"events": 2, "frames": 7, "individuals": 5}, "unknown": {"events": 1, "frames": 1, "individuals": 1}}
    messages = counts_messages(tallies, "2026-11-29", ctx(), now=now)
    assert [m.topic for m in messages] == ["counts", "counts/blue_jay", "counts/unknown"]
    assert all(m.retain and m.qos == 1 and m.kind == "counts" for m in messages)
    summary = json.loads(messages[0].payload)
    assert summary == {
        "schema": 1,
        "id": "counts:2026-11-29:3:8",
        "device": "station-7",
        "day": "2026-11-29",
        "timezone": "Europe/Berlin",
        "updated_at": "2026-11-29T01:05:00.000Z",
        "total": {"events": 3, "frames": 8, "individuals": 6},
        "species": {
            "Blue Jay": {"events": 2, "frames": 7, "individuals": 5, "scientific_name": "Cyanocitta cristata",
                         "common_name": "Blauhäher"},
            "unknown": {"events": 1, "frames": 1, "individuals": 1, "scientific_name": None, "common_name": None},
        },
    }
    jay = json.loads(messages[1].payload)
    assert jay["species"] == "Blue Jay"
    assert (jay["events"], jay["frames"], jay["individuals"], jay["day"]) == (2, 7, 5, "2026-11-29")
    assert jay["scientific_name"] == "Cyanocitta cristata"
    assert jay["common_name"] == "Blauhäher"


def test_context_without_common_names_publishes_null_and_takes_a_callable() -> None:
    """A MessageContext made as before common names (scientific_names only) still builds: every
    `common_name` is null; a callable works like a mapping, as for scientific names."""
    plain = MessageContext(device_id="station-7", scientific_names={"Blue Jay": "Cyanocitta cristata"})
    payload = json.loads(event_message({**EVENT, "species": "Blue Jay"}, "new", plain).payload)
    assert (payload["scientific_name"], payload["common_name"]) == ("Cyanocitta cristata", None)
    assert plain.display_name("Blue Jay") == "Cyanocitta cristata"  # no common name: the scientific name
    named = MessageContext(device_id="station-7", common_names=lambda label: label.upper())
    assert named.common_name("Blue Jay") == "BLUE JAY"
    assert named.display_name("Blue Jay") == "BLUE JAY"
    assert named.common_name(None) is None


def test_counts_changed_limits_per_species_messages() -> None:
    tallies = {"Blue Jay": {"events": 2, "frames": 7}, "unknown": {"events": 1, "frames": 1}}
    messages = counts_messages(tallies, "2026-11-29", ctx(), changed=["unknown"])
    assert [m.topic for m in messages] == ["counts", "counts/unknown"]


@pytest.mark.parametrize(
    ("label", "segment"),
    [("Blue Jay", "blue_jay"), ("Cassin's Finch", "cassin_s_finch"), ("a/b+c#", "a_b_c"), ("ÄÖ", "_")],
)
def test_topic_segment_is_safe(label: str, segment: str) -> None:
    assert topic_segment(label) == segment


def test_invalid_messages_and_context_are_rejected() -> None:
    with pytest.raises(ValueError, match="kind"):
        OutboxMessage("events", "{}", kind="other")
    with pytest.raises(ValueError, match="topic"):
        OutboxMessage("events/#", "{}")
    with pytest.raises(ValueError, match="device id"):
        MessageContext(device_id="a/b")


def test_outbox_writer_names_a_model_in_the_station_language() -> None:
    """The daemon's OutboxWriter (edge/daemon/wiring.py hands it the station's Namer): each label
    of the model it follows gets its common name in [station] language; none without a namer."""
    from types import SimpleNamespace

    from edge.classify.labels import Label
    from edge.classify.names import Namer, Names
    from edge.publish.outbox_writer import OutboxWriter

    labels = [Label(0, "MOURNING DOVE", "Zenaida macroura", "Mourning Dove"), Label(1, "Spinus tristis", "Spinus tristis", None)]
    spec = SimpleNamespace(labels=labels, scientific_names={"MOURNING DOVE": "Zenaida macroura"}, model_version="v1")
    classifier = SimpleNamespace(model_id="aiy", spec=spec)
    german = Names("de", {"Zenaida macroura": "Carolinataube"}, {"Zenaida macroura": "Mourning Dove"})
    writer = OutboxWriter("station-7", "UTC", None, {}, 100, namer=Namer("de", german))
    writer.follow_model(classifier)
    context = writer.message_context()
    assert (context.common_name("MOURNING DOVE"), context.common_name("Spinus tristis")) == ("Carolinataube", None)
    assert context.display_name("MOURNING DOVE") == "Carolinataube"
    english = OutboxWriter("station-7", "UTC", None, {}, 100, namer=Namer())
    english.follow_model(classifier)
    assert english.message_context().common_name("MOURNING DOVE") == "Mourning Dove"
    bare = OutboxWriter("station-7", "UTC", None, {}, 100)
    bare.follow_model(classifier)
    assert bare.message_context().common_name("MOURNING DOVE") is None
