"""Helpers for the edge tests: real frames (birds25 re-encoded with crafted EXIF), a real AIY
model, daemons in a thread or a subprocess, and waiting on conditions with deadlines."""

from __future__ import annotations

import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import piexif
import pytest
from PIL import Image

from edge.config import load_config
from edge.daemon.wiring import build
from tests.fixtures.waiting import wait_for  # noqa: F401 - the edge and field tests import it from here


def jpeg_bytes(source: Path | Image.Image, taken: datetime | None = None, offset: str | None = None,
               orientation: int | None = None, quality: int = 92, comment: str | None = None) -> bytes:
    """A real JPEG from a birds25 photo with crafted EXIF (DateTimeOriginal, OffsetTimeOriginal)."""
    image = source if isinstance(source, Image.Image) else Image.open(source)
    exif: dict = {"0th": {}, "Exif": {}, "GPS": {}, "1st": {}}
    if taken is not None:
        exif["Exif"][piexif.ExifIFD.DateTimeOriginal] = taken.strftime("%Y:%m:%d %H:%M:%S").encode()
    if offset is not None:
        exif["Exif"][piexif.ExifIFD.OffsetTimeOriginal] = offset.encode()
    if orientation is not None:
        exif["0th"][piexif.ImageIFD.Orientation] = orientation
    if comment is not None:
        exif["0th"][piexif.ImageIFD.ImageDescription] = comment.encode()
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=quality, exif=piexif.dump(exif))
    return buffer.getvalue()


def query_rows(db_path: Path, sql: str, params: tuple = ()) -> list[tuple]:
    """A reader's own read-only connection, as an operator's would be; no rows while the daemon
    has not yet created the database or the table."""
    if not Path(db_path).exists():
        return []
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError as error:
        if "no such table" in str(error):
            return []
        raise
    finally:
        conn.close()


def count_rows(db_path: Path, sql: str, params: tuple = ()) -> int:
    """The first value of the first row (a COUNT), 0 before the database or table exists."""
    rows = query_rows(db_path, sql, params)
    return rows[0][0] if rows else 0


@pytest.fixture(scope="session")
def aiy_model(aiy_model_dir: Path) -> Path:
    return aiy_model_dir / "model.tflite"


@pytest.fixture(scope="session")
def bird_photo(birds25_dir: Path) -> Callable[[str, int], Path]:
    def photo(species: str = "NORTHERN CARDINAL", number: int = 1) -> Path:
        return birds25_dir / species / f"{number}.jpg"

    return photo


class ThreadDaemon:
    """The real Daemon with its loop on a thread (signals are tested with subprocesses)."""

    def __init__(self, config):
        self.daemon = build(config, field=False)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.daemon.loop()
        except BaseException as error:  # noqa: BLE001 - surfaced by stop()
            self.error = error

    def start(self) -> ThreadDaemon:
        self.daemon.start()
        self.thread.start()
        return self

    def stop(self) -> None:
        self.daemon.request_stop()
        self.thread.join(timeout=30)
        self.daemon.stop()
        if self.error:
            raise self.error


@pytest.fixture
def make_config(tmp_path: Path, aiy_model: Path):
    def make(cameras: list[dict] | None = None, **sections) -> object:
        cams = cameras if cameras is not None else [{"name": "cam", "path": str(tmp_path / "cam")}]
        for cam in cams:
            Path(cam["path"]).mkdir(parents=True, exist_ok=True)
        data = {"cameras": cams, "model": {"path": str(aiy_model)},
                "storage": {"database": str(tmp_path / "trailcam.db")}, "station": {"device_id": "test"}}
        for key, value in sections.items():
            data.setdefault(key, {}).update(value)
        empty = tmp_path / "edge.toml"  # explicit, so a machine's /etc/trailcam/edge.toml is never read
        empty.touch()
        return load_config(empty, overrides=data, environ={})

    return make


@pytest.fixture
def thread_daemon() -> Iterator[Callable]:
    started: list[ThreadDaemon] = []

    def start(config) -> ThreadDaemon:
        runner = ThreadDaemon(config).start()
        started.append(runner)
        return runner

    yield start
    for runner in started:
        if runner.thread.is_alive():
            runner.stop()


class DaemonProcess:
    """`python -m edge run` as the service manager would run it."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path, program: list[str] | None = None):
        self.log_path = log_path
        self.log = open(log_path, "ab")
        program = program or ["-m", "edge", "run"]  # tests may run `edge run` through a wrapper
        self.proc = subprocess.Popen([sys.executable, *program, *args], env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT)

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout: float = 60) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self.log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.log.close()


def write_aiy_bundle(folder: Path, aiy_model: Path, model_id: str) -> Path:
    """A trailcam bundle around the AIY model (labels.txt from its embedded labels, manifest)."""
    import hashlib
    import json
    import shutil
    import zipfile

    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(aiy_model, folder / "model.tflite.new")
    os.replace(folder / "model.tflite.new", folder / "model.tflite")
    with zipfile.ZipFile(aiy_model) as archive:
        labels = archive.read("probability-labels-en.txt").decode()
    (folder / "labels.txt").write_text(labels)
    manifest = {
        "format": "trailcam-bundle", "format_version": 1, "model_id": model_id, "architecture": "mobilenet_v2",
        "quantization": "int8", "num_classes": len(labels.splitlines()), "labels_file": "labels.txt",
        "no_bird_label": "None",  # AIY's embedded English labels call index 964 "None"
        "input": {"shape": [1, 224, 224, 3], "dtype": "uint8"}, "output": {"shape": [1, 965], "dtype": "uint8", "activation": "softmax"},
        "tflite_sha256": hashlib.sha256((folder / "model.tflite").read_bytes()).hexdigest(),
    }
    (folder / "manifest.json.new").write_text(json.dumps(manifest))
    os.replace(folder / "manifest.json.new", folder / "manifest.json")
    return folder


def toml_value(value: object) -> str:
    """One TOML value for a config written by a test (strings and paths quoted as JSON, which TOML reads alike)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value))


def write_toml(path: Path, camera: Path, model: Path, db: Path, extra: str = "") -> Path:
    path.write_text(
        f"""[station]
device_id = "test"
timezone = "Europe/Berlin"

[[cameras]]
name = "feeder"
path = "{camera}"

[model]
path = "{model}"

[storage]
database = "{db}"
{extra}
"""
    )
    return path
