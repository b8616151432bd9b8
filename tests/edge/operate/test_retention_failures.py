"""Retention where field devices break it (issue 22), on real second file systems (tmpfs mounts).

- archiving to another file system: os.rename fails with EXDEV and the frame is copied, synced,
  renamed into place and only then removed from the camera folder;
- a full disk during that copy: DiskFullError, the original stays, no partial copy is left;
- housekeeping that fails (the archive's file system turned read-only under the daemon): logged,
  frames still processed, and retried at the next interval until it works again.

The tmpfs mounts need root; `make test` sets TRAILCAM_REQUIRE_TMPFS, so there they never skip.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from edge.config.retention import RetentionConfig
from edge.operate.retention import Retention
from edge.store.disk import DiskFullError
from edge.store.writer import CommittedFrame
from tests.edge.conftest import wait_for
from tests.edge.daemon.test_daemon_field import drop, ok_frames, photos, start, write_config  # noqa: F401 - photos: fixture
from tests.edge.operate.conftest import add_frame


def _committed(db, frame_id: int) -> CommittedFrame:
    row = db.execute("SELECT id, path, status, captured_at, species, confidence, processed_at "
                     "FROM frames WHERE id = ?", (frame_id,)).fetchone()
    return CommittedFrame(*row)


def _frame(path: Path, size: int) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = os.urandom(size)
    path.write_bytes(data)
    os.utime(path, (1_700_000_000, 1_700_000_000))
    return data


def test_archiving_to_another_file_system_copies_then_removes_the_original(tmp_path: Path, field_db, tmpfs) -> None:
    camera = tmp_path / "camera"
    archive = tmpfs(tmp_path / "archive", "4m")
    data = _frame(camera / "IMG_0001.JPG", 300_000)
    assert os.stat(camera).st_dev != os.stat(archive).st_dev  # really two file systems: rename gives EXDEV
    fid = add_frame(field_db, camera / "IMG_0001.JPG", species="robin", captured_at="2026-05-01T10:00:00Z")
    retention = Retention(RetentionConfig(after_processing="archive", archive_dir=archive), field_db)
    target = Path(retention.apply(_committed(field_db, fid)))
    assert target == archive / "2026-05-01" / "robin" / "IMG_0001.JPG"
    assert target.read_bytes() == data and target.stat().st_mtime == 1_700_000_000  # copystat kept its time
    assert not (camera / "IMG_0001.JPG").exists()
    assert [p.name for p in target.parent.iterdir()] == ["IMG_0001.JPG"]  # no .partial left
    assert retention.flush() == 1
    assert field_db.execute("SELECT stored_path FROM frames WHERE id = ?", (fid,)).fetchone() == (str(target),)


def test_a_full_disk_during_the_copy_keeps_the_original_and_leaves_no_partial_copy(tmp_path: Path, field_db,
                                                                                   tmpfs) -> None:
    camera = tmp_path / "camera"
    archive = tmpfs(tmp_path / "archive", "256k")  # the frame is bigger than the whole file system
    data = _frame(camera / "IMG_0002.JPG", 1_000_000)
    fid = add_frame(field_db, camera / "IMG_0002.JPG", species="robin", captured_at="2026-05-01T10:00:00Z")
    retention = Retention(RetentionConfig(after_processing="archive", archive_dir=archive), field_db)
    with pytest.raises(DiskFullError) as raised:
        retention.apply(_committed(field_db, fid))
    assert raised.value.__cause__ is not None and raised.value.__cause__.errno == 28  # ENOSPC from the copy
    assert (camera / "IMG_0002.JPG").read_bytes() == data  # the original stays where it was
    assert [p for p in archive.rglob("*") if p.is_file()] == []  # the partial copy is removed
    assert retention.flush() == 0  # nothing recorded as archived
    assert field_db.execute("SELECT stored_path FROM frames WHERE id = ?", (fid,)).fetchone() == (None,)


def _remount(path: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(path)], check=True)


def test_housekeeping_that_fails_is_logged_frames_go_on_and_it_is_retried(tmp_path: Path, tmpfs, photos,
                                                                          aiy_model_dir, cli_env) -> None:
    camera, db = tmp_path / "cam", tmp_path / "state" / "trailcam.db"
    camera.mkdir()
    archive = tmpfs(tmp_path / "archive", "4m")
    old = archive / "2026-01-01" / "robin" / "old.jpg"
    _frame(old, 20_000)
    _remount(archive, "ro")  # the archive's card went read-only: housekeeping cannot remove anything
    config = write_config(tmp_path / "edge.toml", camera, db, aiy_model_dir / "model.tflite",
                          retention={"after_processing": "archive", "archive_dir": archive, "min_free_mb": 0,
                                     "archive_max_gb": 0.00001, "exemplars_per_species": 0,
                                     "housekeeping_interval_s": 0.5})
    daemon = start(tmp_path, config, cli_env, None)
    try:
        wait_for(lambda: "housekeeping failed" in daemon.output(), 60, what="housekeeping failure logged")
        assert "Read-only file system" in daemon.output()
        drop(camera, "a0.jpg", photos[0])
        wait_for(lambda: ok_frames(db) == 1, 60, what="a frame counted while housekeeping fails")
        wait_for(lambda: "post-processing (archive) failed" in daemon.output(), 60, what="archive failure logged")
        assert (camera / "a0.jpg").exists()  # it could not be archived: it stays
        failures = daemon.output().count("housekeeping failed")
        wait_for(lambda: daemon.output().count("housekeeping failed") > failures, 60, what="retried at the interval")
        _remount(archive, "rw")
        wait_for(lambda: not old.exists(), 60, what="housekeeping succeeding once the disk is writable")
        assert daemon.proc.poll() is None, daemon.output()
        daemon.signal(15)
        assert daemon.wait(60) == 0, daemon.output()
    finally:
        daemon.kill()
    assert "Traceback" not in daemon.output()
