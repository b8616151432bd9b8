"""Retention on a temporary tree with a real SQLite file made by edge.store.Store (its migrations)."""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from edge.config.retention import RetentionConfig
from edge.operate.retention import DiskGuard, Retention, species_folder
from edge.store.disk import free_bytes, is_disk_full_error
from edge.store.writer import CommittedFrame
from tests.edge.operate.conftest import add_event, add_frame, add_tally


def write(path, size=1000, mtime=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(size))
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def committed(db, frame_id):
    row = db.execute("SELECT id, path, status, captured_at, species, confidence, processed_at "
                     "FROM frames WHERE id = ?", (frame_id,)).fetchone()
    return CommittedFrame(*row)


def stored_path(db, frame_id):
    return db.execute("SELECT stored_path FROM frames WHERE id = ?", (frame_id,)).fetchone()[0]


def test_archive_moves_into_day_in_station_time_zone_then_species(tmp_path, field_db):
    camera, archive = tmp_path / "camera", tmp_path / "archive"
    frame = write(camera / "IMG_0001.JPG")
    # 23:30 UTC on the 28th is already the 29th in Berlin (UTC+1 in November)
    fid = add_frame(field_db, frame, species="Erithacus rubecula/robin", captured_at="2026-11-28T23:30:00Z")
    retention = Retention(RetentionConfig(after_processing="archive", archive_dir=archive), field_db,
                          ZoneInfo("Europe/Berlin"))
    target = retention.apply(committed(field_db, fid))
    expected = archive / "2026-11-29" / "Erithacus rubecula_robin" / "IMG_0001.JPG"
    assert target == str(expected) and expected.is_file() and not frame.exists()
    assert stored_path(field_db, fid) is None  # recorded in batches (one commit, not one per frame)
    assert retention.flush() == 1 and retention.flush() == 0
    assert stored_path(field_db, fid) == str(expected)


def test_archive_name_clash_keeps_both_frames(tmp_path, field_db):
    archive = tmp_path / "archive"
    retention = Retention(RetentionConfig(after_processing="archive", archive_dir=archive), field_db)
    first = add_frame(field_db, write(tmp_path / "a" / "IMG.JPG"))
    second = add_frame(field_db, write(tmp_path / "b" / "IMG.JPG"))
    one, two = retention.apply(committed(field_db, first)), retention.apply(committed(field_db, second))
    assert one != two and os.path.isfile(one) and os.path.isfile(two)
    assert two.endswith(f"IMG-{second}.JPG")


def test_error_frames_are_archived_apart_and_never_deleted(tmp_path, field_db):
    broken = write(tmp_path / "camera" / "broken.jpg", 0)
    fid = add_frame(field_db, broken, status="error", error="cannot identify image file")
    delete = Retention(RetentionConfig(after_processing="delete"), field_db)
    assert delete.apply(committed(field_db, fid)) == str(broken) and broken.exists()
    archive = Retention(RetentionConfig(after_processing="archive", archive_dir=tmp_path / "arch"), field_db)
    target = archive.apply(committed(field_db, fid))
    assert "/_errors/" in target and os.path.exists(target)


def test_delete_and_keep(tmp_path, field_db):
    gone = write(tmp_path / "camera" / "1.jpg")
    kept = write(tmp_path / "camera" / "2.jpg")
    fid_gone, fid_kept = add_frame(field_db, gone), add_frame(field_db, kept)
    Retention(RetentionConfig(after_processing="delete"), field_db).apply(committed(field_db, fid_gone))
    Retention(RetentionConfig(after_processing="keep"), field_db).apply(committed(field_db, fid_kept))
    assert not gone.exists() and kept.exists()
    assert stored_path(field_db, fid_gone) is None


