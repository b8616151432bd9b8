"""Edge daemon benchmarks, measured side by side in one run (medians of repeated rounds).

    python -m benchmarks.edge_bench [--rounds 3] [--large 60]

1. End-to-end frames/s of the daemon (frames written into the watched folder → rows
   committed, real inotify, real SQLite with one fsync'd transaction per frame) vs a bare
   decode+invoke loop on the same model and frames.                      goal >= 0.9
2. 12 MP JPEGs: draft-mode decoding vs full decoding, speed and top-1 agreement.
                                                                          goal >= 4x, >= 99 %
3. Daemon resident memory (peak RSS of `edge run` as a process) with a MobileNet-class
   int8 model (AIY birds V1: MobileNet V2, uint8), and whether TensorFlow was ever loaded.
                                                                          goal < 120 MB, never
4. Latency from file close to committed row, p50 and p95, frames arriving one at a time.

Needs ../shared (AIY model, birds25). Prints a Markdown table for README.md, section "Edge daemon".
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("TRAILCAM_SHARED", REPO.parent / "shared"))
AIY = SHARED / "models" / "aiy_birds_v1" / "model.tflite"
BIRDS = SHARED / "data" / "birds25"


def machine() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}"


def photos() -> list[Path]:
    return sorted(BIRDS.glob("*/*.jpg"))


# -- 1. end-to-end vs bare loop ---------------------------------------------------------------


def bare_loop(paths: list[Path], threads: int, draft: bool = False) -> tuple[float, float]:
    """(frames/s, CPU ms/frame) of the plainest possible loop: read, decode, resize, invoke, argmax.

    `draft=True` shrinks in the JPEG decoder first, as the daemon does with big frames.
    """
    from edge.classify.model import load_interpreter_class

    interpreter_class, _ = load_interpreter_class()
    interpreter = interpreter_class(model_path=str(AIY), num_threads=threads)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    started, cpu = time.perf_counter(), time.process_time()
    for path in paths:
        image = Image.open(io.BytesIO(path.read_bytes()))
        if draft:
            image.draft("RGB", (448, 448))
        pixels = np.asarray(image.convert("RGB").resize((224, 224), Image.BILINEAR), np.uint8)
        interpreter.set_tensor(inp["index"], pixels[np.newaxis])
        interpreter.invoke()
        int(np.argmax(interpreter.get_tensor(out["index"])[0]))
    return len(paths) / (time.perf_counter() - started), (time.process_time() - cpu) * 1000 / len(paths)


class InProcessDaemon:
    """The real Daemon (watchers, queue, pipeline, store) with an after-commit timestamp hook."""

    def __init__(self, workdir: Path, threads: int):
        from edge.config import load_config
        from edge.daemon.wiring import build

        self.camera = workdir / "cam"
        self.camera.mkdir(parents=True)
        empty = workdir / "edge.toml"
        empty.write_text("")
        config = load_config(empty, environ={}, overrides={
            "cameras": [{"name": "cam", "path": str(self.camera)}],
            "model": {"path": str(AIY), "threads": threads},
            "storage": {"database": str(workdir / "bench.db")},
        })
        self.daemon = build(config, tick_s=0.2, field=False)
        self.committed: dict[str, float] = {}
        self._target = 0
        self._reached = threading.Event()
        self.daemon.after_frame.append(self._committed)
        self.daemon.start()
        self.thread = threading.Thread(target=self.daemon.loop, daemon=True)
        self.thread.start()

    def _committed(self, outcome) -> None:
        self.committed[outcome.path] = time.perf_counter()
        if len(self.committed) >= self._target:
            self._reached.set()

    def wait_for(self, count: int, timeout: float = 300) -> None:
        """Block (no polling: a busy waiter would steal CPU from the daemon) until `count` commits."""
        self._target = count
        self._reached.clear()
        if len(self.committed) >= count:
            return
        if not self._reached.wait(timeout):
            raise RuntimeError(f"only {len(self.committed)} of {count} frames committed")

    def stop(self) -> None:
        self.daemon.request_stop()
        self.thread.join(30)
        self.daemon.stop()


def frame_set(paths: list[Path], folder: Path, copies: int = 2) -> list[Path]:
    """`copies` x the photos as distinct frames (trailing bytes after the JPEG end marker change
    the content hash, not the picture), written once so both contenders read the same files."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for copy in range(copies):
        for index, path in enumerate(paths):
            target = folder / f"{copy}_{index:04d}.jpg"
            target.write_bytes(path.read_bytes() + b"\0" * copy)
            out.append(target)
    return out


