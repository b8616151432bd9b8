"""edge.ingest.frame_file on real files, FIFOs, devices, procfs and symlinks: only regular files are read,
nothing blocks, no symlink leads out of the camera folder, and no read goes past the limit."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from edge.ingest.frame_file import FrameTooLarge, NotRegularFile, SymlinkRefused, open_frame, read_frame


def _call_with_deadline(function, seconds: float = 10.0):
    """Run `function` on a thread: a call that blocks fails the test instead of hanging it."""
    result: dict = {}

    def run() -> None:
        try:
            result["value"] = function()
        except BaseException as error:  # noqa: BLE001 - handed back to the test
            result["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{function} blocked for {seconds} s"
    if "error" in result:
        raise result["error"]
    return result["value"]


def test_a_regular_file_is_read_whole_with_the_descriptors_stat(tmp_path: Path) -> None:
    path = tmp_path / "frame.jpg"
    path.write_bytes(b"\xff\xd8" + os.urandom(100_000) + b"\xff\xd9")
    data, info = read_frame(path, max_bytes=200_000)
    assert data == path.read_bytes()
    assert (info.st_ino, info.st_size) == (os.stat(path).st_ino, len(data))
    exact, _ = read_frame(path, max_bytes=len(data))  # the limit itself is allowed
    assert exact == data


def test_a_file_over_the_limit_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "video.jpg"
    path.write_bytes(b"x" * 5000)
    with pytest.raises(FrameTooLarge) as refused:
        read_frame(path, max_bytes=4999)
    assert refused.value.size == 5000 and not refused.value.read_more
    assert "5000 bytes > 4999" in str(refused.value)


def test_the_read_is_bounded_when_fstat_says_less_than_there_is() -> None:
    """procfs files are regular files that fstat calls 0 bytes long: the read itself must stop."""
    path = "/proc/self/maps"
    if not os.path.exists(path):
        pytest.skip("no procfs")
    with open_frame(path) as handle:
        assert handle.stat.st_size == 0  # what a size check alone would have trusted
        with pytest.raises(FrameTooLarge) as refused:
            handle.read(max_bytes=64)
    assert refused.value.read_more and "more than 64 bytes" in str(refused.value)
    data, _ = read_frame(path, max_bytes=10_000_000)
    assert len(data) > 64


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "x.jpg"
    os.mkfifo(fifo)
    with pytest.raises(NotRegularFile, match="a FIFO"):
        _call_with_deadline(lambda: read_frame(fifo, max_bytes=1000))


def test_a_device_is_refused(tmp_path: Path) -> None:
    with pytest.raises(NotRegularFile, match="character device"):
        _call_with_deadline(lambda: read_frame("/dev/zero", max_bytes=1000))
    with pytest.raises(NotRegularFile, match="folder"):
        read_frame(tmp_path, max_bytes=1000)


def test_symlinks_are_refused_unless_allowed_and_inside(tmp_path: Path) -> None:
    camera, outside = tmp_path / "cam", tmp_path / "elsewhere"
    (camera / "originals").mkdir(parents=True)
    outside.mkdir()
    (camera / "originals" / "inside.jpg").write_bytes(b"inside")
    (outside / "secret.jpg").write_bytes(b"secret")
    os.symlink(camera / "originals" / "inside.jpg", camera / "inside.jpg")
    os.symlink("originals/inside.jpg", camera / "relative.jpg")
    os.symlink(outside / "secret.jpg", camera / "outside.jpg")
    os.symlink("../elsewhere/secret.jpg", camera / "sneaky.jpg")
    os.symlink("/dev/zero", camera / "zero.jpg")
    os.symlink(camera / "missing.jpg", camera / "dangling.jpg")
    os.mkfifo(camera / "originals" / "pipe")
    os.symlink(camera / "originals" / "pipe", camera / "pipe.jpg")

    for name in ("inside.jpg", "outside.jpg", "zero.jpg"):
        with pytest.raises(SymlinkRefused, match='symlinks = "skip"'):
            read_frame(camera / name, max_bytes=1000)

    assert read_frame(camera / "inside.jpg", max_bytes=1000, allow_symlink_inside=camera)[0] == b"inside"
    assert read_frame(camera / "relative.jpg", max_bytes=1000, allow_symlink_inside=camera)[0] == b"inside"
    for name in ("outside.jpg", "sneaky.jpg", "zero.jpg"):
        with pytest.raises(SymlinkRefused, match="outside the camera folder"):
            read_frame(camera / name, max_bytes=1000, allow_symlink_inside=camera)
    with pytest.raises(FileNotFoundError):
        read_frame(camera / "dangling.jpg", max_bytes=1000, allow_symlink_inside=camera)
    # Inside, but a FIFO: opened without blocking, refused on the descriptor's fstat.
    with pytest.raises(NotRegularFile, match="a FIFO"):
        _call_with_deadline(lambda: read_frame(camera / "pipe.jpg", max_bytes=1000, allow_symlink_inside=camera))


def test_a_vanished_file_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_frame(tmp_path / "gone.jpg", max_bytes=1000)
