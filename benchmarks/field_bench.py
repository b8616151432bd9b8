"""Field-operation benchmark: what the service glue costs the daemon per frame.

    python -m benchmarks.field_bench [--frames 60] [--repeats 3]

Side by side in one run (configurations alternated, medians of `--repeats`): the daemon's
processing loop over the same backlog of real photos (birds25, AIY model, `edge run --once`
semantics, in-process) bare, and with FieldOperations attached (sd_notify to a real socket
with a 1 s watchdog, status.json, HealthState, metrics endpoint) for each post-processing
mode: keep, archive (same file system: a rename plus a row update), delete. Goal: field
operation costs < 5% of the bare loop's frames/s.

Needs ../shared (or $TRAILCAM_SHARED) for the model and photos.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from edge.config import load_config
from edge.daemon import Daemon
from edge.operations import FieldOperations

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("TRAILCAM_SHARED", REPO.parent / "shared"))
MODES = ["bare", "keep", "archive", "delete"]


def _photos(count: int) -> list[Path]:
    photos = sorted((SHARED / "data" / "birds25").glob("*/*.jpg"))
    if not photos:
        raise SystemExit(f"birds25 photos not found under {SHARED}/data/birds25 (set TRAILCAM_SHARED)")
    return [photos[i % len(photos)] for i in range(count)]


def _one_run(mode: str, photos: list[Path], work: Path, notify_path: str) -> float:
    """Frames per second of the processing loop (model load and backlog scan excluded)."""
    run = work / f"{mode}-{time.monotonic_ns()}"
    camera = run / "camera"
    camera.mkdir(parents=True)
    for index, photo in enumerate(photos):
        # distinct bytes per copy, so the content hash never skips one as a duplicate
        (camera / f"f{index:04d}.jpg").write_bytes(photo.read_bytes() + index.to_bytes(4, "big"))
    retention = {"after_processing": mode if mode != "bare" else "keep", "min_free_mb": 1}
    if mode == "archive":
        retention["archive_dir"] = str(run / "archive")
    empty = run / "edge.toml"
    empty.touch()
    config = load_config(empty, environ={}, overrides={
        "cameras": [{"name": "cam", "path": str(camera)}],
        "model": {"path": str(SHARED / "models" / "aiy_birds_v1" / "model.tflite")},
        "storage": {"database": str(run / "state" / "trailcam.db")},
        "station": {"device_id": "bench"},
        "retention": retention,
        "health": {"status_interval_s": 1.0, "metrics_port": 0 if mode == "bare" else _free_port()},
    })
    daemon = Daemon(config, once=True)
    if mode != "bare":
        os.environ.update(NOTIFY_SOCKET=notify_path, WATCHDOG_USEC="1000000")
        try:
            FieldOperations(config).attach(daemon)
        finally:
            os.environ.pop("NOTIFY_SOCKET"), os.environ.pop("WATCHDOG_USEC")
    last_commit = [0.0]
    daemon.after_frame.append(lambda _outcome: last_commit.__setitem__(0, time.perf_counter()))
    daemon.start()
    started = time.perf_counter()
    daemon.loop()  # --once: ends after an idle tick, which is not counted
    elapsed = last_commit[0] - started
    done = sum(daemon.stats.processed.get(k, 0) for k in ("ok", "error"))
    daemon.stop()
    if done != len(photos):
        raise SystemExit(f"{mode}: processed {done} of {len(photos)} frames")
    shutil.rmtree(run)
    return done / elapsed


def _drain(sock: socket.socket) -> None:
    try:
        while sock.recv(4096):
            pass
    except OSError:
        return


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cpu() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        name = next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, StopIteration):
        name = platform.processor() or platform.machine()
    return f"{name}, {os.cpu_count()} cores"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    photos = _photos(args.frames)
    rates: dict[str, list[float]] = {mode: [] for mode in MODES}
    with tempfile.TemporaryDirectory(prefix="field-bench-") as tmp:
        work = Path(tmp)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)  # systemd's end, drained as PID 1 does
        notify_path = str(work / "notify.sock")
        listener.bind(notify_path)
        threading.Thread(target=_drain, args=(listener,), daemon=True).start()
        try:
            _one_run("bare", photos[:5], work, notify_path)  # warm the page cache and the model file
            for _ in range(args.repeats):
                for mode in MODES:
                    rates[mode].append(_one_run(mode, photos, work, notify_path))
        finally:
            listener.close()
    bare = statistics.median(rates["bare"])
    print(f"field operation overhead: {args.frames} frames (birds25, AIY int8 MobileNet), "
          f"median of {args.repeats}, {_cpu()}")
    print(f"{'configuration':<28}{'frames/s':>10}{'ratio':>8}{'ms/frame extra':>16}")
    for mode in MODES:
        rate = statistics.median(rates[mode])
        label = "bare daemon loop" if mode == "bare" else f"+ field ops, {mode}"
        extra = 1000 / rate - 1000 / bare
        print(f"{label:<28}{rate:>10.1f}{rate / bare:>8.3f}{extra:>16.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