def daemon_throughput(paths: list[Path], threads: int, workdir: Path) -> tuple[float, float]:
    """frames/s from the start of a burst copy into the watched folder to the last row committed.

    The burst is written by another process (`cp`), as a camera or an uploader would, so the
    benchmark's own writing does not run on the daemon's interpreter.
    """
    runner = InProcessDaemon(workdir, threads)
    try:
        started, cpu = time.perf_counter(), time.process_time()
        subprocess.run(["cp", *map(str, paths), str(runner.camera)], check=True)
        runner.wait_for(len(paths))
        cpu_ms = (time.process_time() - cpu) * 1000 / len(paths)
        return len(paths) / (max(runner.committed.values()) - started), cpu_ms
    finally:
        runner.stop()


def latency(paths: list[Path], threads: int, workdir: Path, gap_s: float = 0.05) -> list[float]:
    """ms from close() of each frame to its committed row, frames arriving one at a time."""
    runner = InProcessDaemon(workdir, threads)
    closed: dict[str, float] = {}
    try:
        for index, path in enumerate(paths):
            target = runner.camera / f"{index:04d}.jpg"
            with open(target, "wb") as handle:
                handle.write(path.read_bytes())
            closed[str(target)] = time.perf_counter()
            runner.wait_for(index + 1)
            time.sleep(gap_s)  # the camera's pace between frames, not a wait for the daemon
        return [(runner.committed[p] - t) * 1000 for p, t in closed.items()]
    finally:
        runner.stop()


# -- 2. draft vs full decoding of 12 MP frames -------------------------------------------------


def large_frames(paths: list[Path], folder: Path) -> list[Path]:
    """12 MP (4000x3000) JPEGs made from the photos, as a trail camera would write them."""
    out = []
    for index, path in enumerate(paths):
        target = folder / f"large_{index:03d}.jpg"
        Image.open(path).convert("RGB").resize((4000, 3000), Image.BICUBIC).save(target, quality=90)
        out.append(target)
    return out


def draft_vs_full(frames: list[Path], threads: int) -> dict[str, float]:
    from edge.classify.model import load_classifier
    from edge.ingest.imaging import decode

    classifier = load_classifier(AIY, threads=threads)
    timings = {True: [], False: []}
    top1 = {True: [], False: []}
    for path in frames:
        data = path.read_bytes()
        for draft in (True, False):  # side by side, alternating
            started = time.perf_counter()
            rgb = decode(data, classifier.input_size, draft=draft).rgb
            timings[draft].append(time.perf_counter() - started)
            top1[draft].append(classifier.classify(rgb, 1)[0][0].index)
    agreement = sum(a == b for a, b in zip(top1[True], top1[False])) / len(frames)
    return {"draft_ms": statistics.median(timings[True]) * 1000, "full_ms": statistics.median(timings[False]) * 1000,
            "agreement": agreement, "n": len(frames)}


# -- 3. memory of the daemon as a process ----------------------------------------------------


def daemon_memory(paths: list[Path], workdir: Path) -> dict[str, object]:
    camera = workdir / "cam"
    camera.mkdir(parents=True)
    for index, path in enumerate(paths):
        shutil.copyfile(path, camera / f"{index:04d}.jpg")
    db = workdir / "mem.db"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "edge", "run", "--model", str(AIY), "--watch", str(camera),
                             "--db", str(db), "--log-level", "WARNING"], env=env, cwd=str(workdir))
    try:
        deadline = time.monotonic() + 300
        while True:
            done = 0
            if db.exists():
                conn = sqlite3.connect(db, timeout=30)
                try:
                    done = conn.execute("SELECT count(*) FROM frames").fetchone()[0]
                except sqlite3.OperationalError:
                    pass
                conn.close()
            if done >= len(paths):
                break
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("daemon did not process the frames")
            time.sleep(0.1)
        status = Path(f"/proc/{proc.pid}/status").read_text()
        maps = Path(f"/proc/{proc.pid}/maps").read_text()
        fields = {line.split(":")[0]: line.split(":")[1].strip() for line in status.splitlines() if ":" in line}
        tensorflow_loaded = any("/tensorflow/" in line or "libtensorflow" in line for line in maps.splitlines())
        return {"rss_mb": int(fields["VmRSS"].split()[0]) / 1024, "peak_mb": int(fields["VmHWM"].split()[0]) / 1024,
                "tensorflow": tensorflow_loaded}
    finally:
        proc.terminate()
        proc.wait(30)


