"""With MQTT enabled, every frame's event change and today's tallies are queued in the outbox in
the frame's own transaction, and counting goes on with no broker at all."""

from __future__ import annotations

import json
import socket
import sqlite3
import time

from tests.edge.conftest import count_rows, jpeg_bytes, wait_for


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_frames_counted_and_queued_without_a_broker(tmp_path, make_config, thread_daemon, bird_photo) -> None:
    camera = tmp_path / "cam"
    config = make_config([{"name": "cam", "path": str(camera)}],
                         mqtt={"enabled": True, "host": "127.0.0.1", "port": _closed_port()})
    db = config.storage.database
    runner = thread_daemon(config)
    for index in range(4):  # no EXIF: mtime = now, so the frames count for today
        (camera / f"f{index}.jpg").write_bytes(jpeg_bytes(bird_photo("NORTHERN CARDINAL", index + 1), comment=str(time.time_ns())))
    wait_for(lambda: count_rows(db, "SELECT count(*) FROM frames WHERE status = 'ok'") >= 4, 60, what="frames counted")
    runner.stop()

    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT topic, payload, retain, kind FROM outbox ORDER BY id").fetchall()
    conn.close()
    events = [json.loads(p) for t, p, r, k in rows if k == "event"]
    assert [(e["change"], e["frame_count"]) for e in events] == [("new", 1), ("update", 2), ("update", 3), ("update", 4)]
    assert {e["species"] for e in events} == {"Cardinalis cardinalis"} and events[0]["device"] == "test"
    # Each frame queued today's snapshot (the publisher may add one of its own at start).
    summaries = [json.loads(p) for t, p, r, k in rows if t == "counts"]
    assert [s["total"] for s in summaries][-4:] == [{"events": 1, "frames": n, "individuals": 1} for n in (1, 2, 3, 4)]
    assert all(r == 1 for t, p, r, k in rows if k == "counts")
    assert [t for t, p, r, k in rows if t.startswith("counts/")] == ["counts/cardinalis_cardinalis"] * 4
