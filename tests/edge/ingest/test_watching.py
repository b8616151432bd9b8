"""Real inotify and polling: frames written slowly, renamed into place, or in bursts are each
recorded once and never read half-written; the backlog is processed oldest first."""

from __future__ import annotations

import os
import resource
import threading
import time
from pathlib import Path

import pytest

from tests.edge.conftest import count_rows, jpeg_bytes, wait_for

OK = "SELECT count(*) FROM frames WHERE status = 'ok'"
ERRORS = "SELECT count(*) FROM frames WHERE status = 'error'"


def _write_slowly(path: Path, data: bytes, chunks: int = 6, pause: float = 0.25) -> None:
    step = len(data) // chunks + 1
    with open(path, "wb") as handle:
        for start in range(0, len(data), step):
            handle.write(data[start:start + step])
            handle.flush()
            os.fsync(handle.fileno())
            time.sleep(pause)  # the writer's pace, not a wait for the daemon


@pytest.fixture
def frames(bird_photo):
    """Distinct real JPEGs (same photo, distinct EXIF comment → distinct content hash)."""
    def make(count: int, species: str = "NORTHERN CARDINAL") -> list[bytes]:
        return [jpeg_bytes(bird_photo(species, 1 + i % 5), comment=f"frame {i} {time.time_ns()}") for i in range(count)]

    return make


@pytest.mark.parametrize("mode", ["inotify", "poll"])
def test_slow_renamed_and_burst_writes_recorded_once(mode, tmp_path, make_config, thread_daemon, frames) -> None:
    camera = tmp_path / "cam"
    config = make_config([{"name": "cam", "path": str(camera), "mode": mode, "poll_interval_s": 0.2, "settle_s": 1.0}])
    db = config.storage.database
    runner = thread_daemon(config)
    data = frames(14)

    # 1. Written slowly in chunks (pauses shorter than the settle time in poll mode).
    slow = threading.Thread(target=_write_slowly, args=(camera / "slow.jpg", data[0]))
    slow.start()
    # 2. Written under a temporary hidden name, then renamed into place (rsync style).
    (camera / ".upload.jpg.part").write_bytes(data[1])
    os.rename(camera / ".upload.jpg.part", camera / "renamed.jpg")
    # 3. Written under a temporary name that looks like an image, then renamed.
    (camera / "tmp_0001.jpg").write_bytes(data[2])
    os.rename(camera / "tmp_0001.jpg", camera / "final_0001.jpg")
    # 4. Written elsewhere on the same file system, then moved in (an unpaired IN_MOVED_TO).
    outside = tmp_path / "staging"
    outside.mkdir()
    (outside / "moved_in.jpg").write_bytes(data[3])
    os.rename(outside / "moved_in.jpg", camera / "moved_in.jpg")
    # 5. A burst.
    for index, blob in enumerate(data[4:]):
        (camera / f"burst_{index:03d}.jpg").write_bytes(blob)
    # Not frames: ignored.
    (camera / "notes.txt").write_text("not a frame")
    (camera / ".hidden.jpg").write_bytes(data[0])
    slow.join()

    wait_for(lambda: count_rows(db, OK) >= 14, 60, what="14 frames recorded")
    # Give late duplicate events (close after rename, poll rescans) a chance to misbehave:
    # a further frame after them must be the only new row.
    (camera / "sentinel.jpg").write_bytes(frames(1)[0])
    wait_for(lambda: count_rows(db, OK) >= 15, 60, what="sentinel recorded")
    runner.stop()

    assert count_rows(db, OK) == 15
    assert count_rows(db, ERRORS) == 0, "a frame was read half-written"
    assert count_rows(db, "SELECT count(DISTINCT sha256) FROM frames") == 15
    paths = {Path(p).name for p in _paths(db)}
    assert {"slow.jpg", "renamed.jpg", "final_0001.jpg", "moved_in.jpg", "sentinel.jpg"} <= paths
    assert not any(name.startswith((".", "tmp_")) or name.endswith(".txt") for name in paths)


def _paths(db: Path) -> list[str]:
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        return [row[0] for row in conn.execute("SELECT path FROM frames")]
    finally:
        conn.close()


