"""A generated corpus of hostile device messages (Hypothesis strategies), for the collector's
"one message must never stop a fleet" tests (issue 22): valid payloads with one field made
hostile (huge, NUL, lone surrogates, out-of-range times and numbers, wrong types, deep
nesting), corrupted bytes, another device's name, and the issue's own reproductions."""

from __future__ import annotations

import json
import random
import string
from typing import Any

from hypothesis import strategies as st

from tests.collector.helpers import START, day_counts, event_history, info_payload


def incompressible(n: int, seed: int = 0) -> str:
    """Text PostgreSQL cannot compress under its index row limit (a run of one letter it can)."""
    rng = random.Random(seed)
    return "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(n))


def valid(kind: str, device: str, n: int = 1) -> dict[str, Any]:
    if kind == "events":
        return json.loads(event_history(device, n, frames=2)[-1][1])
    if kind == "counts":
        pairs = day_counts(device, {"Blue Jay": {"events": n, "frames": 2 * n}}, START)
        return json.loads(next(p for t, p in pairs if t.startswith("counts/")))
    return json.loads(info_payload(device))


TOPIC = {"events": "events", "counts": "counts/blue_jay", "info": "info"}

_times = st.builds(
    lambda y, mo, d, h, off: f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:00:00{off}",
    st.integers(1, 9999), st.integers(1, 12), st.integers(1, 28), st.integers(0, 23),
    st.sampled_from(["Z", "+01:00", "-01:00", "+23:59", "-23:59", ""]))
_strings = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", "\x00", "a\x00b", "\ud800", "x\udfffy", "\n", "\x7f", "Blue Jay\u0000"]),
    st.sampled_from([201, 513, 3000, 70_000, 300_000]).map(lambda n: incompressible(n, n)),
)
_json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), _strings, _times),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=6)


@st.composite
def hostile_message(draw: st.DrawFn, device: str) -> tuple[str, bytes]:
    """(topic relative to `trailcam/<device>/`, payload bytes): one hostile message."""
    how = draw(st.sampled_from(["field", "field", "field", "drop", "bytes", "nested", "device", "status"]))
    kind = draw(st.sampled_from(["events", "counts", "info"]))
    data = valid(kind, device, draw(st.integers(1, 10_000)))
    if how == "bytes":
        return TOPIC[kind], draw(st.binary(max_size=200))
    if how == "nested":
        depth = draw(st.sampled_from([10, 1000, 100_000]))
        return TOPIC[kind], b"[" * depth + b"]" * depth
    if how == "status":
        return "status", draw(st.one_of(st.binary(max_size=50), st.sampled_from([b"online\x00", b"offline" * 1000])))
    if how == "device":
        data["device"] = draw(st.one_of(st.just("cam-other"), _json_values))
    elif how == "drop":
        data.pop(draw(st.sampled_from(sorted(data))))
    else:
        target = data
        if kind == "events" and draw(st.booleans()):
            target = {"species": "Blue Jay", "individuals": 1, "frames": 2}
            data["species_counts"] = [target]
        key = draw(st.sampled_from(sorted(target)))
        target[key] = draw(st.one_of(_json_values, _strings, _times))
    return TOPIC[kind], json.dumps(data, allow_nan=True).encode("utf-8", "surrogatepass")


def issue_reproductions(device: str) -> list[tuple[str, bytes]]:
    """The messages issue 22 reported, for `device`: times that leave the range once in UTC,
    a species past PostgreSQL's index row, a 10 MB species, a day not in the calendar."""
    def change(kind: str, n: int, **fields: Any) -> tuple[str, bytes]:
        return TOPIC[kind], json.dumps(dict(valid(kind, device, n), **fields)).encode()
    return [
        change("events", 9001, start="0001-01-01T00:00:00+01:00"),
        change("events", 9002, end="9999-12-31T23:59:59-01:00"),
        change("counts", 9003, updated_at="0001-01-01T00:00:00+01:00"),
        change("info", 9004, published_at="0001-01-01T00:30:00+01:00"),
        change("events", 9005, species=incompressible(3500)),
        change("counts", 9006, species=incompressible(10 * 1024 * 1024, 1)),
        change("counts", 9007, day="2026-13-45"),
    ]
