"""Frames that cannot be classified are recorded with their error, and the daemon goes on."""

from __future__ import annotations

import io
import sqlite3
import struct
from pathlib import Path

from PIL import Image

from tests.edge.conftest import count_rows, jpeg_bytes, wait_for


def _bomb(width: int, height: int) -> bytes:
    """A tiny valid JPEG whose SOF header claims a huge size (a decompression bomb)."""
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (90, 120, 60)).save(buffer, "JPEG")
    data = bytearray(buffer.getvalue())
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def test_bad_frames_recorded_as_errors_and_daemon_goes_on(tmp_path, make_config, thread_daemon, bird_photo) -> None:
    camera = tmp_path / "cam"
    config = make_config([{"name": "cam", "path": str(camera)}])
    db = config.storage.database
    runner = thread_daemon(config)
    good = jpeg_bytes(bird_photo("NORTHERN CARDINAL", 2))
    bad = {
        "zero.jpg": b"",
        "truncated.jpg": good[: len(good) * 2 // 3],
        "garbage.jpg": bytes(range(256)) * 40,
        "text.jpg": b"this is not an image, just a misnamed text file\n",
        "bomb.jpg": _bomb(40000, 40000),
        "big.jpg": _bomb(12000, 9000),
        "zero-too.png": b"",
    }
    for name, blob in bad.items():
        (camera / name).write_bytes(blob)
    wait_for(lambda: count_rows(db, "SELECT count(*) FROM frames WHERE status = 'error'") >= len(bad), 60,
             what="every bad frame recorded")
    (camera / "good.jpg").write_bytes(good)
    wait_for(lambda: count_rows(db, "SELECT count(*) FROM frames WHERE status = 'ok'") >= 1, 60, what="later good frame")
    assert runner.thread.is_alive()
    runner.stop()

    conn = sqlite3.connect(db)
    errors = {row[0].rsplit("/", 1)[-1]: row[1] for row in conn.execute("SELECT path, error FROM frames WHERE status = 'error'")}
    ok = conn.execute("SELECT path, species FROM frames WHERE status = 'ok'").fetchall()
    conn.close()
    assert set(errors) == set(bad)
    assert errors["zero.jpg"] == errors["zero-too.png"] == "empty file (0 bytes)"
    assert "truncated" in errors["truncated.jpg"]
    assert errors["garbage.jpg"].startswith("not an image")
    assert errors["text.jpg"].startswith("not an image")
    assert errors["bomb.jpg"].startswith("decompression bomb refused")
    assert errors["big.jpg"].startswith("decompression bomb refused") and "108 MP" in errors["big.jpg"]
    assert len(ok) == 1 and ok[0][0].endswith("good.jpg") and ok[0][1] == "Cardinalis cardinalis"
    # Errors neither count nor open events.
    assert count_rows(db, "SELECT SUM(frames) FROM daily_tallies") == 1


def test_a_frame_that_crashes_the_interpreter_is_recorded_not_retried_forever(tmp_path, make_config, bird_photo) -> None:
    """Fault injection (a runtime that throws on one frame cannot be produced on demand)."""
    from edge.daemon.wiring import build

    camera = tmp_path / "cam"
    config = make_config([{"name": "cam", "path": str(camera)}])
    (camera / "a_poison.jpg").write_bytes(jpeg_bytes(bird_photo("NORTHERN CARDINAL", 1), comment="poison"))
    (camera / "b_fine.jpg").write_bytes(jpeg_bytes(bird_photo("NORTHERN CARDINAL", 2)))
    daemon = build(config, once=True, field=False)
    daemon.start()
    original = daemon.processor.classifier.classify

    def classify(rgb, top_k):
        if classify.calls == 0:
            classify.calls += 1
            raise RuntimeError("Invoke failed: node 42 crashed")
        return original(rgb, top_k)

    classify.calls = 0
    daemon.processor.classifier.classify = classify
    daemon.loop()
    daemon.stop()
    conn = sqlite3.connect(config.storage.database)
    rows = {Path(p).name: v for p, v in conn.execute("SELECT path, COALESCE(error, species) FROM frames")}
    conn.close()
    assert rows == {"a_poison.jpg": "processing failed: RuntimeError: Invoke failed: node 42 crashed",
                    "b_fine.jpg": "Cardinalis cardinalis"}