def test_backlog_processed_oldest_first_including_subfolders(tmp_path, make_config, thread_daemon, frames) -> None:
    camera = tmp_path / "cam"
    (camera / "DCIM" / "100").mkdir(parents=True)
    data = frames(5)
    names = [camera / "e.jpg", camera / "DCIM" / "100" / "d.jpg", camera / "c.jpg", camera / "b.jpg", camera / "a.jpg"]
    base = time.time() - 3600
    for index, (path, blob) in enumerate(zip(names, data)):
        path.write_bytes(blob)
        os.utime(path, (base + index * 10, base + index * 10))  # e oldest … a newest
    config = make_config([{"name": "cam", "path": str(camera), "recursive": True}])
    runner = thread_daemon(config)
    wait_for(lambda: count_rows(config.storage.database, OK) >= 5, 60, what="backlog processed")
    runner.stop()

    import sqlite3

    conn = sqlite3.connect(config.storage.database)
    order = [Path(row[0]).name for row in conn.execute("SELECT path FROM frames ORDER BY id")]
    conn.close()
    assert order == ["e.jpg", "d.jpg", "c.jpg", "b.jpg", "a.jpg"]


def test_camera_folder_removed_and_back_is_watched_again(tmp_path, make_config, thread_daemon, frames, caplog) -> None:
    """An SD card or share remounted: the old inotify watch died with the folder."""
    camera = tmp_path / "cam"
    config = make_config([{"name": "cam", "path": str(camera)}])
    db = config.storage.database
    runner = thread_daemon(config)
    runner.daemon.idle_interval_s = 0.1
    data = frames(3)
    (camera / "before.jpg").write_bytes(data[0])
    wait_for(lambda: count_rows(db, OK) >= 1, 60, what="first frame")
    os.rename(camera, tmp_path / "unmounted")
    wait_for(lambda: "is gone" in caplog.text, 30, what="folder reported gone")
    (tmp_path / "unmounted").rename(camera)  # "remounted", with a frame that arrived meanwhile
    (camera / "meanwhile.jpg").write_bytes(data[1])
    wait_for(lambda: count_rows(db, OK) >= 2, 60, what="frame that arrived while unwatched")
    (camera / "after.jpg").write_bytes(data[2])
    wait_for(lambda: count_rows(db, OK) >= 3, 60, what="frame written after the folder came back")
    runner.stop()
    assert {Path(p).name for p in _paths(db)} == {"before.jpg", "meanwhile.jpg", "after.jpg"}


def test_camera_folder_that_appears_after_start_is_watched(tmp_path, make_config, thread_daemon, frames) -> None:
    """A USB stick mounted after the service started is not a configuration error."""
    camera = tmp_path / "cam"
    config = make_config([{"name": "cam", "path": str(camera)}])
    camera.rmdir()  # make_config creates it; this camera is not mounted yet
    runner = thread_daemon(config)
    runner.daemon.idle_interval_s = 0.1
    camera.mkdir()
    wait_for(lambda: runner.daemon._inotify_watcher is not None, 30, what="folder picked up")
    (camera / "first.jpg").write_bytes(frames(1)[0])
    wait_for(lambda: count_rows(config.storage.database, OK) >= 1, 60, what="frame in the late folder")
    runner.stop()


# -- new sub-folders and the periodic rescan (issue 9) ----------------------------------------------

def _small_frames(bird_photo, count: int, tag: str) -> list[bytes]:
    """Distinct real JPEGs, small so that hundreds of them are quick to write and classify."""
    from PIL import Image

    images = [Image.open(bird_photo("NORTHERN CARDINAL", 1 + i)).convert("RGB").resize((320, 240)) for i in range(5)]
    return [jpeg_bytes(images[i % 5], comment=f"{tag} {i}") for i in range(count)]


def _card(root: Path, blobs: list[bytes]) -> list[Path]:
    """A memory card's worth of folders: 25 folders x 5 frames, then dated folders 2026/05/DD/."""
    paths = [root / f"{100 + i // 5}MEDIA" / f"IMG_{i:04d}.JPG" for i in range(125)]
    paths += [root / "2026" / "05" / f"{1 + i // 5:02d}" / f"PICT{i:04d}.jpg" for i in range(len(blobs) - 125)]
    for path, blob in zip(paths, blobs):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(blob)
    return [p.relative_to(root) for p in paths]


