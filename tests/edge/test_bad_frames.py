"""Frames that cannot be classified are recorded with their error, and the daemon goes on."""

from __future__ import annotations

import io
import sqlite3
import struct

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
