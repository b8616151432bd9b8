"""Live cameras against real streams: an H.264 clip made from real photos (an empty trail-camera
scene, then a real cardinal) served over RTSP on loopback (Debian's ffmpeg feeding Debian's
rtsp-server-perl relay) and over HTTP MJPEG (ffmpeg itself), read by the real daemon.

* a motion episode becomes frames, the frames a counted visit; the server stopped and started
  again: the reader says so (log, status.json, `edge status`, metrics) and reconnects;
* the password of the URL appears nowhere: not in the log, status.json, `edge status`, `edge check`,
  the MQTT messages a real mosquitto carried, the metrics, nor the web app's pages;
* SIGKILL while the stream runs: after a restart nothing committed is lost or counted twice;
* HTTP MJPEG: a visit counted too.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.edge.conftest import DaemonProcess, count_rows, query_rows, toml_value
from tests.fixtures.broker import Subscriber, free_port
from tests.fixtures.streams import MjpegServer, RtspServer, make_clip, need_stream_tools
from tests.fixtures.waiting import wait_for

PASSWORD = "Feeder-Pa55word"
USER = "admin"
CARDINAL = "Cardinalis cardinalis"
VISITS = f"SELECT count(*) FROM events WHERE species = '{CARDINAL}'"


@pytest.fixture(scope="module")
def clip(tmp_path_factory, trailcam_nobird_dir: Path, birds25_dir: Path) -> Path:
    """6 s of an empty real scene, then 4 s with a real cardinal; the servers loop it."""
    need_stream_tools("ffmpeg")
    folder = tmp_path_factory.mktemp("clip")
    return make_clip(folder / "feeder.mp4", trailcam_nobird_dir / "speciesnet__test_data_blank.jpg",
                     birds25_dir / "NORTHERN CARDINAL" / "1.jpg")


@pytest.fixture
def rtsp_server(clip: Path, tmp_path: Path):
    need_stream_tools("ffmpeg", "rtsp-server-perl")
    server = RtspServer(clip, tmp_path / "rtsp").start()
    yield server
    server.stop()


def write_config(path: Path, *, source: str, db: Path, model: Path, mqtt_port: int | None = None,
                 metrics_port: int | None = None, web_port: int | None = None, transport: str = "udp") -> Path:
    lines = ["[station]", 'device_id = "feeder-station"', "[storage]", f"database = {toml_value(db)}",
             "[model]", f"path = {toml_value(model)}", "[health]", "status_interval_s = 0.5"]
    if metrics_port:
        lines.append(f"metrics_port = {metrics_port}")
    if mqtt_port:
        lines += ["[mqtt]", "enabled = true", 'host = "127.0.0.1"', f"port = {mqtt_port}"]
    if web_port:
        lines += ["[web]", f"port = {web_port}"]
    lines += ["[[cameras]]", 'name = "feeder"', f"source = {toml_value(source)}", "[cameras.live]",
              f'transport = "{transport}"', "connect_timeout_s = 3", "read_timeout_s = 3", "reconnect_max_s = 4"]
    path.write_text("\n".join(lines) + "\n")
    return path


def status_json(db: Path) -> dict:
    try:
        return json.loads((db.parent / "status.json").read_text())
    except (OSError, ValueError):
        return {}


def stream(db: Path) -> dict:
    streams = status_json(db).get("streams") or [{}]
    return streams[0]


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode("utf-8", "replace")


def test_rtsp_visit_reconnect_and_the_password_nowhere(rtsp_server: RtspServer, tmp_path: Path, aiy_model: Path,
                                                       cli_env: dict, broker) -> None:
    db = tmp_path / "state" / "trailcam.db"
    metrics_port, web_port = free_port(), free_port()
    config = write_config(tmp_path / "edge.toml", source=rtsp_server.url(USER, PASSWORD), db=db, model=aiy_model,
                          mqtt_port=broker.port, metrics_port=metrics_port, web_port=web_port)
    subscriber = Subscriber(broker, ["#"])

    checked = subprocess.run([sys.executable, "-m", "edge", "check", "--config", str(config)], env=cli_env,
                             capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"live rtsp://***@127.0.0.1:{rtsp_server.client_port}/cam" in checked.stdout

    daemon = DaemonProcess(["--config", str(config)], cli_env, tmp_path / "run.log")
    try:
        # The bird appears 6 s into the looping clip: a motion episode, frames, a counted visit.
        wait_for(lambda: count_rows(db, VISITS) >= 1, 90, what="a cardinal visit from the RTSP stream")
        wait_for(lambda: stream(db).get("state") == "connected" and stream(db).get("episodes", 0) >= 1, 30,
                 what="status.json: the stream connected, an episode seen")
        live_folder = db.parent / "live" / "feeder"
        assert any(live_folder.glob("*.jpg")), "the frames that carried the visit are kept in the station's storage"
        frames = query_rows(db, "SELECT path, time_source FROM frames WHERE species = ?", (CARDINAL,))
        assert frames and all(Path(path).parent == live_folder and source == "exif" for path, source in frames)

        # The camera goes away: the reader says so and tries again with backoff.
        rtsp_server.stop()
        wait_for(lambda: stream(db).get("state") == "reconnecting" and stream(db).get("next_try_in_s") is not None,
                 30, what="status.json: reconnecting, with the next try")
        status = subprocess.run([sys.executable, "-m", "edge", "status", "--config", str(config)], env=cli_env,
                                capture_output=True, text=True, timeout=60)
        assert "stream feeder" in status.stdout and "reconnecting" in status.stdout, status.stdout
        metrics = fetch(f"http://127.0.0.1:{metrics_port}/metrics")
        assert 'trailcam_stream_up{camera="feeder"} 0.0' in metrics
        reconnects_before = stream(db)["reconnects"]
        assert reconnects_before >= 1

        # It comes back: the reader reconnects by itself.
        rtsp_server.start()
        wait_for(lambda: stream(db).get("state") == "connected" and stream(db).get("connects", 0) >= 2, 60,
                 what="status.json: connected again")
        assert "lost" in daemon.output() and "back after" in daemon.output()
        wait_for(lambda: 'trailcam_stream_up{camera="feeder"} 1.0' in fetch(f"http://127.0.0.1:{metrics_port}/metrics"),
                 30, what="metrics: the stream up again")
        metrics = fetch(f"http://127.0.0.1:{metrics_port}/metrics")
        status = subprocess.run([sys.executable, "-m", "edge", "status", "--config", str(config), "--format", "json"],
                                env=cli_env, capture_output=True, text=True, timeout=60)
        assert json.loads(status.stdout)["daemon"]["streams"][0]["source"].startswith("rtsp://***@")
        wait_for(lambda: any(m.topic.endswith("/events") for m in subscriber.messages), 60,
                 what="the visit published on MQTT")

        # The web app, over the same database: the pages and its health page (the stream's status).
        web = subprocess.Popen([sys.executable, "-m", "edge", "web", "--config", str(config)], env=cli_env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            base = f"http://127.0.0.1:{web_port}"
            health = wait_for(lambda: _try_fetch(base + "/health"), 60, what="edge web answering")
            event_id = query_rows(db, "SELECT id FROM events ORDER BY id LIMIT 1")[0][0]
            pages = [health] + [fetch(base + page) for page in ("/", "/events", f"/event/{event_id}", "/species")]
        finally:
            web.terminate()
            web.wait(timeout=30)
        assert "rtsp://***@" in health
    finally:
        daemon.signal(15)
        daemon.wait(60)
        subscriber.client.loop_stop()
    seen = {
        "log": daemon.output(),
        "status.json": (db.parent / "status.json").read_text(),
        "edge check": checked.stdout + checked.stderr,
        "edge status": status.stdout + status.stderr,
        "mqtt": "\n".join(m.topic + " " + m.payload for m in subscriber.messages),
        "metrics": metrics,
        "web": "\n".join(pages),
    }
    assert seen["mqtt"] and seen["web"]
    for where, text in seen.items():
        assert PASSWORD not in text, f"the stream's password appears in {where}"
        assert f"{USER}:" not in text, f"the stream's user appears in {where}"


def _try_fetch(url: str) -> str | None:
    try:
        return fetch(url)
    except OSError:
        return None


def test_sigkill_during_a_stream_loses_nothing_committed_and_counts_nothing_twice(
        rtsp_server: RtspServer, tmp_path: Path, aiy_model: Path, cli_env: dict) -> None:
    db = tmp_path / "state" / "trailcam.db"
    config = write_config(tmp_path / "edge.toml", source=rtsp_server.url(USER, PASSWORD), db=db, model=aiy_model)
    first = DaemonProcess(["--config", str(config)], cli_env, tmp_path / "run1.log")
    try:
        wait_for(lambda: count_rows(db, VISITS) >= 1 and count_rows(db, "SELECT count(*) FROM frames") >= 5, 90,
                 what="a visit committed from the stream")
    finally:
        first.kill()  # SIGKILL: no stop hooks, a frame may be half written or unprocessed
    frames_before = {row[0]: row[1:] for row in query_rows(db, "SELECT sha256, species, event_id FROM frames")}
    events_before = query_rows(db, "SELECT uid, species, frame_count FROM events ORDER BY id")
    tallies_before = dict(((day, species), (events, frames)) for day, species, events, frames in
                          query_rows(db, "SELECT day, species, events, frames FROM daily_tallies"))

    second = DaemonProcess(["--config", str(config)], cli_env, tmp_path / "run2.log")
    try:
        wait_for(lambda: status_json(db).get("pid") == second.proc.pid and stream(db).get("state") == "connected",
                 60, what="the restarted daemon reading the stream")
        live_folder = db.parent / "live" / "feeder"
        # Every frame the first run left in the folder, processed or not, is recorded now.
        wait_for(lambda: {str(p) for p in live_folder.glob("*.jpg")} <= {
            row[0] for row in query_rows(db, "SELECT path FROM frames")}, 60, what="the folder's frames all recorded")
    finally:
        second.signal(15)
        second.wait(60)
    frames_after = {row[0]: row[1:] for row in query_rows(db, "SELECT sha256, species, event_id FROM frames")}
    for sha, row in frames_before.items():
        assert frames_after.get(sha) == row, "a frame committed before the kill changed or vanished"
    assert count_rows(db, "SELECT count(*) FROM frames") == count_rows(db, "SELECT count(DISTINCT sha256) FROM frames")
    after = {uid: (species, count) for uid, species, count in query_rows(db, "SELECT uid, species, frame_count FROM events")}
    for uid, _species, count in events_before:
        assert uid in after and after[uid][1] >= count, "a committed visit was lost"
    for key, (events, frames) in tallies_before.items():
        now = query_rows(db, "SELECT events, frames FROM daily_tallies WHERE day = ? AND species = ?", key)
        assert now and now[0][0] >= events and now[0][1] >= frames
    # The tallies are exactly the recorded frames and visits: nothing counted twice.
    for species, events, frames in query_rows(db, "SELECT species, SUM(events), SUM(frames) FROM daily_tallies "
                                                  "GROUP BY species"):
        assert frames == count_rows(db, "SELECT count(*) FROM frames WHERE species = ? AND status = 'ok'", (species,))
        assert events == count_rows(db, "SELECT count(*) FROM events WHERE species = ?", (species,))


def test_http_mjpeg_camera_counts_a_visit(clip: Path, tmp_path: Path, aiy_model: Path, cli_env: dict) -> None:
    need_stream_tools("ffmpeg")
    server = MjpegServer(clip, tmp_path / "mjpeg").start()
    db = tmp_path / "state" / "trailcam.db"
    config = write_config(tmp_path / "edge.toml", source=server.url(USER, PASSWORD), db=db, model=aiy_model)
    daemon = DaemonProcess(["--config", str(config)], cli_env, tmp_path / "run.log")
    try:
        wait_for(lambda: count_rows(db, VISITS) >= 1, 90, what="a cardinal visit from the MJPEG stream")
        assert "mpjpeg" in (stream(db).get("video") or "") or "mjpeg" in (stream(db).get("video") or "")
    finally:
        daemon.signal(15)
        daemon.wait(60)
        server.stop()
    assert f"http://***@127.0.0.1:{server.port}/video.mjpg" in daemon.output()
    assert PASSWORD not in daemon.output()