def test_archive_limit_removes_oldest_keeps_exemplars_and_never_touches_the_camera_folder(tmp_path, field_db):
    camera, archive = tmp_path / "camera", tmp_path / "archive"
    retention = Retention(RetentionConfig(after_processing="archive", archive_dir=archive,
                                          archive_max_gb=10_000 / 1e9, exemplars_per_species=1), field_db)
    ids = {}
    base = datetime(2026, 11, 1, 12, tzinfo=UTC)
    for day in range(10):  # 10 frames of 2000 bytes = 20 kB, limit 10 kB
        species = "robin" if day % 2 else "wren"
        confidence = 0.99 if day in (0, 1) else 0.5  # the two oldest are each species' best
        captured = (base + timedelta(days=day)).strftime("%Y-%m-%dT%H:%M:%SZ")
        frame = write(camera / f"f{day}.jpg", 2000)
        ids[day] = add_frame(field_db, frame, species=species, confidence=confidence, captured_at=captured)
        retention.apply(committed(field_db, ids[day]))
    retention.flush()
    unprocessed = [write(camera / f"new{i}.jpg", 50_000) for i in range(3)]  # not in the DB
    removed = retention.enforce_archive_limit()
    assert retention.archive_usage() <= 10_000
    remaining = {p.name for _, _, p, _ in retention.archive_files()}
    assert {"f0.jpg", "f1.jpg"} <= remaining  # exemplars survive although oldest
    assert {p.name for p in removed} == {"f2.jpg", "f3.jpg", "f4.jpg", "f5.jpg", "f6.jpg"}
    assert all(p.exists() for p in unprocessed)
    assert stored_path(field_db, ids[2]) is None and stored_path(field_db, ids[9]) is not None
    assert not (archive / "2026-11-03").exists()  # emptied day folders are removed
    assert retention.enforce_archive_limit() == []  # idempotent once under the limit


def test_archive_limit_in_percent_of_the_disk(tmp_path, field_db):
    archive = tmp_path / "archive"
    retention = Retention(RetentionConfig(after_processing="archive", archive_dir=archive,
                                          archive_max_percent=0.000001, exemplars_per_species=0), field_db)
    fid = add_frame(field_db, write(tmp_path / "c" / "x.jpg", 1_000_000))
    retention.apply(committed(field_db, fid))
    limit = retention.archive_limit_bytes()
    total = os.statvfs(tmp_path).f_blocks * os.statvfs(tmp_path).f_frsize
    assert limit == int(total * 0.000001 / 100)
    assert len(retention.enforce_archive_limit()) == (1 if limit < 1_000_000 else 0)