def test_frames_copied_in_new_sub_folders_are_all_recorded_once(tmp_path, make_config, thread_daemon, bird_photo) -> None:
    """`cp -r` of whole folders into a recursive camera: files written into a new folder before
    inotify watched it have no close event; the folder is scanned when it appears."""
    import shutil
    import subprocess

    camera = tmp_path / "cam"
    config = make_config([{"name": "cam", "path": str(camera), "recursive": True, "settle_s": 0.5,
                           "rescan_interval_s": 0}])  # no rescan: the new-folder scan alone must do it
    db = config.storage.database
    thread_daemon(config)
    expected: set[Path] = set()
    for round_ in range(3):
        card = tmp_path / f"card{round_}"
        names = _card(card, _small_frames(bird_photo, 140, f"round {round_}"))
        if round_ == 0:  # the card's folders straight into the camera folder
            subprocess.run(["cp", "-r", f"{card}/.", str(camera)], check=True)
            expected |= {camera / n for n in names}
        elif round_ == 1:  # the card as one new folder, nested
            subprocess.run(["cp", "-r", str(card), str(camera / "card1")], check=True)
            expected |= {camera / "card1" / n for n in names}
        else:  # a dated upload folder, created with its parents (shutil: copy2 keeps mtimes)
            shutil.copytree(card, camera / "uploads" / "2026-05-02")
            expected |= {camera / "uploads" / "2026-05-02" / n for n in names}
    assert len(expected) == 420
    wait_for(lambda: count_rows(db, OK) >= len(expected), 300,
             what=f"{len(expected)} frames recorded (have {count_rows(db, OK)})")
    (camera / "sentinel.jpg").write_bytes(_small_frames(bird_photo, 1, "sentinel")[0])
    wait_for(lambda: count_rows(db, OK) >= len(expected) + 1, 60, what="sentinel recorded")

    assert count_rows(db, "SELECT count(*) FROM frames") == len(expected) + 1, "a frame was recorded twice"
    assert count_rows(db, ERRORS) == 0, "a frame was read half-written"
    assert {Path(p) for p in _paths(db)} == expected | {camera / "sentinel.jpg"}


def test_rescan_finds_what_inotify_did_not_report_and_nothing_else(tmp_path, make_config, frames) -> None:
    """A hard link into the folder is a new frame with no close or rename event (IN_CREATE only).
    The rescan takes it, but not frames waiting, being processed, recorded, young, a copy of a
    recorded frame, or a skipped non-frame. The loop is driven by hand to hold those states."""
    from edge.daemon.wiring import build

    camera, staging = tmp_path / "cam", tmp_path / "staging"
    staging.mkdir()
    # The thread's own rescans are an hour away: the test calls them; a second camera's rescan
    # must not make this one forget what it has handled.
    config = make_config([{"name": "cam", "path": str(camera), "rescan_interval_s": 3600, "settle_s": 2.0},
                          {"name": "cam2", "path": str(tmp_path / "cam2"), "rescan_interval_s": 3600}])
    db = config.storage.database
    data = frames(4)
    old = time.time() - 600
    for name, blob in (("a.jpg", data[0]), ("b.jpg", data[1])):
        (camera / name).write_bytes(blob)
        os.utime(camera / name, (old, old))
    daemon = build(config, field=False)
    daemon.start()  # a.jpg and b.jpg are the backlog, waiting in the queue
    rescan = lambda: daemon.rescanner.rescan_once(config.cameras[0])  # noqa: E731

    def process_next() -> str:
        item = daemon.frames.get(timeout=5)
        assert item is not None
        status = daemon.process(item.path, item.camera).status
        daemon.frames.done(item.path)
        return status

    try:
        assert rescan() == []  # both waiting
        item = daemon.frames.get(timeout=5)
        assert rescan() == []  # one in flight, one waiting
        daemon.process(item.path, item.camera)
        daemon.frames.done(item.path)
        assert process_next() == "ok"
        assert rescan() == [] and count_rows(db, OK) == 2  # both recorded

        (staging / "c.jpg").write_bytes(data[2])
        os.link(staging / "c.jpg", camera / "linked_young.jpg")  # just written: may still grow
        assert rescan() == []
        os.utime(staging / "c.jpg", (old, old))
        assert rescan() == [str(camera / "linked_young.jpg")]
        assert rescan() == []  # waiting now, not taken twice
        assert process_next() == "ok"
        assert rescan() == []

        (staging / "copy_of_a.jpg").write_bytes(data[0])  # a sync tool's second copy
        os.utime(staging / "copy_of_a.jpg", (old, old))
        os.link(staging / "copy_of_a.jpg", camera / "copy_of_a.jpg")
        os.mkfifo(camera / "pipe.jpg")
        os.utime(camera / "pipe.jpg", (old, old))
        assert sorted(rescan()) == [str(camera / "copy_of_a.jpg"), str(camera / "pipe.jpg")]
        assert sorted([process_next(), process_next()]) == ["duplicate", "skipped"]
        assert rescan() == []  # handled without a row of their own: not found again
        assert daemon.rescanner.rescan_once(config.cameras[1]) == []
        assert rescan() == []
        assert daemon.watch_figures()["rescan_found"] == 3
        assert daemon.watch_figures()["frames_skipped"] == {"not_regular": 1}
        assert daemon.rescanner.last_rescan_at is not None
    finally:
        daemon.stop()
    assert count_rows(db, OK) == 3 and count_rows(db, "SELECT count(*) FROM frames") == 3


