"""The daemon as systemd runs it: `python -m edge run` with $NOTIFY_SOCKET bound by the test,
the AIY model on birds25 photos, real inotify, real SQLite, real tmpfs mounts for a full disk."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.edge.conftest import DaemonProcess, count_rows, jpeg_bytes, query_rows, toml_value, wait_for
from tests.fixtures.disk import fill

SPECIES = ["NORTHERN CARDINAL", "BLACK-CAPPED CHICKADEE", "EASTERN BLUEBIRD"]
WATCHDOG_USEC = 1_000_000  # pings due every 0.5 s; systemd would kill after 1 s of silence


class NotifyListener:
    """The service manager's side of sd_notify: a datagram socket and a log of what arrived."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, dict[str, str]]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().split("\n") if "=" in line)
            with self._lock:
                self.messages.append((time.monotonic(), fields))

    def with_key(self, key: str, since: float = 0.0) -> list[tuple[float, dict[str, str]]]:
        with self._lock:
            return [(t, m) for t, m in self.messages if key in m and t >= since]

    def pings(self, since: float = 0.0, until: float = float("inf")) -> list[float]:
        return [t for t, _ in self.with_key("WATCHDOG", since) if t <= until]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def notify(tmp_path):
    listener = NotifyListener(tmp_path / "notify.sock")
    yield listener
    listener.close()


@pytest.fixture(scope="module")
def photos(birds25_dir: Path) -> list[bytes]:
    return [jpeg_bytes(birds25_dir / species / f"{n}.jpg") for species in SPECIES for n in (1, 2, 3)]


def write_config(path: Path, camera: Path, db: Path, model: Path, **sections: dict) -> Path:
    lines = ['[station]', 'device_id = "fieldtest"', '', '[[cameras]]', 'name = "cam"',
             f'path = {toml_value(camera)}', '', '[model]', f'path = {toml_value(model)}', '',
             '[storage]', f'database = {toml_value(db)}', '']
    sections.setdefault("health", {}).setdefault("status_interval_s", 0.2)
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {toml_value(value)}" for key, value in values.items()]
        lines.append("")
    path.write_text("\n".join(lines))
    return path


def start(tmp_path: Path, config: Path, cli_env: dict, notify: NotifyListener | None,
          program: list[str] | None = None, **env: str) -> DaemonProcess:
    environ = dict(cli_env)
    environ.pop("NOTIFY_SOCKET", None)
    if notify is not None:
        environ.update(NOTIFY_SOCKET=notify.path, WATCHDOG_USEC=str(WATCHDOG_USEC))
    environ.update(env)
    return DaemonProcess(["--config", str(config)], environ, tmp_path / "daemon.log", program=program)


def ok_frames(db: Path) -> int:
    return count_rows(db, "SELECT COUNT(*) FROM frames WHERE status = 'ok'")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def drop(camera: Path, name: str, data: bytes) -> None:
    """Write under a hidden name, then rename in: how uploaders deliver (never read half-written)."""
    tmp = camera / f".{name}.part"
    tmp.write_bytes(data)
    os.rename(tmp, camera / name)


