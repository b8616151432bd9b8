"""Field-operation benchmark: what the service glue costs the daemon per frame.

    python -m benchmarks.field_bench [--frames 125] [--repeats 4]

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
import sys
import tempfile
import threading
import time
from pathlib import Path

from edge.config import load_config
from edge.daemon.wiring import build

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("TRAILCAM_SHARED", REPO.parent / "shared"))
MODES = ["bare", "keep", "archive", "delete"]


def _photos(count: int) -> list[Path]:
    photos = sorted((SHARED / "data" / "birds25").glob("*/*.jpg"))
    if not photos:
        raise SystemExit(f"birds25 photos not found under {SHARED}/data/birds25 (set TRAILCAM_SHARED)")
    return [photos[i % len(photos)] for i in range(count)]


def _timed(hook, spent: list[float]):
    def wrapper(*args):
        started = time.perf_counter()
        try:
            return hook(*args)
        finally:
            spent[0] += time.perf_counter() - started
    return wrapper


def _one_run(mode: str, photos: list[Path], work: Path, notify_path: str) -> tuple[float, float]:
    """(frames per second of the processing loop, seconds per frame inside the field-operation hooks).

    Model load and backlog scan are excluded; so is the idle tick that ends `--once`."""
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
    if mode == "bare":
        daemon = build(config, once=True, field=False)
    else:
        os.environ.update(NOTIFY_SOCKET=notify_path, WATCHDOG_USEC="1000000")
        try:
            daemon = build(config, once=True)
        finally:
            os.environ.pop("NOTIFY_SOCKET"), os.environ.pop("WATCHDOG_USEC")
    spent = [0.0]
    daemon.after_frame[:] = [_timed(hook, spent) for hook in daemon.after_frame]
    daemon.on_tick[:] = [_timed(hook, spent) for hook in daemon.on_tick]
    last_commit = [0.0]
    daemon.after_frame.append(lambda _outcome: last_commit.__setitem__(0, time.perf_counter()))
    daemon.start()
    started = time.perf_counter()
    daemon.loop()  # --once: ends after an idle tick, which is not counted
    elapsed = last_commit[0] - started
    done = sum(daemon.health.processed.get(k, 0) for k in ("ok", "error"))
    daemon.stop()
    if done != len(photos):
        raise SystemExit(f"{mode}: processed {done} of {len(photos)} frames")
    shutil.rmtree(run)
    return done / elapsed, spent[0] / done


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
    parser.add_argument("--frames", type=int, default=125)
    parser.add_argument("--repeats", type=int, default=4)
    args = parser.parse_args([] if argv is None else argv)  # `python -m benchmarks` calls main()
    photos = _photos(args.frames)
    rates: dict[str, list[float]] = {mode: [] for mode in MODES}
    hooks: dict[str, list[float]] = {mode: [] for mode in MODES}
    with tempfile.TemporaryDirectory(prefix="field-bench-") as tmp:
        work = Path(tmp)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)  # systemd's end, drained as PID 1 does
        notify_path = str(work / "notify.sock")
        listener.bind(notify_path)
        threading.Thread(target=_drain, args=(listener,), daemon=True).start()
        try:
            _one_run("bare", photos[:5], work, notify_path)  # warm the page cache and the model file
            for repeat in range(args.repeats):
                for mode in MODES[repeat % len(MODES):] + MODES[:repeat % len(MODES)]:  # rotate the order
                    rate, hook_s = _one_run(mode, photos, work, notify_path)
                    rates[mode].append(rate)
                    hooks[mode].append(hook_s)
        finally:
            listener.close()
    bare = statistics.median(rates["bare"])
    print(f"field operation overhead: {args.frames} frames (birds25, AIY int8 MobileNet), "
          f"median of {args.repeats}, {_cpu()}")
    print(f"{'configuration':<26}{'frames/s':>10}{'vs bare':>9}{'hooks ms/frame':>16}{'hooks share':>13}")
    for mode in MODES:
        rate = statistics.median(rates[mode])
        hook_ms = statistics.median(hooks[mode]) * 1000
        label = "bare daemon loop" if mode == "bare" else f"+ field ops, {mode}"
        share = hook_ms / (1000 / rate)
        print(f"{label:<26}{rate:>10.1f}{rate / bare:>9.3f}{hook_ms:>16.3f}{share:>12.1%}")
    print("hooks = time inside FieldOperations' after_frame/on_tick hooks per frame (the overhead itself);")
    print("'vs bare' compares whole-loop throughput, so it also carries the machine's noise.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