def test_pruning_drops_old_rows_only_when_their_file_left_the_camera_folder(tmp_path, field_db):
    now = datetime(2026, 11, 29, tzinfo=UTC)
    old = (now - timedelta(days=40)).strftime("%Y-%m-%dT%H:%M:%SZ")
    recent = (now - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    add_tally(field_db, "2026-10-20", "robin", events=3, frames=7)
    add_event(field_db, "e1", started_at=old, ended_at=old, frame_count=7)
    archived_old = add_frame(field_db, tmp_path / "camera" / "gone.jpg", captured_at=old)  # file gone
    still_there = add_frame(field_db, write(tmp_path / "camera" / "there.jpg"), captured_at=old)
    fresh = add_frame(field_db, tmp_path / "camera" / "fresh.jpg", captured_at=recent)
    retention = Retention(RetentionConfig(prune_frames_after_days=30), field_db, clock=now.timestamp)
    assert retention.prune_rows() == 1
    left = {row[0] for row in field_db.execute("SELECT id FROM frames")}
    assert left == {still_there, fresh}  # a row whose file remains would be counted again at restart
    assert field_db.execute("SELECT COUNT(*) FROM predictions WHERE frame_id = ?", (archived_old,)).fetchone()[0] == 0
    assert field_db.execute("SELECT events, frames FROM daily_tallies").fetchall() == [(3, 7)]
    assert field_db.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 1
    assert field_db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_pruning_keeps_exemplar_rows(tmp_path, field_db):
    archive = tmp_path / "archive"
    now = datetime(2026, 11, 29, tzinfo=UTC)
    old = (now - timedelta(days=40)).strftime("%Y-%m-%dT%H:%M:%SZ")
    retention = Retention(RetentionConfig(after_processing="archive", archive_dir=archive,
                                          exemplars_per_species=1, prune_frames_after_days=30),
                          field_db, clock=now.timestamp)
    best = add_frame(field_db, write(tmp_path / "c" / "best.jpg"), confidence=0.99, captured_at=old)
    other = add_frame(field_db, write(tmp_path / "c" / "other.jpg"), confidence=0.5, captured_at=old)
    for fid in (best, other):
        retention.apply(committed(field_db, fid))  # housekeeping flushes the locations first
    assert retention.housekeeping() == {"archive_removed": 0, "rows_pruned": 1, "snapshots_removed": 0}
    assert [row[0] for row in field_db.execute("SELECT id FROM frames")] == [best]


def test_species_folder_is_safe():
    assert species_folder("../../etc") == "_.._etc"  # no separator, no leading dots: stays inside
    assert species_folder(None) == "unknown" and species_folder("  ") == "unknown"
    assert species_folder("Turdus merula (Blackbird)") == "Turdus merula (Blackbird)"


def test_disk_guard_pauses_below_min_and_resumes_above_resume_only():
    mb = 1024 * 1024
    free = {"value": 500 * mb}
    guard = DiskGuard(["/x"], min_free=100 * mb, resume_free=300 * mb, free=lambda _p: free["value"])
    assert not guard.check().paused
    free["value"] = 50 * mb
    state = guard.check()
    assert state.paused and state.changed and "low disk space: 50 MB free on /x" in guard.reason
    free["value"] = 200 * mb  # above min, below resume: stay paused (no flapping)
    assert guard.check().paused
    free["value"] = 301 * mb
    state = guard.check()
    assert not state.paused and state.changed


def test_disk_guard_after_enospc_waits_for_some_room_even_without_a_minimum():
    free = {"value": 0}
    guard = DiskGuard(["/x"], min_free=0, resume_free=0, free=lambda _p: free["value"])
    assert not guard.check().paused          # no minimum: never pauses by itself
    guard.pause("write failed: database or disk is full")
    assert guard.check().paused              # 0 bytes: retrying now would fail again
    free["value"] = 2 * 1024 * 1024
    assert not guard.check().paused


def test_free_bytes_of_a_path_not_yet_created(tmp_path):
    assert free_bytes(tmp_path / "not" / "yet") == free_bytes(tmp_path) > 0


def test_sqlite_full_and_enospc_are_recognised(tmp_path):
    conn = sqlite3.connect(str(tmp_path / "tiny.db"))
    conn.execute("CREATE TABLE t(x BLOB)")
    conn.commit()
    conn.execute("PRAGMA max_page_count = 3")  # SQLite's own limit: a real SQLITE_FULL, no mock
    with pytest.raises(sqlite3.OperationalError) as info:
        with conn:
            conn.execute("INSERT INTO t VALUES (?)", (os.urandom(100_000),))
    assert is_disk_full_error(info.value)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 0
    assert is_disk_full_error(OSError(28, "No space left on device"))
    assert not is_disk_full_error(OSError(2, "No such file"))
    assert not is_disk_full_error(sqlite3.OperationalError("database is locked"))


def test_exemplars_over_the_limit_warn_once_not_every_pass(tmp_path, field_db, caplog):
    retention = Retention(RetentionConfig(after_processing="archive", archive_dir=tmp_path / "archive",
                                          archive_max_gb=1e-9, exemplars_per_species=1), field_db)
    retention.apply(committed(field_db, add_frame(field_db, write(tmp_path / "c" / "only.jpg"))))
    retention.flush()
    with caplog.at_level("DEBUG", logger="edge.operate.retention"):
        for _ in range(3):
            assert retention.enforce_archive_limit() == []
    warnings = [r for r in caplog.records if "over its limit" in r.message and r.levelname == "WARNING"]
    assert len(warnings) == 1


def test_a_copy_of_a_counted_frame_follows_the_policy(tmp_path, field_db):
    archive = tmp_path / "archive"
    retention = Retention(RetentionConfig(after_processing="archive", archive_dir=archive), field_db)
    fid = add_frame(field_db, write(tmp_path / "cam" / "a.jpg"))
    first = retention.apply(committed(field_db, fid))
    copy = write(tmp_path / "cam" / "a-again.jpg")
    assert retention.apply_duplicate(committed(field_db, fid), str(copy)) is None
    assert not copy.exists() and os.path.exists(first)  # the archive has it already (even before the flush)
    retention.flush()
    os.unlink(first)  # the size limit removed the archived copy: the new copy takes its place
    field_db.execute("UPDATE frames SET stored_path = NULL WHERE id = ?", (fid,))
    copy = write(tmp_path / "cam" / "a-third.jpg")
    second = retention.apply_duplicate(committed(field_db, fid), str(copy))
    assert second and os.path.exists(second) and not copy.exists()
    keep = Retention(RetentionConfig(after_processing="keep"), field_db)
    copy = write(tmp_path / "cam" / "kept.jpg")
    assert keep.apply_duplicate(committed(field_db, fid), str(copy)) is None and copy.exists()
    delete = Retention(RetentionConfig(after_processing="delete"), field_db)
    assert delete.apply_duplicate(committed(field_db, fid), str(copy)) is None and not copy.exists()


def test_long_passes_report_progress_for_the_watchdog(tmp_path, field_db):
    calls = []
    archive = tmp_path / "archive"
    for day in range(3):
        write(archive / f"2026-11-0{day + 1}" / "robin" / "x.jpg")
    retention = Retention(RetentionConfig(after_processing="archive", archive_dir=archive, archive_max_gb=1e-9,
                                          exemplars_per_species=0), field_db, progress=lambda: calls.append(1))
    assert len(retention.enforce_archive_limit()) == 3
    assert len(calls) >= 3  # at least once per folder walked


def test_pruning_keeps_the_frames_whose_birds_a_person_reviewed(tmp_path):
    """A bird review refers to its detection (reviews.detection_id): pruning its frame failed on
    the foreign key and stopped the whole pass. The reviewed frame stays (with its birds, for
    undo and the training export); every other old frame goes, and the review still undoes."""
    from edge.classify.decision import Decision
    from edge.classify.model import Prediction
    from edge.store.reviews import ReviewStore
    from edge.store.writer import BirdRecord, FrameRecord, Store

    path = tmp_path / "edge.db"
    seen = datetime(2026, 10, 1, 9, 0, tzinfo=UTC)
    now = seen + timedelta(days=40)
    store = Store(path, station_tz="UTC", independence_s=60, clock=lambda: now)
    try:
        for minute, species in enumerate(["Turdus migratorius", "Cyanocitta cristata", "Turdus migratorius"]):
            bird = BirdRecord((0.1, 0.1, 0.3, 0.3), 0.8, "bird", [Prediction(species, 0.9, 0)],
                              Decision("species", species, 0.9, "ok"))
            store.record(FrameRecord(path=str(tmp_path / "gone" / f"{minute}.jpg"), sha256=f"{minute:064d}",
                                     camera="gate", size=1, mtime=0.0, captured_at=seen + timedelta(minutes=10 * minute),
                                     time_source="exif-local", model_id="m", detector_id="d", birds=[bird]))
    finally:
        store.close()
    conn = sqlite3.connect(path)
    jay_frame, jay_bird = conn.execute(
        "SELECT frame_id, id FROM detections WHERE species = 'Cyanocitta cristata'").fetchone()
    conn.close()
    reviews = ReviewStore(path, station_tz="UTC")
    try:
        review = reviews.review_detection(jay_bird, "correct", reviewer="ana", species="Turdus migratorius")
    finally:
        reviews.close()

    store = Store(path, station_tz="UTC", independence_s=60, clock=lambda: now)
    try:
        retention = Retention(RetentionConfig(prune_frames_after_days=30), store.db, clock=now.timestamp)
        assert retention.prune_rows() == 2  # the two unreviewed frames; no IntegrityError
        assert [row[0] for row in store.db.execute("SELECT id FROM frames")] == [jay_frame]
        assert store.db.execute("SELECT COUNT(*) FROM detections WHERE frame_id = ?", (jay_frame,)).fetchone()[0] == 1
        assert retention.prune_rows() == 0  # the next pass finds nothing more to prune, and fails on nothing
        assert store.db.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        store.close()
    reviews = ReviewStore(path, station_tz="UTC")
    try:
        reviews.undo(review.id, reviewer="ana")  # the reviewed bird is still there to undo onto
    finally:
        reviews.close()
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT species FROM detections WHERE id = ?", (jay_bird,)).fetchone()[0] == "Cyanocitta cristata"
    conn.close()