def edge(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge", *args], env=env, capture_output=True, text=True, timeout=60)


def test_service_lifecycle_ready_status_watchdog_metrics_archive_stopping(tmp_path, notify, photos, aiy_model_dir,
                                                                          cli_env):
    camera, archive, db = tmp_path / "cam", tmp_path / "archive", tmp_path / "state" / "trailcam.db"
    camera.mkdir()
    for i in range(2):  # backlog present before start
        (camera / f"old{i}.jpg").write_bytes(photos[i])
    port = free_port()
    config = write_config(tmp_path / "edge.toml", camera, db, aiy_model_dir / "model.tflite",
                          retention={"after_processing": "archive", "archive_dir": archive, "min_free_mb": 1},
                          health={"metrics_port": port})
    daemon = start(tmp_path, config, cli_env, notify)
    try:
        ready_at, ready = wait_for(lambda: next(iter(notify.with_key("READY")), None), 90, what="READY=1")
        assert ready["MAINPID"] == str(daemon.proc.pid)
        assert "backlog of 2 frame(s)" in daemon.output()  # the model is loaded and the scan has begun
        # Frames keep arriving: the processing loop pings the watchdog in time throughout.
        flow_start = time.monotonic()
        for i in range(2, 6):
            drop(camera, f"new{i}.jpg", photos[i])
            wait_for(lambda n=i + 1: ok_frames(db) >= n, 60, what=f"{i + 1} frames recorded")
        (camera / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
        wait_for(lambda: query_rows(db, "SELECT COUNT(*) FROM frames WHERE status = 'error'")[0][0] == 1, 30,
                 what="the corrupt frame recorded as an error")
        wait_for(lambda: notify.pings(since=time.monotonic() - 0.1), 5, what="a ping after the frames")
        pings = notify.pings(since=flow_start)
        gaps = [b - a for a, b in zip(pings, pings[1:])]
        assert len(pings) >= 3 and max(gaps) < WATCHDOG_USEC / 1e6, gaps
        status_lines = [m["STATUS"] for _, m in notify.with_key("STATUS")]
        wait_for(lambda: any(s.startswith("7 frames (1 errors), backlog 0, last species ")
                             for _, m in notify.with_key("STATUS") for s in [m["STATUS"]]), 10,
                 what=f"STATUS with the counts (seen {status_lines[-3:]})")

        # Post-processing: everything left the (read-only under systemd) camera folder into the archive
        # except the frame that failed, which is archived apart.
        wait_for(lambda: not any(camera.glob("*.jpg")), 10, what="camera folder emptied")
        archived = sorted(p.relative_to(archive).parts[1] for p in archive.rglob("*.jpg"))
        assert len(archived) == 7 and archived.count("_errors") == 1
        wait_for(lambda: query_rows(db, "SELECT COUNT(*) FROM frames WHERE stored_path LIKE ?",
                              (f"{archive}/%",))[0][0] == 7, 10, what="archive locations recorded")

        # Prometheus endpoint
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for family in text_string_to_metric_families(body) for s in family.samples}
        assert samples[("trailcam_frames_processed_total", (("status", "ok"),))] == 6
        assert samples[("trailcam_frames_processed_total", (("status", "error"),))] == 1
        assert samples[("trailcam_inference_seconds_count", ())] == 6
        assert samples[("trailcam_backlog_frames", ())] == 0
        assert any(name == "trailcam_model_info" for name, _ in samples)

        # `edge status` from another process
        result = edge(["status", "--config", str(config), "--format", "json"], cli_env)
        assert result.returncode == 0, result.stderr
        status = json.loads(result.stdout)
        assert status["daemon"]["state"] == "running" and status["daemon"]["pid"] == daemon.proc.pid
        assert status["frames_total"] == 7 and status["frames_error"] == 1
        assert status["daemon"]["backlog"] == 0 and status["last_error"]["path"] == str(camera / "broken.jpg")
        assert {d["path"] for d in status["disk"]} == {str(db.parent), str(archive)}
        table = edge(["status", "--config", str(config)], cli_env).stdout
        assert "running" in table and "broken.jpg" in table

        stop_at = time.monotonic()
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(60) == 0
    finally:
        daemon.kill()
    assert notify.with_key("STOPPING", since=stop_at)
    assert edge(["status", "--config", str(config), "--format", "json"], cli_env).returncode == 1
    log = daemon.output()
    broken = [line for line in log.splitlines() if "broken.jpg" in line]
    assert broken and "WARNING" in broken[0] and str(camera / "broken.jpg") in broken[0]  # file and why
    assert "Traceback" not in log


def test_no_watchdog_ping_while_the_processing_loop_hangs(tmp_path, notify, photos, aiy_model_dir, cli_env):
    camera, db = tmp_path / "cam", tmp_path / "state" / "trailcam.db"
    camera.mkdir()
    config = write_config(tmp_path / "edge.toml", camera, db, aiy_model_dir / "model.tflite")
    daemon = start(tmp_path, config, cli_env, notify, program=["-m", "tests.edge.daemon.hanging_daemon", "HANG"])
    try:
        wait_for(lambda: notify.with_key("READY"), 90, what="READY=1")
        idle_from = time.monotonic()
        wait_for(lambda: len(notify.pings(since=idle_from)) >= 3, 10, what="pings while idle")
        drop(camera, "HANG.jpg", photos[0])
        wait_for(lambda: ok_frames(db) == 1, 60, what="the frame committed before the loop hangs")
        hung_at = time.monotonic()
        quiet_until = hung_at + 3 * WATCHDOG_USEC / 1e6
        while time.monotonic() < quiet_until:  # watch the socket for three watchdog timeouts
            time.sleep(0.1)
        late = notify.pings(since=hung_at + 0.2)
        assert late == [], f"{len(late)} ping(s) while the loop was stuck"
        assert daemon.proc.poll() is None  # alive but silent: systemd's WatchdogSec would kill it
    finally:
        daemon.kill()


def test_disk_full_pauses_keeps_the_database_sound_and_resumes(tmp_path, tmpfs, notify, photos, aiy_model_dir,
                                                               cli_env):
    camera = tmp_path / "cam"
    camera.mkdir()
    state = tmpfs(tmp_path / "state", "16m")
    db = state / "trailcam.db"
    # min_free_mb = 0: no early pause, so the write itself runs into ENOSPC (the worst case)
    config = write_config(tmp_path / "edge.toml", camera, db, aiy_model_dir / "model.tflite",
                          retention={"min_free_mb": 0, "resume_free_mb": 2, "disk_check_interval_s": 0.2})
    daemon = start(tmp_path, config, cli_env, notify)
    try:
        wait_for(lambda: notify.with_key("READY"), 90, what="READY=1")
        drop(camera, "a0.jpg", photos[0])
        wait_for(lambda: ok_frames(db) == 1, 60, what="first frame")
        fill(state / "ballast")
        for i in range(1, 4):
            drop(camera, f"a{i}.jpg", photos[i])
        wait_for(lambda: any(m["STATUS"].startswith("PAUSED") for _, m in notify.with_key("STATUS")), 60,
                 what="STATUS=PAUSED")
        paused_at = time.monotonic()
        wait_for(lambda: len(notify.pings(since=paused_at)) >= 2, 10, what="pings while paused (loop alive)")
        assert ok_frames(db) == 1
        assert "disk full" in daemon.output() and "a1.jpg" in daemon.output()
        snapshot = json.loads((state / "status.json").read_text())
        assert snapshot["paused"] is True and snapshot["pause_reason"]
        (state / "ballast").unlink()  # space returns
        wait_for(lambda: ok_frames(db) == 4, 60, what="all frames recorded after space returned")
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(60) == 0
    finally:
        daemon.kill()
    assert query_rows(db, "PRAGMA integrity_check") == [("ok",)]
    assert query_rows(db, "SELECT COUNT(*), COUNT(DISTINCT sha256) FROM frames") == [(4, 4)]
    assert query_rows(db, "SELECT SUM(frames) FROM daily_tallies") == [(4,)]
    assert "disk space back" in daemon.output() or "resuming" in daemon.output()


def test_low_disk_space_pauses_before_writing(tmp_path, tmpfs, photos, aiy_model_dir, cli_env):
    camera = tmp_path / "cam"
    camera.mkdir()
    state = tmpfs(tmp_path / "state", "16m")
    db = state / "trailcam.db"
    config = write_config(tmp_path / "edge.toml", camera, db, aiy_model_dir / "model.tflite",
                          retention={"min_free_mb": 8, "resume_free_mb": 10, "disk_check_interval_s": 0.2})
    daemon = start(tmp_path, config, cli_env, None)
    try:
        wait_for(lambda: "backlog of 0" in daemon.output(), 90, what="daemon started")
        with open(state / "ballast", "wb") as ballast:
            ballast.write(b"\0" * 10 * 1024 * 1024)  # leaves about 6 MB: below min_free_mb
        wait_for(lambda: json.loads((state / "status.json").read_text() or "{}").get("paused"), 30,
                 what="paused in status.json")
        drop(camera, "b0.jpg", photos[0])
        result = edge(["status", "--config", str(tmp_path / "edge.toml"), "--format", "json"], cli_env)
        status = json.loads(result.stdout)
        assert result.returncode == 1 and status["daemon"]["state"] == "paused"
        assert "low disk space" in status["daemon"]["pause_reason"]
        assert ok_frames(db) == 0 and (camera / "b0.jpg").exists()
        (state / "ballast").unlink()
        wait_for(lambda: ok_frames(db) == 1, 60, what="processing resumed by itself")
    finally:
        daemon.signal(signal.SIGTERM)
        daemon.wait(60)
        daemon.kill()


def test_unwritable_state_directory_stops_the_start_with_a_clear_message(tmp_path, tmpfs, aiy_model_dir, cli_env):
    camera = tmp_path / "cam"
    camera.mkdir()
    state = tmpfs(tmp_path / "state", "1m", readonly=True)
    config = write_config(tmp_path / "edge.toml", camera, state / "trailcam.db", aiy_model_dir / "model.tflite")
    result = edge(["run", "--config", str(config)], cli_env)
    # A configuration problem found by the start-up preflight: exit 2, naming the key.
    assert result.returncode == 2
    assert f"storage.database: {state} is not writable" in result.stderr
    assert "Read-only file system" in result.stderr and "Traceback" not in result.stderr


def test_log_level_from_config_and_frame_errors_name_the_file(tmp_path, photos, aiy_model_dir, cli_env):
    camera, db = tmp_path / "cam", tmp_path / "state" / "trailcam.db"
    camera.mkdir()
    (camera / "good.jpg").write_bytes(photos[0])
    (camera / "empty.jpg").write_bytes(b"")
    config = write_config(tmp_path / "edge.toml", camera, db, aiy_model_dir / "model.tflite",
                          logging={"level": "WARNING"})
    result = edge(["run", "--once", "--config", str(config)], cli_env)
    assert result.returncode == 0, result.stderr
    # Lines of our logging format; the TFLite runtime prints its own "INFO: Created TensorFlow Lite
    # XNNPACK delegate" from C++, outside Python logging.
    lines = [line for line in result.stderr.strip().splitlines() if re.match(r"\d{4}-\d\d-\d\d ", line)]
    assert len(lines) == 1, result.stderr  # WARNING: no INFO lines, one line for the one event
    assert " WARNING " in lines[0] and str(camera / "empty.jpg") in lines[0]
    assert ok_frames(db) == 1


def test_archive_limit_and_row_pruning_in_the_running_daemon(tmp_path, birds25_dir, aiy_model_dir, cli_env):
    from datetime import datetime, timedelta

    camera, archive, db = tmp_path / "cam", tmp_path / "archive", tmp_path / "state" / "trailcam.db"
    camera.mkdir()
    taken = datetime(2020, 5, 1, 6, 0, 0)
    for index, (species, number) in enumerate((s, n) for s in SPECIES for n in (1, 2, 3)):
        # visits 10 minutes apart, six years old: every row is past prune_frames_after_days
        photo = jpeg_bytes(birds25_dir / species / f"{number}.jpg", taken + timedelta(minutes=10 * index))
        (camera / f"IMG_{index:04d}.JPG").write_bytes(photo)
    config = write_config(tmp_path / "edge.toml", camera, db, aiy_model_dir / "model.tflite",
                          retention={"after_processing": "archive", "archive_dir": archive,
                                     "archive_max_gb": 1e-9, "exemplars_per_species": 1,
                                     "prune_frames_after_days": 30, "housekeeping_interval_s": 0.3,
                                     "min_free_mb": 1})
    daemon = start(tmp_path, config, cli_env, None)
    try:
        wait_for(lambda: db.exists() and query_rows(db, "SELECT SUM(frames) FROM daily_tallies") == [(9,)], 90,
                 what="9 frames counted")

        def only_exemplars_left() -> bool:
            species = query_rows(db, "SELECT COUNT(DISTINCT species) FROM predictions p JOIN frames f ON f.id = p.frame_id "
                               "WHERE p.rank = 1") if db.exists() else [(0,)]
            remaining = query_rows(db, "SELECT species, stored_path FROM frames")
            files = sorted(str(p) for p in archive.rglob("*") if p.is_file())
            return (len(remaining) == len({s for s, _ in remaining}) and species[0][0] > 0
                    and files == sorted(p for _, p in remaining))

        wait_for(only_exemplars_left, 30, what="archive and rows reduced to one exemplar per species")
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(60) == 0
    finally:
        daemon.kill()
    best = query_rows(db, "SELECT species, confidence FROM frames")
    assert best and all(conf is not None for _, conf in best)
    assert query_rows(db, "SELECT SUM(frames) FROM daily_tallies") == [(9,)]  # counts kept forever
    assert query_rows(db, "SELECT SUM(frame_count) FROM events") == [(9,)]
    assert query_rows(db, "PRAGMA integrity_check") == [("ok",)]
    assert not list(camera.glob("*.JPG"))


def test_delete_mode_removes_frames_and_later_copies_of_them(tmp_path, photos, aiy_model_dir, cli_env):
    camera, db = tmp_path / "cam", tmp_path / "state" / "trailcam.db"
    camera.mkdir()
    config = write_config(tmp_path / "edge.toml", camera, db, aiy_model_dir / "model.tflite",
                          retention={"after_processing": "delete", "min_free_mb": 1})
    daemon = start(tmp_path, config, cli_env, None)
    try:
        wait_for(lambda: "backlog of 0" in daemon.output(), 90, what="daemon started")
        drop(camera, "IMG_0001.JPG", photos[0])
        wait_for(lambda: ok_frames(db) == 1 and not (camera / "IMG_0001.JPG").exists(), 60,
                 what="frame recorded, then deleted")
        drop(camera, "IMG_0001.JPG", photos[0])  # a sync tool restores what was deleted
        drop(camera, "IMG_0002.JPG", photos[1])
        wait_for(lambda: ok_frames(db) == 2 and not any(camera.iterdir()), 60,
                 what="the new frame recorded, the copy removed")
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(60) == 0
    finally:
        daemon.kill()
    assert query_rows(db, "SELECT COUNT(*) FROM frames") == [(2,)]
    assert "a copy of frame 1, already recorded" in daemon.output()


def test_watching_figures_in_status_and_metrics(tmp_path, photos, aiy_model_dir, cli_env):
    """What inotify missed (a hard link: IN_CREATE only, no close, no rename) is found by the periodic
    rescan; a symlink and a FIFO renamed in are skipped. Each shows in the log, in `edge status`
    and in the Prometheus metrics."""
    camera, staging, db = tmp_path / "cam", tmp_path / "staging", tmp_path / "state" / "trailcam.db"
    camera.mkdir()
    staging.mkdir()
    port = free_port()
    config = write_config(tmp_path / "edge.toml", camera, db, aiy_model_dir / "model.tflite",
                          health={"metrics_port": port})
    config.write_text(config.read_text().replace('name = "cam"\n', 'name = "cam"\nrescan_interval_s = 0.5\n'))
    daemon = start(tmp_path, config, cli_env, None)
    try:
        wait_for(lambda: "ready: model" in daemon.output(), 90, what="daemon ready")
        (staging / "linked.jpg").write_bytes(photos[0])
        os.utime(staging / "linked.jpg", (time.time() - 600,) * 2)  # complete long ago: not "young"
        os.link(staging / "linked.jpg", camera / "linked.jpg")
        os.symlink(staging / "linked.jpg", staging / "link.jpg")
        os.rename(staging / "link.jpg", camera / "link.jpg")
        os.mkfifo(staging / "pipe.jpg")
        os.rename(staging / "pipe.jpg", camera / "pipe.jpg")
        wait_for(lambda: ok_frames(db) >= 1, 60, what="the hard-linked frame recorded")

        def status() -> dict:
            result = edge(["status", "--config", str(config), "--format", "json"], cli_env)
            assert result.returncode == 0, result.stderr
            return json.loads(result.stdout)["daemon"]

        figures = wait_for(lambda: (d := status())["rescan_found"] == 1 and len(d["frames_skipped"]) == 2 and d, 30,
                           what="rescan and skip figures in edge status")
        assert figures["frames_skipped"] == {"symlink": 1, "not_regular": 1}
        assert figures["last_rescan_at"]
        table = edge(["status", "--config", str(config)], cli_env).stdout
        assert "2 skipped (not_regular 1, symlink 1), 1 found by rescan (last " in table

        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for family in text_string_to_metric_families(body) for s in family.samples}
        assert samples[("trailcam_rescan_found_frames_total", ())] == 1
        assert samples[("trailcam_frames_skipped_total", (("reason", "symlink"),))] == 1
        assert samples[("trailcam_frames_skipped_total", (("reason", "not_regular"),))] == 1
        # A later rescan (its time has moved on) found nothing more: nothing is taken twice.
        later = wait_for(lambda: (d := status())["last_rescan_at"] > figures["last_rescan_at"] and d, 30,
                         what="a later rescan")
        assert later["rescan_found"] == 1
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(60) == 0
    finally:
        daemon.kill()
    log = daemon.output()
    assert f"camera cam: rescan found 1 frame(s) that inotify did not report (e.g. {camera / 'linked.jpg'})" in log
    assert f"frame {camera / 'link.jpg'}: skipped: symbolic link" in log
    assert f"frame {camera / 'pipe.jpg'}: skipped: a FIFO" in log
    assert ok_frames(db) == 1 and "Traceback" not in log