# -- main ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """`argv=None` (the `python -m benchmarks` runner) means the defaults."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.edge_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="rounds of the throughput comparison (median)")
    parser.add_argument("--large", type=int, default=125, help="number of 12 MP frames")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args([] if argv is None else argv)
    if not AIY.is_file() or not BIRDS.is_dir():
        print(f"needs the AIY model and birds25 under {SHARED} (TRAILCAM_SHARED)", file=sys.stderr)
        return 2
    from edge.classify.model import load_interpreter_class

    runtime = load_interpreter_class()[1]
    paths = photos()
    rows: list[tuple[str, str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="edge-bench-") as tmp:
        tmp_path = Path(tmp)
        frames = frame_set(paths, tmp_path / "frames")
        # Each round: bare, daemon, bare; the daemon is compared with the mean of the two bare
        # runs around it, so a machine whose load drifts does not favour either side.
        bare, daemon, ratios, cpu_ratios = [], [], [], []
        bare.append(bare_loop(frames, args.threads))
        for round_ in range(args.rounds):
            daemon.append(daemon_throughput(frames, args.threads, tmp_path / f"tput{round_}"))
            bare.append(bare_loop(frames, args.threads))
            ratios.append(daemon[-1][0] / ((bare[-2][0] + bare[-1][0]) / 2))
            cpu_ratios.append(((bare[-2][1] + bare[-1][1]) / 2) / daemon[-1][1])
        rows.append((f"End-to-end frames/s, daemon vs bare decode+invoke loop ({len(frames)} birds25 frames, AIY)",
                     f"{statistics.median(d[0] for d in daemon):.1f} vs {statistics.median(b[0] for b in bare):.1f}",
                     f"{statistics.median(ratios):.2f}", ">= 0.9"))
        rows.append(("Same, CPU time per frame of the process (insensitive to other load on the machine)",
                     f"{statistics.median(d[1] for d in daemon):.2f} ms vs {statistics.median(b[1] for b in bare):.2f} ms",
                     f"{statistics.median(cpu_ratios):.2f}", ">= 0.9"))

        large_dir = tmp_path / "large"
        large_dir.mkdir()
        large = large_frames(paths[: args.large], large_dir)
        # The same comparison on trail-camera-sized frames (both sides draft-decode them).
        bare_l, daemon_l, ratios_l = [bare_loop(large, args.threads, draft=True)], [], []
        for round_ in range(max(3, args.rounds // 2)):
            daemon_l.append(daemon_throughput(large, args.threads, tmp_path / f"tputl{round_}"))
            bare_l.append(bare_loop(large, args.threads, draft=True))
            ratios_l.append(daemon_l[-1][0] / ((bare_l[-2][0] + bare_l[-1][0]) / 2))
        rows.append((f"Same with 12 MP frames ({len(large)}; both draft-decode)",
                     f"{statistics.median(d[0] for d in daemon_l):.1f} vs {statistics.median(b[0] for b in bare_l):.1f}",
                     f"{statistics.median(ratios_l):.2f}", ">= 0.9"))

        lat = latency(paths[:60], args.threads, tmp_path / "latency")
        p50, p95 = np.percentile(lat, 50), np.percentile(lat, 95)
        rows.append(("Latency file close → committed row (60 frames, one at a time)",
                     f"p50 {p50:.1f} ms, p95 {p95:.1f} ms", "", ""))

        decoding = draft_vs_full(large, args.threads)
        rows.append((f"12 MP JPEG decode+resize, draft vs full ({decoding['n']} frames)",
                     f"{decoding['draft_ms']:.0f} ms vs {decoding['full_ms']:.0f} ms",
                     f"{decoding['full_ms'] / decoding['draft_ms']:.1f}x", ">= 4x"))
        rows.append(("Top-1 agreement, draft vs full (12 MP)", f"{decoding['agreement'] * 100:.1f} %", "", ">= 99 %"))

        memory = daemon_memory(paths, tmp_path / "memory")
        rows.append(("Daemon RSS with AIY MobileNet V2 uint8 (`edge run`, after 125 frames)",
                     f"{memory['rss_mb']:.0f} MB (peak {memory['peak_mb']:.0f} MB)", "", "< 120 MB"))
        rows.append(("TensorFlow loaded by the daemon", "no" if not memory["tensorflow"] else "YES", "", "never"))

    print(f"\nMachine: {machine()}; runtime {runtime}; model threads {args.threads}; medians of {args.rounds} rounds\n")
    print("| Measurement | Result | Ratio | Goal |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
