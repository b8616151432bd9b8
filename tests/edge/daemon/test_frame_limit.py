"""The daemon's own frame-size limit, `MAX_FRAME_BYTES` (edge/daemon/pipeline.py), on a real daemon.

A misplaced video or disk image under an image name must not be read into memory: a sparse
300 MB `.jpg` (made with `truncate`, so it costs no disk) dropped into a watched folder is
recorded as an error that says why, without being read whole (the daemon's peak resident memory
stays below the file's size), and the next frame is counted as usual.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path

from edge.daemon.pipeline import MAX_FRAME_BYTES
from tests.edge.conftest import DaemonProcess, count_rows, jpeg_bytes, wait_for, write_toml

BIG = 300 * 1024 * 1024  # above MAX_FRAME_BYTES (256 MiB)


def _peak_rss_bytes(pid: int) -> int:
    """The process's peak resident set (VmHWM in /proc/<pid>/status), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM in /proc/{pid}/status")


def test_a_sparse_300_mb_jpg_is_refused_unread_and_the_next_frame_is_counted(tmp_path: Path, aiy_model, bird_photo,
                                                                               cli_env) -> None:
    camera, db = tmp_path / "cam", tmp_path / "t.db"
    camera.mkdir()
    config = write_toml(tmp_path / "edge.toml", camera, aiy_model, db)
    daemon = DaemonProcess(["--config", str(config)], cli_env, tmp_path / "run.log")
    try:
        wait_for(lambda: "backlog of" in daemon.output(), 60, what="daemon started")
        staged = tmp_path / "staging" / "VIDEO0001.jpg"  # made beside the folder, then moved in whole
        staged.parent.mkdir()
        subprocess.run(["truncate", "-s", str(BIG), str(staged)], check=True)
        assert os.stat(staged).st_blocks == 0  # sparse: no disk used
        os.rename(staged, camera / "VIDEO0001.jpg")
        wait_for(lambda: count_rows(db, "SELECT COUNT(*) FROM frames WHERE status = 'error'") == 1, 60,
                 what="the big file recorded")
        (camera / "IMG_0002.jpg").write_bytes(jpeg_bytes(bird_photo("NORTHERN CARDINAL", 3)))
        wait_for(lambda: count_rows(db, "SELECT COUNT(*) FROM frames WHERE status = 'ok'") == 1, 60,
                 what="the next frame counted")
        peak = _peak_rss_bytes(daemon.proc.pid)
        daemon.signal(15)
        assert daemon.wait(60) == 0, daemon.output()
    finally:
        daemon.kill()

    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT path, status, error, size, species FROM frames ORDER BY id").fetchall()
    conn.close()
    big, good = rows
    # Never read whole: had the daemon read the file, its peak memory would hold 300 MB of it.
    assert peak < BIG, f"the daemon's peak resident memory {peak / 2**20:.0f} MiB reached the file's size"
    assert big[:2] == (str(camera / "VIDEO0001.jpg"), "error")
    assert big[2] == f"file too large for a frame ({BIG} bytes > {MAX_FRAME_BYTES})"
    assert big[3] == BIG
    assert good[:2] == (str(camera / "IMG_0002.jpg"), "ok") and good[4] is not None
    assert (camera / "VIDEO0001.jpg").exists()  # evidence stays where it was
