"""Issue 22, items 1 and 2: one message must never stop a fleet. A generated corpus of hostile
messages (tests/collector/hostile.py, Hypothesis) against the sink on both engines, then through a
real mosquitto into the collector as a real process with a live stream behind it that must
arrive whole; `collector import` of such lines. Every hostile message ends stored or rejected
once (its size and digest, its payload truncated), acknowledged, and never comes back."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from collector.messages import KEEP_PAYLOAD_BYTES, EventRow, Rejected, parse
from collector.sink import Message, Sink
from fleet.db import engine_of
from tests.collector.helpers import (
    REPO,
    CollectorProcess,
    Device,
    assert_row_matches,
    count,
    event_history,
    events_by_uid,
    final_event,
    query,
)
from tests.collector.hostile import hostile_message, issue_reproductions
from tests.collector.test_messages import REJECTED, payload_of
from tests.fixtures.waiting import wait_for


def branch_cases(device: str = "hx") -> list[tuple[str, bytes]]:
    return [(kind, payload_of(kind, change, device)) for kind, change, _ in REJECTED.values()]

_numbers = itertools.count()
_FIXTURES_ACROSS_EXAMPLES = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large,
                             HealthCheck.large_base_example]


def _expected_rejects(device: str, corpus: list[tuple[str, bytes]]) -> dict[tuple[str, str], int]:
    """(topic, sha256) → payload size of each distinct message `parse` rejects."""
    out = {}
    for relative, raw in corpus:
        topic = f"trailcam/{device}/{relative}"
        if raw and isinstance(parse(topic, raw), Rejected):
            out[(topic, hashlib.sha256(raw).hexdigest())] = len(raw)
    return out


def _stored_rejects(db: str, device: str) -> list[tuple[str, str, int, int]]:
    size = "octet_length(payload)" if engine_of(db) == "postgresql" else "length(CAST(payload AS BLOB))"
    return query(db, f"SELECT topic, payload_sha256, payload_size, {size} FROM rejected_messages WHERE topic LIKE ?",
                 (f"trailcam/{device}/%",))


@settings(max_examples=40, deadline=None, database=None, derandomize=True,
          suppress_health_check=_FIXTURES_ACROSS_EXAMPLES)
@given(data=st.data())
def test_hostile_batches_never_stop_the_sink(central_db: str, data: st.DataObject) -> None:
    n = next(_numbers)
    bad_device, live_device = f"h{n}", f"v{n}"
    corpus = data.draw(st.lists(hostile_message(bad_device), min_size=1, max_size=6), label="corpus")
    live = event_history(live_device, n, frames=3)
    batch = [Message(f"trailcam/{bad_device}/{t}", parse(f"trailcam/{bad_device}/{t}", raw), raw) for t, raw in corpus]
    batch += [Message(f"trailcam/{live_device}/{t}", parse(f"trailcam/{live_device}/{t}", p.encode()), p.encode())
              for t, p in live]
    data.draw(st.randoms(use_true_random=False), label="order").shuffle(batch)
    sink = Sink(central_db)
    try:
        for _ in range(2):  # a redelivered batch adds nothing
            sink.write(batch)
    finally:
        sink.close()
    assert_row_matches(events_by_uid(central_db)[f"{live_device}-ev-{n:05d}"], final_event(live_device, n))
    expected = _expected_rejects(bad_device, corpus)
    stored = _stored_rejects(central_db, bad_device)
    # Exactly what validation rejects, once each: the database refused nothing validation let through.
    assert sorted((t, h) for t, h, _, _ in stored) == sorted(expected)
    assert all(size == expected[(t, h)] and kept <= KEEP_PAYLOAD_BYTES for t, h, size, kept in stored)
    accepted = {row.uid for m in batch if isinstance(row := m.parsed, EventRow) and row.device == bad_device}
    assert accepted <= set(events_by_uid(central_db))


def _rss_peak_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def _interleaved(device: str, events: int) -> list[tuple[str, str]]:
    histories = [event_history(device, n, frames=2 + n % 3) for n in range(events)]
    return [m for step in itertools.zip_longest(*histories) for m in step if m is not None]


@pytest.mark.broker
@settings(max_examples=1, deadline=None, database=None, derandomize=True, phases=[Phase.generate],
          suppress_health_check=_FIXTURES_ACROSS_EXAMPLES)  # one corpus; no shrinking (each try is a whole run)
@given(drawn=st.lists(hostile_message("hx"), min_size=50, max_size=50, unique_by=lambda m: m[1]))
def test_hostile_corpus_through_the_broker_and_the_collector(broker_factory, central_db: str, tmp_path: Path,
                                                             drawn: list[tuple[str, bytes]]) -> None:
    """The corpus: the issue's reproductions, one message per rejection branch of
    collector/messages.py (tests/collector/test_messages.py's table), and 50 distinct drawn ones."""
    corpus = issue_reproductions("hx") + branch_cases() + drawn
    broker = broker_factory()
    collector = CollectorProcess(broker, central_db, tmp_path).start()
    live, hostile = Device(broker, "live"), Device(broker, "hx", will=False)
    stream = _interleaved("live", 40)
    live_chunks = [stream[i:i + 10] for i in range(0, len(stream), 10)]
    hostile_chunks = [corpus[i:i + 5] for i in range(0, len(corpus), 5)]
    for good, bad in itertools.zip_longest(live_chunks, hostile_chunks, fillvalue=[]):
        live.publish_many(good)
        hostile.publish_many(bad, retain_counts=False)
    expected = _expected_rejects("hx", corpus)
    wait_for(lambda: count(central_db, "events", "device = 'live' AND change = 'end'") == 40
             and count(central_db, "rejected_messages") == len(expected), 90, what="the live stream and every reject")
    assert collector.proc.poll() is None, collector.log_text()[-3000:]
    peak = _rss_peak_kib(collector.proc.pid)
    assert collector.stop() == 0
    # Restarted: every message was acknowledged, so nothing comes back; the stream goes on.
    collector = CollectorProcess(broker, central_db, tmp_path).start()
    live.publish_many(event_history("live", 40))
    wait_for(lambda: count(central_db, "events", "device = 'live' AND change = 'end'") == 41, 30, what="the next event")
    assert collector.stop() == 0
    rows = events_by_uid(central_db)
    for n in range(40):
        assert_row_matches(rows[f"live-ev-{n:05d}"], final_event("live", n, frames=2 + n % 3))
    stored = _stored_rejects(central_db, "hx")
    assert sorted((t, h) for t, h, _, _ in stored) == sorted(expected)
    kept = sum(k for *_, k in stored)
    assert kept <= len(stored) * KEEP_PAYLOAD_BYTES
    assert peak < 200 * 1024, f"collector peak RSS {peak} KiB"  # the 10 MB message is read once and dropped
    print(f"\n[{engine_of(central_db)}] {len(corpus)} hostile messages ({sum(len(r) for _, r in corpus)} bytes): "
          f"{len(stored)} rejected rows, {kept} payload bytes kept; collector peak RSS {peak // 1024} MiB")
    for device in (live, hostile):
        device.close()


def test_collector_import_of_hostile_lines(central_db: str, tmp_path: Path) -> None:
    """`collector import` of a file with the issue's lines among 20 good events exits 0 and imports the 20."""
    lines = [json.dumps({"topic": f"trailcam/hx/{t}", "payload": json.loads(raw)}) for t, raw in issue_reproductions("hx")]
    lines += ['{"topic": "trailcam/hx/events", "payload": ' + "9" * 5000 + "}", "[" * 50_000 + "]" * 50_000,
              '{"topic": "trailcam/hx/events", "payload": "\\ud800"}']
    for n in range(20):
        lines += [json.dumps({"topic": f"trailcam/cam-i/{t}", "payload": json.loads(p)}) for t, p in event_history("cam-i", n)]
    path = tmp_path / "export.jsonl"
    path.write_text("\n".join(lines[:5] + lines[10:] + lines[5:10]) + "\n")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    for _ in range(2):  # twice: the same rows, the same rejects
        done = subprocess.run([sys.executable, "-m", "collector", "import", str(path), "--db", central_db],
                              env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "80 event messages" in done.stdout and "10 rejected" in done.stdout, done.stdout
    assert count(central_db, "events", "device = 'cam-i' AND change = 'end'") == 20
    assert count(central_db, "events", "device = 'hx'") == 0
    assert count(central_db, "rejected_messages") == 10
