"""Clips made in the tests with PyAV from real photographs: birds25 birds moving over a real
bird-free trail-camera frame (../shared/data/trailcam-nobird), and the edge configuration that
counts them with the shared SSD detector and the AIY classifier.

The photos were chosen because the shared SSD finds and the AIY model names them wherever they
are pasted on this backdrop (checked at three places each, 300 px on 1280x720: confidence
0.76-0.98), so a count asserted below is the daemon's, not luck."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

pytest.importorskip("av", reason="the `video` extra (PyAV) is not installed")

from PIL import Image  # noqa: E402

from benchmarks.clip_scenes import Move, Segment, moving_frames, write_clip  # noqa: E402

BACKDROP = "speciesnet__test_data_blank.jpg"
SIZE = (1280, 720)
FPS = 10


@pytest.fixture(scope="session")
def backdrop(trailcam_nobird_dir: Path) -> Image.Image:
    return Image.open(trailcam_nobird_dir / BACKDROP).convert("RGB")


@pytest.fixture(scope="session")
def photo(birds25_dir: Path) -> Callable[[str, int], Path]:
    def pick(species: str, number: int) -> Path:
        return birds25_dir / species / f"{number}.jpg"
    return pick


@pytest.fixture(scope="session")
def feeder_pictures(birds25_dir: Path, backdrop: Image.Image, photo) -> list[Image.Image]:
    """6 s: 1 s empty; 2 s one chickadee flying in; 2 s two chickadees and a cardinal, moving;
    1 s empty. MaxN: 2 chickadees, 1 cardinal (seen together with them)."""
    chickadee, second, cardinal = (photo("BLACK-CAPPED CHICKADEE", 3), photo("BLACK-CAPPED CHICKADEE", 5),
                                   photo("NORTHERN CARDINAL", 4))
    plan = [Segment(1.0),
            Segment(2.0, [Move(chickadee, (60, 120), (220, 140))]),
            Segment(2.0, [Move(chickadee, (220, 140), (260, 120)), Move(second, (520, 380), (580, 360)),
                          Move(cardinal, (920, 60), (900, 100))]),
            Segment(1.0)]
    return [picture for picture, _ in moving_frames(birds25_dir, backdrop, plan, SIZE, FPS)]


@pytest.fixture(scope="session")
def goldfinch_pictures(birds25_dir: Path, backdrop: Image.Image, photo) -> list[Image.Image]:
    """3 s: a goldfinch crossing the frame."""
    plan = [Segment(3.0, [Move(photo("AMERICAN GOLDFINCH", 1), (100, 300), (800, 260))])]
    return [picture for picture, _ in moving_frames(birds25_dir, backdrop, plan, SIZE, FPS)]


def set_mtime(path: Path, when: datetime) -> None:
    os.utime(path, (when.timestamp(), when.timestamp()))


def faststart_clip(path: Path, pictures: list[Image.Image], **kwargs) -> Path:
    """An MP4 with its index first (as cameras that stream write it): a cut copy still opens."""
    import av

    output = av.open(str(path), mode="w", format="mp4", options={"movflags": "faststart"})
    stream = output.add_stream("h264", rate=FPS)
    stream.width, stream.height = pictures[0].size
    stream.pix_fmt = "yuv420p"
    stream.options = {"preset": "ultrafast", "crf": "23"}
    stream.codec_context.gop_size = kwargs.get("gop", 5)
    for picture in pictures:
        for packet in stream.encode(av.VideoFrame.from_image(picture)):
            output.mux(packet)
    for packet in stream.encode():
        output.mux(packet)
    output.close()
    return path


def write_config(path: Path, camera: Path, db: Path, aiy_model_dir: Path, ssd_detector_dir: Path,
                 extra: str = "") -> Path:
    path.write_text(f"""
[station]
timezone = "UTC"
device_id = "clips"
[model]
path = "{aiy_model_dir}"
labels = "{aiy_model_dir / 'labelmap.csv'}"
[detector]
path = "{ssd_detector_dir}"
[[cameras]]
name = "feeder"
path = "{camera}"
settle_s = 1.0
[cameras.deployment]
latitude = 40.71
longitude = -74.0
[storage]
database = "{db}"
[project]
title = "Clips"
sampling_design = "opportunistic"
license = "CC0-1.0"
[[project.contributors]]
title = "Ada Observer"
role = "contact"
{extra}
""")
    return path


def edge(args: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def rows(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


__all__ = ["FPS", "SIZE", "edge", "faststart_clip", "rows", "set_mtime", "write_clip", "write_config"]
