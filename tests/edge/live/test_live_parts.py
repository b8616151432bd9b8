"""The parts of a live camera on their own, with real pictures and real files: the one URL
redaction (and the log's filter), the configuration ([[cameras]] source, [cameras.live]), the motion
gate on a real scene with a real bird, the writer (EXIF time read back by the still pipeline's
reader, atomic files, the bounded hand-off that drops and counts instead of blocking)."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from PIL import Image

from edge.config import ConfigError, load_config
from edge.ingest.capture_time import CameraClock, read_capture_time
from edge.live.cameras import LiveCameras
from edge.live.motion import MotionGate
from edge.live.reader import grey_size
from edge.live.writer import FrameWriter, Sample
from edge.redact import install_log_redaction, redact_text, redact_url, url_secrets

PASSWORD = "hunter2-Feeder"


def configure(tmp_path: Path, camera: dict, environ: dict | None = None):
    empty = tmp_path / "edge.toml"
    empty.touch()
    return load_config(empty, overrides={"storage": {"database": str(tmp_path / "state" / "t.db")},
                                         "cameras": [camera]}, environ=environ or {})


# -- redaction ---------------------------------------------------------------------------------

@pytest.mark.parametrize("url, shown", [
    (f"rtsp://admin:{PASSWORD}@192.168.1.20:554/Streaming/Channels/101",
     "rtsp://***@192.168.1.20:554/Streaming/Channels/101"),
    (f"rtsps://viewer:{PASSWORD}@cam.local/live", "rtsps://***@cam.local/live"),
    (f"http://cam.local/videostream.cgi?user=admin&pwd={PASSWORD}&rate=0",
     "http://cam.local/videostream.cgi?user=***&pwd=***&rate=0"),
    ("rtsp://192.168.1.20/stream1", "rtsp://192.168.1.20/stream1"),
    ("rtsp://admin:p@ss@10.0.0.2/x", "rtsp://***@10.0.0.2/x"),  # an '@' in the password, not encoded
])
def test_redact_url_masks_credentials_and_keeps_the_rest(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_redact_text_masks_urls_in_error_messages_and_the_bare_password() -> None:
    url = f"rtsp://admin:{PASSWORD}@127.0.0.1:8554/cam"
    error = f"[Errno 111] Connection refused: '{url}' (password {PASSWORD})"
    masked = redact_text(error, url_secrets(url))
    assert PASSWORD not in masked and "rtsp://***@127.0.0.1:8554/cam" in masked
    encoded = "rtsp://admin:p%40ss%3Aword@h/x"
    assert set(url_secrets(encoded)) == {"p%40ss%3Aword", "p@ss:word"}


def test_the_log_filter_masks_what_any_module_logs(tmp_path: Path) -> None:
    logger = logging.getLogger("test.live.redaction")
    logger.propagate = False
    handler = logging.FileHandler(tmp_path / "log.txt")
    logger.addHandler(handler)
    try:
        install_log_redaction([PASSWORD], logger)
        logger.warning("opening %s", f"rtsp://admin:{PASSWORD}@10.0.0.2/x")
        logger.error("a library quoting the password alone: %s", PASSWORD)
    finally:
        handler.close()
        logger.removeHandler(handler)
    text = (tmp_path / "log.txt").read_text()
    assert PASSWORD not in text and "rtsp://***@10.0.0.2/x" in text and text.count("***") == 2


# -- configuration -----------------------------------------------------------------------------

def test_a_live_camera_writes_under_the_state_folder_by_default(tmp_path: Path) -> None:
    config = configure(tmp_path, {"name": "feeder", "source": f"rtsp://admin:{PASSWORD}@10.0.0.2/s"})
    camera = config.cameras[0]
    assert camera.path == (tmp_path / "state" / "live" / "feeder").absolute()
    assert camera.live.transport == "tcp" and camera.live.sample_fps == 2.0


def test_the_password_may_come_from_the_environment(tmp_path: Path) -> None:
    config = configure(tmp_path, {"name": "feeder", "source": "rtsp://admin:{TRAILCAM_FEEDER_PASSWORD}@10.0.0.2/s"},
                       {"TRAILCAM_FEEDER_PASSWORD": PASSWORD})
    assert config.cameras[0].source == f"rtsp://admin:{PASSWORD}@10.0.0.2/s"
    with pytest.raises(ConfigError) as error:
        configure(tmp_path, {"name": "feeder", "source": "rtsp://admin:{TRAILCAM_NOT_SET}@10.0.0.2/s"})
    assert error.value.problems == ["cameras[0].source: environment variable(s) TRAILCAM_NOT_SET not set"]


@pytest.mark.parametrize("camera, key, words", [
    ({"name": "c", "source": f"ftp://admin:{PASSWORD}@10.0.0.2/x"}, "cameras[0].source", "not a stream URL"),
    ({"name": "c", "source": f"rtsp://admin:{PASSWORD}@/x"}, "cameras[0].source", "names no host"),
    ({"name": "c", "source": f"rtsp://admin:{PASSWORD}@h/a b"}, "cameras[0].source", "no spaces"),
    ({"name": "c"}, "cameras[0]", "give path"),
    ({"name": "c", "source": "rtsp://h/x", "clock_offset_s": 30.0}, "cameras[0].clock_offset_s", "this device's clock"),
    ({"name": "c", "source": "rtsp://h/x", "live": {"reconnect_min_s": 10.0, "reconnect_max_s": 2.0}},
     "cameras[0].live", "reconnect_max_s"),
    ({"name": "c", "source": "rtsp://h/x", "live": {"sample_fps": "2"}}, "cameras[0].live.sample_fps", "number"),
    ({"name": "..", "source": "rtsp://h/x"}, "cameras[0]", "cannot name"),
])
def test_bad_live_settings_name_their_key_and_never_show_the_password(tmp_path: Path, camera: dict, key: str,
                                                                      words: str) -> None:
    with pytest.raises(ConfigError) as error:
        configure(tmp_path, camera)
    (problem,) = error.value.problems
    assert problem.startswith(key + ":") and words in problem, problem
    assert PASSWORD not in str(error.value)


# -- the motion gate ---------------------------------------------------------------------------

def grey(image: Image.Image, width: int = 96) -> np.ndarray:
    size = grey_size(image.width, image.height, width)
    return np.asarray(image.convert("L").resize(size, Image.BILINEAR))


def test_the_gate_sees_a_bird_arrive_and_not_a_still_or_slowly_brightening_scene(trailcam_nobird_dir: Path,
                                                                                  birds25_dir: Path) -> None:
    scene = Image.open(trailcam_nobird_dir / "speciesnet__test_data_blank.jpg").convert("RGB").resize((1280, 720))
    bird = Image.open(birds25_dir / "NORTHERN CARDINAL" / "1.jpg").convert("RGB").resize((240, 240))
    with_bird = scene.copy()
    with_bird.paste(bird, (500, 240))
    gate = MotionGate(pixel_threshold=25, motion_threshold=0.01, alpha=1 / 25)
    assert grey_size(1920, 1080, 96) == (96, 54)
    still = grey(scene)
    assert [gate.moving(still) for _ in range(10)] == [False] * 10
    # Dusk (a fifth of a grey level darker per frame, 20 levels in all) is followed by the
    # background, never motion.
    assert not any(gate.moving(np.clip(still.astype(float) - 0.2 * step, 0, 255).astype(np.uint8))
                   for step in range(1, 101))
    gate.reset()
    gate.moving(still)
    assert gate.moving(grey(with_bird)) and gate.last_changed > 0.02


# -- the writer --------------------------------------------------------------------------------

def test_a_written_frame_carries_its_capture_time_for_the_still_pipeline(tmp_path: Path, birds25_dir: Path) -> None:
    zone = ZoneInfo("Europe/Berlin")
    writer = FrameWriter("feeder", tmp_path / "live", zone)
    writer.folder.mkdir()
    moment = datetime(2026, 7, 1, 5, 6, 7, 891000, tzinfo=UTC)
    path = writer.write(Sample(moment, 1, Image.open(birds25_dir / "NORTHERN CARDINAL" / "1.jpg")))
    assert path is not None and path.name == "20260701T050607.891Z.jpg"
    assert [p.name for p in writer.folder.iterdir()] == [path.name], "no partial file left behind"
    reading = read_capture_time(Image.open(path), path.stat().st_mtime, CameraClock(ZoneInfo("UTC")))
    assert (reading.at, reading.source) == (moment, "exif")
    assert Image.open(path).getexif().get_ifd(0x8769)[0x9011] == "+02:00"  # OffsetTimeOriginal, Berlin in July
    again = writer.write(Sample(moment, 1, Image.open(birds25_dir / "NORTHERN CARDINAL" / "2.jpg")))
    assert again is not None and again.name == "20260701T050607.891Z-1.jpg", "never overwritten"


def test_the_hand_off_drops_and_counts_instead_of_blocking_the_reader(tmp_path: Path, birds25_dir: Path) -> None:
    picture = Image.open(birds25_dir / "NORTHERN CARDINAL" / "1.jpg")
    writer = FrameWriter("feeder", tmp_path / "live", UTC, queue_frames=3)
    now = datetime.now(UTC)
    # The writer thread is not running (a disk that does not answer): the reader's offers return at once.
    done = threading.Event()
    results: list[bool] = []
    thread = threading.Thread(target=lambda: (results.extend(
        writer.offer(Sample(now + timedelta(seconds=i), 1, picture)) for i in range(10)), done.set()))
    thread.start()
    assert done.wait(10), "offer() blocked"
    assert results == [True] * 3 + [False] * 7
    assert writer.figures()["dropped"]["queue"] == 7
    writer.start()
    writer.stop()
    assert writer.figures()["written"] == 3 and len(list(writer.folder.glob("*.jpg"))) == 3


def test_frames_waiting_for_processing_bound_what_is_written(tmp_path: Path, birds25_dir: Path) -> None:
    from edge.ingest.watcher import FrameQueue

    queue = FrameQueue()
    folder = tmp_path / "live"
    prefix = str(folder) + "/"
    writer = FrameWriter("feeder", folder, UTC, max_pending=2,
                         pending=lambda: sum(1 for path in queue.busy() if path.startswith(prefix)))
    picture = Image.open(birds25_dir / "NORTHERN CARDINAL" / "1.jpg")
    start = datetime.now(UTC)
    for i in range(4):
        path = writer.write(Sample(start + timedelta(seconds=i), 1, picture))
        if path is not None:
            queue.put(str(path), "feeder")  # what the watcher does with each written frame
    queue.put(str(tmp_path / "other" / "x.jpg"), "other")  # another camera's frames do not count
    assert writer.figures()["written"] == 2 and writer.figures()["dropped"]["backlog"] == 2
    queue.done(queue.get(0).path)
    assert writer.write(Sample(start + timedelta(seconds=9), 1, picture)) is not None


def test_keep_days_removes_only_recorded_old_frames(tmp_path: Path, birds25_dir: Path) -> None:
    import os
    import time

    config = configure(tmp_path, {"name": "feeder", "source": "rtsp://10.0.0.2/s", "live": {"keep_days": 1.0}})
    folder = config.cameras[0].path
    folder.mkdir(parents=True)
    old_recorded, old_unrecorded, new_recorded = (folder / name for name in ("a.jpg", "b.jpg", "c.jpg"))
    for path in (old_recorded, old_unrecorded, new_recorded):
        path.write_bytes((birds25_dir / "NORTHERN CARDINAL" / "1.jpg").read_bytes())
    two_days_ago = time.time() - 2 * 86400
    for path in (old_recorded, old_unrecorded):
        os.utime(path, (two_days_ago, two_days_ago))
    recorded = [(str(old_recorded), None, None), (str(new_recorded), None, None)]
    live = LiveCameras(config.cameras, UTC, known=lambda _folder: recorded)
    assert live.housekeeping(lambda: set(), force=True) == 1
    assert sorted(p.name for p in folder.iterdir()) == ["b.jpg", "c.jpg"]


# -- a live camera in the real daemon, without a stream -----------------------------------------

def test_frames_without_a_count_are_removed_once_recorded_and_a_dead_camera_is_retried(
        tmp_path: Path, make_config, thread_daemon, bird_photo) -> None:
    from tests.edge.conftest import count_rows, jpeg_bytes
    from tests.fixtures.broker import free_port
    from tests.fixtures.streams import need_stream_tools
    from tests.fixtures.waiting import wait_for

    need_stream_tools()  # `edge run` refuses a live camera without PyAV (the min environment has none)
    closed = free_port()  # nothing listens there: a camera that is off
    config = make_config(cameras=[{"name": "feeder", "path": str(tmp_path / "live" / "feeder"),
                                   "source": f"rtsp://admin:{PASSWORD}@127.0.0.1:{closed}/cam",
                                   "live": {"connect_timeout_s": 1.0, "reconnect_min_s": 0.2,
                                            "reconnect_max_s": 0.5}}],
                         classify={"deny": ["Cardinalis cardinalis"]})
    runner = thread_daemon(config)
    live = runner.daemon.live
    wait_for(lambda: live.status()[0]["failed_attempts"] >= 2, 30, what="reconnection attempts")
    assert live.status()[0]["state"] in ("reconnecting", "connecting")
    assert PASSWORD not in str(live.status())
    folder = config.cameras[0].path
    denied, counted = folder / "20260701T050607.000Z.jpg", folder / "20260701T050608.000Z.jpg"
    for path, species in ((denied, "NORTHERN CARDINAL"), (counted, "AMERICAN GOLDFINCH")):
        partial = folder / f".{path.name}.partial"
        partial.write_bytes(jpeg_bytes(bird_photo(species), datetime(2026, 7, 1, 5, 6, 7), "+00:00"))
        partial.rename(path)  # as the writer does
    db = config.storage.database
    wait_for(lambda: count_rows(db, "SELECT count(*) FROM frames WHERE status = 'ok'") == 2, 60,
             what="both frames recorded")
    wait_for(lambda: not denied.exists(), 10, what="the frame without a count removed")
    assert counted.exists(), "a frame that counted stays (for the web app and [retention])"
    assert count_rows(db, "SELECT count(*) FROM frames WHERE path = ? AND species IS NULL", (str(denied),)) == 1
