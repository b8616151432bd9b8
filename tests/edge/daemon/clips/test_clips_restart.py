"""The daemon's guarantees with a long clip: the watchdog is fed while it decodes, and a SIGKILL
in the middle of it loses no committed count and counts nothing twice at the restart (which
resumes the clip where it stopped), compared with a clean run of the same clip."""

from __future__ import annotations

import shutil
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.clip_scenes import Move, Segment, moving_frames
from tests.edge.conftest import DaemonProcess, wait_for
from tests.edge.daemon.clips.conftest import FPS, SIZE, edge, rows, set_mtime, write_clip, write_config
from tests.edge.daemon.test_daemon_field import WATCHDOG_USEC, NotifyListener

SAMPLES = 100  # 20 s at [clips] sample_rate 5


def test_sigkill_mid_clip_loses_nothing_committed_and_the_restart_counts_nothing_twice(
        tmp_path: Path, birds25_dir: Path, backdrop, photo, aiy_model_dir: Path, ssd_detector_dir: Path,
        cli_env: dict[str, str]) -> None:
    chickadee, goldfinch = photo("BLACK-CAPPED CHICKADEE", 2), photo("AMERICAN GOLDFINCH", 4)
    plan = [Segment(10.0, [Move(chickadee, (80, 100), (700, 140))]),
            Segment(10.0, [Move(chickadee, (700, 140), (760, 120)), Move(goldfinch, (100, 380), (300, 360))])]
    pictures = [p for p, _ in moving_frames(birds25_dir, backdrop, plan, SIZE, FPS)]
    source = write_clip(tmp_path / "LONG.MP4", pictures, FPS, gop=10,
                        metadata={"creation_time": "2026-05-01T09:00:00.000000Z"})
    extra = "[clips]\nsample_rate = 5.0\n"

    # A clean run of the clip: what the interrupted one must end up with.
    clean_camera = tmp_path / "clean"
    clean_camera.mkdir()
    set_mtime(shutil.copy2(source, clean_camera / "LONG.MP4"), datetime(2026, 5, 1, 9, 1, tzinfo=UTC))
    clean_db = tmp_path / "clean-state" / "edge.db"
    clean = edge(["run", "--once", "--config",
                  str(write_config(tmp_path / "clean.toml", clean_camera, clean_db, aiy_model_dir, ssd_detector_dir,
                                   extra))], cli_env)
    assert clean.returncode == 0, clean.stderr
    expected = rows(clean_db, "SELECT species, individuals, frames FROM event_species ORDER BY species")
    assert [species for species, _, _ in expected] == ["American Goldfinch", "Black-capped Chickadee"]

    camera = tmp_path / "feeder"
    camera.mkdir()
    clip = Path(shutil.copy2(source, camera / "LONG.MP4"))
    set_mtime(clip, datetime(2026, 5, 1, 9, 1, tzinfo=UTC))
    db = tmp_path / "state" / "edge.db"
    config = write_config(tmp_path / "edge.toml", camera, db, aiy_model_dir, ssd_detector_dir, extra)
    notify = NotifyListener(tmp_path / "notify.sock")
    env = dict(cli_env, NOTIFY_SOCKET=notify.path, WATCHDOG_USEC=str(WATCHDOG_USEC))
    daemon = DaemonProcess(["--config", str(config)], env, tmp_path / "daemon.log")
    try:
        def committed() -> int:
            try:
                return rows(db, "SELECT COUNT(*) FROM frames WHERE status = 'ok'")[0][0]
            except sqlite3.OperationalError:  # not created yet
                return 0

        wait_for(lambda: committed() >= 5, 120, 0.02, what="the clip's first sampled frames committed")
        clip_began = time.monotonic()
        wait_for(lambda: committed() >= 40, 120, 0.02, what="40 sampled frames committed")
        daemon.kill()  # SIGKILL, in the middle of the clip
        pings = [t for t, _ in notify.with_key("WATCHDOG") if t >= clip_began]
    finally:
        daemon.kill()
        notify.close()
    # The watchdog was fed while the clip decoded: the loop does not turn between a clip's frames,
    # so every ping after the clip began came from the clip's own progress callback. (How far
    # apart they came is left to the machine's load: no timing is asserted.)
    assert len(pings) >= 3, pings
    before = rows(db, "SELECT id, clip_offset_s, species FROM frames ORDER BY id")
    assert rows(db, "SELECT state FROM clips") == [("decoding",)] and SAMPLES > len(before) >= 40

    # The restart resumes the clip: the frames committed before stay as they were, none twice.
    restart = edge(["run", "--once", "--config", str(config)], cli_env)
    assert restart.returncode == 0, restart.stderr
    assert "resuming" in restart.stderr
    after = rows(db, "SELECT id, clip_offset_s, species FROM frames ORDER BY id")
    assert after[:len(before)] == before
    assert len(after) == SAMPLES and len({offset for _, offset, _ in after}) == SAMPLES
    assert rows(db, "SELECT state, frames_sampled FROM clips") == [("done", SAMPLES)]
    assert rows(db, "SELECT species, individuals, frames FROM event_species ORDER BY species") == expected
