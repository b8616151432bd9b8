"""collector.messages: every rejection branch, each with a case that only that branch rejects
(its exact reason), and the values exactly at each bound accepted (issue 22's test section:
13 branches never ran, so loosening them went unnoticed). Pure: parse() needs no database."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from collector import messages as m
from collector.messages import CountRow, EventRow, InfoRow, Rejected, StatusRow, parse
from edge.publish.messages import event_message
from edge.store.times import format_utc, parse_utc
from tests.collector.helpers import START, context, day_counts, event_row, info_payload

DEVICE = "cam-b"
DROP = object()  # a field left out


def _event_base() -> dict[str, Any]:
    row = event_row(DEVICE, 1, 3, species_counts=[{"species": "Blue Jay", "individuals": 2, "frames": 3}])
    return json.loads(event_message(row, "update", context(DEVICE)).payload)


def _count_base() -> dict[str, Any]:
    pairs = day_counts(DEVICE, {"Blue Jay": {"events": 2, "frames": 5}}, START)
    return json.loads(next(p for t, p in pairs if t.startswith("counts/")))


BASES: dict[str, Callable[[], dict[str, Any]]] = {
    "events": _event_base, "counts/blue_jay": _count_base, "info": lambda: json.loads(info_payload(DEVICE)),
}


def _payload(kind: str, change: dict[str, Any]) -> bytes:
    return payload_of(kind, change, DEVICE)


def payload_of(kind: str, change: dict[str, Any], device: str) -> bytes:
    """The valid `kind` payload of `device` with `change` applied (DROP: the field left out)."""
    data = BASES[kind]()
    data = json.loads(json.dumps(data).replace(f'"{DEVICE}', f'"{device}'))
    for key, value in change.items():
        if value is DROP:
            data.pop(key, None)
        else:
            data[key] = value
    return json.dumps(data).encode()  # ASCII escapes: a lone surrogate travels as \ud800


def _species(**item: Any) -> dict[str, Any]:
    return {"species_counts": [{"species": "Blue Jay", "individuals": 1, "frames": 1, **item}]}


# (kind, change of the valid payload, the exact reason); one per rejection branch of collector/messages.py.
REJECTED = {
    # _common
    "schema missing": ("events", {"schema": DROP}, "field 'schema' is missing or not an integer"),
    "schema a bool": ("events", {"schema": True}, "field 'schema' is missing or not an integer"),
    "schema newer": ("events", {"schema": 2}, "payload schema 2 is newer than this collector's (1): upgrade trailcam"),
    "schema 0": ("counts/blue_jay", {"schema": 0}, "payload schema 0 is not a schema (1 or more)"),
    "device missing": ("events", {"device": DROP}, "field 'device' is missing"),
    "device of another": ("info", {"device": "cam-a"}, "field 'device' 'cam-a' differs from the topic's device 'cam-b'"),
    # _field / _optional
    "required missing": ("events", {"camera": DROP}, "field 'camera' is missing"),
    "required wrong type": ("events", {"frame_count": "3"}, "field 'frame_count' has the wrong type (str)"),
    "a bool for an integer": ("events", {"frame_count": True}, "field 'frame_count' has the wrong type (bool)"),
    "optional wrong type": ("events", {"model_id": 7}, "field 'model_id' has the wrong type (int)"),
    # _check_text / _text
    "text too long": ("events", {"camera": "c" * 129}, "field 'camera' is longer than 128 characters (129)"),
    "text with NUL": ("events", {"species": "Blue\x00Jay"},
                      "field 'species' holds a control character or lone surrogate (U+0000)"),
    "text with a lone surrogate": ("events", {"model_version": "v\ud800"},
                                   "field 'model_version' holds a control character or lone surrogate (U+D800)"),
    "text empty": ("events", {"event_id": ""}, "field 'event_id' is empty"),
    "id too long": ("events", {"id": "i" * 513}, "field 'id' is longer than 512 characters (513)"),
    "uid too long": ("events", {"event_id": "u" * 129}, "field 'event_id' is longer than 128 characters (129)"),
    "label too long": ("counts/blue_jay", {"species": "s" * 201}, "field 'species' is longer than 200 characters (201)"),
    # _zone
    "zone not a name": ("events", {"timezone": "Europe/Berlin; DROP"}, "field 'timezone' 'Europe/Berlin; DROP' is not a time zone name"),
    # _moment
    "time too long": ("events", {"start": "2026-11-29T06:00:00.000000000000000000000Z"},
                      "field 'start' is not an ISO 8601 time: '2026-11-29T06:00:00.00000000000000000000'..."),
    "time not ISO": ("events", {"end": "yesterday"}, "field 'end' is not an ISO 8601 time: 'yesterday'"),
    "year 1 east of UTC (overflow)": ("events", {"start": "0001-01-01T00:00:00+01:00"},
                                      "field 'start' '0001-01-01T00:00:00+01:00' is outside 1970 to 2199 (UTC)"),
    "year 9999 west of UTC (overflow)": ("counts/blue_jay", {"updated_at": "9999-12-31T23:59:59-01:00"},
                                         "field 'updated_at' '9999-12-31T23:59:59-01:00' is outside 1970 to 2199 (UTC)"),
    "just before 1970 in UTC": ("info", {"published_at": "1970-01-01T00:59:59.999+01:00"},
                                "field 'published_at' '1970-01-01T00:59:59.999+01:00' is outside 1970 to 2199 (UTC)"),
    "2200": ("events", {"end": "2200-01-01T00:00:00.000Z"}, "field 'end' '2200-01-01T00:00:00.000Z' is outside 1970 to 2199 (UTC)"),
    # the devices' own form (_CANONICAL_UTC, checked without converting): the same reasons
    "canonical, not a day": ("events", {"start": "2026-02-30T06:00:00.000Z"},
                             "field 'start' is not an ISO 8601 time: '2026-02-30T06:00:00.000Z'"),
    "canonical, hour 24": ("counts/blue_jay", {"updated_at": "2026-11-29T24:00:00.000Z"},
                           "field 'updated_at' is not an ISO 8601 time: '2026-11-29T24:00:00.000Z'"),
    "canonical, 1969": ("info", {"published_at": "1969-12-31T23:59:59.999Z"},
                        "field 'published_at' '1969-12-31T23:59:59.999Z' is outside 1970 to 2199 (UTC)"),
    "canonical, year 0": ("events", {"end": "0000-01-01T00:00:00.000Z"},
                          "field 'end' is not an ISO 8601 time: '0000-01-01T00:00:00.000Z'"),
    # _count_value
    "negative count": ("events", {"frame_count": -1}, "field 'frame_count' is negative"),
    "negative individuals": ("events", {"individuals": -1}, "field 'individuals' is negative"),
    "count past 32 bits": ("counts/blue_jay", {"events": 2**31}, "field 'events' 2147483648 is larger than 2147483647"),
    "birds past 32 bits": ("events", {"birds": 2**31}, "field 'birds' 2147483648 is larger than 2147483647"),
    # _event
    "change unknown": ("events", {"change": "delete"}, "field 'change' 'delete' is not one of new, update, end"),
    "confidence above 1": ("events", {"confidence": 1.0001}, "field 'confidence' 1.0001 is not between 0 and 1"),
    "confidence below 0": ("events", {"confidence": -0.0001}, "field 'confidence' -0.0001 is not between 0 and 1"),
    "review unknown": ("events", {"review": "approved"}, "field 'review' 'approved' is not one of confirmed, corrected, rejected"),
    "review time out of range": ("events", {"id": "u:update:3:reviewed:0001-01-01T00:00:00+01:00"},
                                 "field 'id' 'u:update:3:reviewed:0001-01-01T00:00:00+01:00': the review time is not "
                                 "an ISO 8601 time from 1970 to 2199"),
    # _species_counts / _species_count
    "species_counts not a list": ("events", {"species_counts": {"Blue Jay": 1}}, "field 'species_counts' is not a list"),
    "species_counts too many": ("events", {"species_counts": [{"species": f"s{n}", "individuals": 1, "frames": 1}
                                                              for n in range(101)]},
                                "field 'species_counts' lists 101 species (at most 100)"),
    "species_counts item not an object": ("events", {"species_counts": ["Blue Jay"]}, "species_counts[0]: not an object"),
    "species_counts label too long": ("events", _species(species="s" * 201),
                                      "species_counts[0]: field 'species' is empty or longer than 200 characters"),
    "species_counts label empty": ("events", _species(species=""),
                                   "species_counts[0]: field 'species' is empty or longer than 200 characters"),
    "species_counts label control": ("events", _species(species="Blue\nJay"),
                                     "species_counts[0]: field 'species' holds a control character or lone surrogate (U+000A)"),
    "species_counts scientific too long": ("events", _species(scientific_name="x" * 201),
                                           "species_counts[0]: field 'scientific_name' is longer than 200 characters (201)"),
    "species_counts negative": ("events", _species(frames=-1), "species_counts[0]: field 'frames' is negative"),
    "species_counts twice": ("events", {"species_counts": [{"species": "Blue Jay", "individuals": 1, "frames": 1}] * 2},
                             "field 'species_counts' lists 'Blue Jay' twice"),
    # _count
    "day not YYYY-MM-DD": ("counts/blue_jay", {"day": "29.11.2026"}, "field 'day' '29.11.2026' is not YYYY-MM-DD"),
    "day not in the calendar": ("counts/blue_jay", {"day": "2026-13-45"},
                                "field 'day' '2026-13-45' is not a date of the calendar"),
    "day 29 February of a common year": ("counts/blue_jay", {"day": "2026-02-29"},
                                         "field 'day' '2026-02-29' is not a date of the calendar"),
    "day out of range": ("counts/blue_jay", {"day": "1969-12-31"}, "field 'day' '1969-12-31' is outside 1970 to 2199"),
    # _info / _check_json
    "cameras not names": ("info", {"cameras": ["feeder", 3]}, "field 'cameras' is not a list of names"),
    "cameras too many": ("info", {"cameras": [f"c{n}" for n in range(257)]}, "field 'cameras' lists 257 cameras (at most 256)"),
    "camera name too long": ("info", {"cameras": ["c" * 129]}, "field 'cameras' is longer than 128 characters (129)"),
    "deployments not a list": ("info", {"deployments": {"id": "d1"}}, "field 'deployments' is not a list"),
    "deployments too many": ("info", {"deployments": [{"id": n} for n in range(257)]},
                             "field 'deployments' lists 257 deployments (at most 256)"),
    "deployment not an object": ("info", {"deployments": ["d1"]}, "field 'deployments' holds something that is not an object"),
    "deployment nested too deep": ("info", {"deployments": [{"a": [[[[[[[[1]]]]]]]]}]},
                                   "field 'deployments' is nested deeper than 8"),
    "deployment text with NUL": ("info", {"deployments": [{"site": "a\x00b"}]},
                                 "field 'deployments' holds a control character or lone surrogate (U+0000)"),
    "deployment key too long": ("info", {"deployments": [{"k" * 1001: 1}]},
                                "field 'deployments' is longer than 1000 characters (1001)"),
    "deployment integer past 64 bits": ("info", {"deployments": [{"n": 2**63}]},
                                        "field 'deployments' holds an integer larger than 64 bits"),
}


@pytest.mark.parametrize("name", list(REJECTED))
def test_each_rejection_branch(name: str) -> None:
    kind, change, reason = REJECTED[name]
    raw = _payload(kind, change)
    parsed = parse(f"trailcam/{DEVICE}/{kind}", raw)
    assert isinstance(parsed, Rejected), parsed
    assert parsed.reason == reason
    assert parsed.device == DEVICE and parsed.size == len(raw)


# Exactly at each bound: accepted (a bound one off in the other direction fails here).
ACCEPTED = {
    "schema 1": ("events", {"schema": 1}),
    "text of the limit": ("events", {"camera": "c" * 128, "event_id": "u" * 128, "species": "s" * 200}),
    "id of the limit": ("counts/blue_jay", {"id": "i" * 512}),
    "the first moment": ("events", {"start": "1970-01-01T00:00:00.000Z", "end": "1970-01-01T01:00:00+01:00"}),
    "the last moment": ("events", {"end": "2199-12-31T23:59:59.999Z"}),
    "counts of 0 and 2^31 - 1": ("counts/blue_jay", {"events": 0, "frames": 2**31 - 1, "individuals": 0}),
    "confidence 0 and 1": ("events", {"confidence": 0}),
    "confidence 1": ("events", {"confidence": 1.0}),
    "no confidence, no species": ("events", {"confidence": None, "species": None, "species_counts": []}),
    "each review": ("events", {"review": "corrected"}),
    "100 species": ("events", {"species_counts": [{"species": f"s{n}", "individuals": 1, "frames": 1} for n in range(100)]}),
    "first and last day": ("counts/blue_jay", {"day": "1970-01-01"}),
    "last day": ("counts/blue_jay", {"day": "2199-12-31"}),
    "leap day": ("counts/blue_jay", {"day": "2028-02-29"}),
    "256 cameras, 256 deployments, depth 8": ("info", {"cameras": [f"c{n}" for n in range(256)],
                                                       "deployments": [{"a": [[[[[[[1]]]]]]]}] * 256}),
    "zones": ("events", {"timezone": "America/Argentina/Buenos_Aires"}),
    "zone Etc/GMT+5": ("counts/blue_jay", {"timezone": "Etc/GMT+5"}),
}


@pytest.mark.parametrize("name", list(ACCEPTED))
def test_values_at_the_bounds_are_accepted(name: str) -> None:
    kind, change = ACCEPTED[name]
    parsed = parse(f"trailcam/{DEVICE}/{kind}", _payload(kind, change))
    assert isinstance(parsed, (EventRow, CountRow, InfoRow)), parsed


@pytest.mark.parametrize("text", [
    "2026-11-29T06:00:00.000Z", "2026-11-29T06:00:00Z", "2026-11-29T06:00:00.5Z", "2026-11-29T07:00:00.000+01:00",
    "2026-11-29T06:00:00.000", "2026-11-29 06:00:00.000Z", "2028-02-29T23:59:59.999Z",
    "\uff12\uff10\uff12\uff16-11-29T06:00:00.000Z",  # full-width digits: not the canonical form
])
def test_a_time_is_stored_as_format_utc_writes_it_whatever_its_form(text: str) -> None:
    """The canonical fast path keeps the text only where converting would give the same text."""
    parsed = parse(f"trailcam/{DEVICE}/events", _payload("events", {"start": text}))
    try:
        expected: str | None = format_utc(parse_utc(text))
    except ValueError:
        expected = None
    if expected is None or not ("1970" <= expected[:4] < "2200"):
        assert isinstance(parsed, Rejected), parsed
    else:
        assert isinstance(parsed, EventRow) and parsed.started_at == expected


def test_json_is_read_as_json_loads_reads_bytes() -> None:
    """One decoder for every message reads what json.loads(bytes) reads: UTF-8 with a BOM, UTF-16."""
    data = json.loads(_payload("events", {}))
    for raw in (b"\xef\xbb\xbf" + json.dumps(data).encode(), json.dumps(data).encode("utf-16"),
                json.dumps(data, ensure_ascii=False).encode("utf-32-le")):
        assert isinstance(parse(f"trailcam/{DEVICE}/events", raw), EventRow)
    bom_in_text = parse(f"trailcam/{DEVICE}/events", json.dumps(data).encode("utf-8-sig").decode("latin-1").encode())
    assert isinstance(bom_in_text, Rejected)


def test_the_payload_size_bound() -> None:
    """An event padded (an unknown field, ignored) to exactly MAX_PAYLOAD_BYTES is read; one byte more is not."""
    base = _payload("events", {"pad": ""})
    exact = _payload("events", {"pad": "p" * (m.MAX_PAYLOAD_BYTES - len(base))})
    assert len(exact) == m.MAX_PAYLOAD_BYTES and isinstance(parse(f"trailcam/{DEVICE}/events", exact), EventRow)
    over = _payload("events", {"pad": "p" * (m.MAX_PAYLOAD_BYTES - len(base) + 1)})
    parsed = parse(f"trailcam/{DEVICE}/events", over)
    assert isinstance(parsed, Rejected)
    assert parsed.reason == f"payload of {m.MAX_PAYLOAD_BYTES + 1} bytes is larger than {m.MAX_PAYLOAD_BYTES}"


@pytest.mark.parametrize(("raw", "reason"), [
    (b"{not json", "payload is not JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))"),
    (b'{"schema": NaN}', "payload is not JSON (NaN is not a JSON number)"),
    (b'{"schema": -Infinity}', "payload is not JSON (-Infinity is not a JSON number)"),
    (b"[" * 100_000 + b"]" * 100_000, "payload is not JSON (nested too deeply)"),
    (b'{"schema": ' + b"9" * 5000 + b"}", "payload is not JSON (Exceeds the limit (4300 digits) for integer string "
                                         "conversion: value has 5000 digits; use sys.set_int_max_str_digits() to increase the limit)"),
    (b'{"a": "\xff"}', "payload is not JSON ('utf-8' codec can't decode byte 0xff in position 7: invalid start byte)"),
    (b"[1, 2]", "payload is not a JSON object"),
])
def test_payloads_that_are_not_a_json_object(raw: bytes, reason: str) -> None:
    parsed = parse(f"trailcam/{DEVICE}/events", raw)
    assert isinstance(parsed, Rejected) and parsed.reason == reason


def test_topic_and_status_branches() -> None:
    bad_device = parse("trailcam/cam b/events", b"{}")
    assert isinstance(bad_device, Rejected) and bad_device.device is None
    assert bad_device.reason == "device id 'cam b' in the topic is not a valid device id"
    assert parse("trailcam/" + "d" * 64 + "/status", b"online") == StatusRow("d" * 64, "online")
    long_id = parse("trailcam/" + "d" * 65 + "/status", b"online")
    assert isinstance(long_id, Rejected) and "in the topic is not a valid device id" in long_id.reason
    status = parse(f"trailcam/{DEVICE}/status", b"sleeping")
    assert isinstance(status, Rejected) and status.reason == "status 'sleeping' is not one of online, offline, stopped"
    assert parse(f"trailcam/{DEVICE}/status", b" stopped\n") == StatusRow(DEVICE, "stopped")


def test_a_rejected_payload_is_kept_bounded_with_its_size_and_digest() -> None:
    raw = b'{"schema": 1, "x": "' + "\u00e9".encode() * 5_000_000 + b"\x00" + b'"'  # 10 MB, NUL inside
    parsed = parse(f"trailcam/{DEVICE}/events", raw)
    assert isinstance(parsed, Rejected) and parsed.size == len(raw) > 10_000_000
    import hashlib

    assert parsed.sha256 == hashlib.sha256(raw).hexdigest()
    assert len(parsed.payload.encode()) <= m.KEEP_PAYLOAD_BYTES and parsed.payload.startswith('{"schema": 1')
    weird = m.rejected("dev", "t\x00" + "x" * 1000, b"\x00\xff", "r" * 1000)
    assert "\x00" not in weird.topic + weird.payload and len(weird.topic) == m.MAX_KEPT_TOPIC
    assert len(weird.reason) == m.MAX_REASON and weird.payload == "\ufffd\ufffd"