# -- FIFOs and symlinks (issue 9) ------------------------------------------------------------------

def test_a_fifo_renamed_in_does_not_stall_the_loop(tmp_path, make_config, thread_daemon, frames, caplog) -> None:
    camera, staging = tmp_path / "cam", tmp_path / "staging"
    staging.mkdir()
    config = make_config([{"name": "cam", "path": str(camera)}])
    db = config.storage.database
    runner = thread_daemon(config)
    os.mkfifo(staging / "x.jpg")
    os.rename(staging / "x.jpg", camera / "x.jpg")
    try:
        (camera / "after.jpg").write_bytes(frames(1)[0])
        wait_for(lambda: count_rows(db, OK) >= 1, 60, what="the frame after the FIFO recorded")
    finally:
        try:  # a daemon blocked in open() on the FIFO (the bug) is released so the test can end
            os.close(os.open(camera / "x.jpg", os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass
    assert runner.daemon.health.frames_skipped == {"not_regular": 1}
    runner.stop()
    assert [Path(p).name for p in _paths(db)] == ["after.jpg"]  # no row for the FIFO
    lines = [r.getMessage() for r in caplog.records if "x.jpg" in r.getMessage()]
    assert lines == [f"frame {camera / 'x.jpg'}: skipped: a FIFO, not a regular file: not read"]


@pytest.mark.parametrize("symlinks", ["skip", "inside"])
@pytest.mark.parametrize("arrival", ["live", "backlog"])
def test_symlinks_skipped_unless_inside_allowed_live_and_backlog_alike(arrival, symlinks, tmp_path, make_config,
                                                                      thread_daemon, frames, caplog) -> None:
    camera, staging, elsewhere = tmp_path / "cam", tmp_path / "staging", tmp_path / "elsewhere"
    for folder in (camera / "originals", staging, elsewhere):
        folder.mkdir(parents=True)
    data = frames(3)
    (camera / "originals" / "kept.jpg").write_bytes(data[0])  # not itself a frame: not recursive
    (elsewhere / "secret.jpg").write_bytes(data[1])
    links = {"zero.jpg": Path("/dev/zero"), "outside.jpg": elsewhere / "secret.jpg",
             "inside.jpg": camera / "originals" / "kept.jpg"}
    config = make_config([{"name": "cam", "path": str(camera), "symlinks": symlinks}])
    db = config.storage.database

    def place() -> None:
        for name, target in links.items():
            os.symlink(target, staging / name)
            os.rename(staging / name, camera / name)  # renamed in, as an uploader would

    if arrival == "backlog":
        place()
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    runner = thread_daemon(config)
    if arrival == "live":
        place()
    (camera / "real.jpg").write_bytes(data[2])
    expected = {"real.jpg"} | ({"inside.jpg"} if symlinks == "inside" else set())
    wait_for(lambda: count_rows(db, OK) >= len(expected) and sum(runner.daemon.health.frames_skipped.values()) >= 4 - len(expected),
             60, what="frames recorded and symlinks skipped")
    runner.stop()

    assert {Path(p).name for p in _paths(db)} == expected
    assert count_rows(db, ERRORS) == 0
    assert runner.daemon.health.frames_skipped == {"symlink": 4 - len(expected)}
    skipped = {r.getMessage().split(":")[0].removeprefix("frame ") for r in caplog.records if ": skipped: " in r.getMessage()}
    refused = {"zero.jpg", "outside.jpg"} | ({"inside.jpg"} if symlinks == "skip" else set())
    assert skipped == {str(camera / name) for name in refused}
    # /dev/zero was never read: an unbounded read grows by about 0.5 GB a second until it fails.
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before < 200 * 1024


def test_a_frame_closed_right_after_the_backlog_listing_is_recorded(tmp_path, make_config, thread_daemon, frames,
                                                                     monkeypatch) -> None:
    """The gap between listing the backlog and watching the folder: a frame closed there used
    to be seen by neither (the watch started after the listing) until the next rescan, minutes
    later. The real scan runs, and the frame is written the moment it returns."""
    import edge.daemon.lifecycle as lifecycle

    camera = tmp_path / "cam"
    blob = frames(1)[0]
    real_scan = lifecycle.scan_backlog

    def scan_then_a_frame_arrives(cameras):
        found = real_scan(cameras)
        (camera / "arrived.jpg").write_bytes(blob)
        return found

    monkeypatch.setattr(lifecycle, "scan_backlog", scan_then_a_frame_arrives)
    config = make_config(cameras=[{"name": "cam", "path": str(camera), "rescan_interval_s": 0}])
    daemon = thread_daemon(config)
    wait_for(lambda: count_rows(tmp_path / "trailcam.db", "SELECT count(*) FROM frames WHERE status = 'ok'") == 1, 20,
             what="the frame written after the backlog listing")
    assert daemon.daemon.health.processed.get("ok") == 1


def test_a_photo_the_camera_is_still_writing_at_start_is_read_once_whole(tmp_path, make_config, thread_daemon,
                                                                         frames, caplog) -> None:
    """A daemon (re)started while the camera writes: the photo is there, created and still empty.
    The backlog used to read it at once and record an error row, superseded once it was whole.
    Now a file modified less than settle_s ago waits for its close event: when the backlog is
    drained there is no row for it, and once written it is one ok frame."""
    camera = tmp_path / "cam"
    camera.mkdir()
    old, late = frames(2)
    (camera / "old.jpg").write_bytes(old)
    os.utime(camera / "old.jpg", (time.time() - 3600, time.time() - 3600))
    config = make_config([{"name": "cam", "path": str(camera), "settle_s": 600, "rescan_interval_s": 0}])
    db = config.storage.database
    with open(camera / "writing.jpg", "wb") as handle, caplog.at_level("INFO", logger="edge.daemon.lifecycle"):
        runner = thread_daemon(config)
        frames_queue = runner.daemon.frames
        wait_for(lambda: count_rows(db, OK) == 1 and not frames_queue.busy(), 60, what="the backlog drained")
        assert count_rows(db, "SELECT count(*) FROM frames") == 1, "the empty photo was read"
        assert "backlog of 2 frame(s), 1 still being written" in caplog.text
        handle.write(late)
    wait_for(lambda: count_rows(db, OK) == 2, 60, what="the photo recorded once closed")
    runner.stop()
    assert count_rows(db, ERRORS) == 0
    assert sorted(Path(p).name for p in _paths(db)) == ["old.jpg", "writing.jpg"]


@pytest.mark.parametrize("mode", ["inotify", "poll"])
def test_a_photo_closed_just_before_start_is_taken_once_settled(mode, tmp_path, make_config, thread_daemon,
                                                                frames) -> None:
    """Closed a moment before the daemon started: too young for the backlog to trust, and no close
    event will come (inotify was not watching yet). It is taken once it has settled: nothing lost."""
    camera = tmp_path / "cam"
    camera.mkdir()
    (camera / "young.jpg").write_bytes(frames(1)[0])
    config = make_config([{"name": "cam", "path": str(camera), "mode": mode, "settle_s": 1.0,
                           "poll_interval_s": 0.2, "rescan_interval_s": 0}])
    runner = thread_daemon(config)
    wait_for(lambda: count_rows(config.storage.database, OK) == 1, 60, what="the young photo recorded")
    runner.stop()
    assert count_rows(config.storage.database, "SELECT count(*) FROM frames") == 1
