"""Resident memory of the processes that stay up for months, in the full environment and edge-only.

    python -m benchmarks.memory_bench [--frames 40] [--repeats 3] [--edge-python .venv-edge/bin/python]

Side by side in one run, each row `--repeats` times (the median is printed):

- `edge run --once` over `--frames` birds25 photos with the shared AIY classifier: peak RSS
  (`/usr/bin/time`-style, from wait4's ru_maxrss);
- `edge web` after the Today, species, events and health pages: VmRSS.

Three variants per process: this interpreter as `edge` runs it (pandas kept out by the front
door), this interpreter with pandas imported first (what every process paid before: sqlite-utils
imports pandas wherever it is installed), and the edge-only environment's interpreter (no pandas,
no TensorFlow, the `edge-tflite` and `web` extras only) when it exists. Goal (issue 25): the full
environment costs the device's processes no more than the edge-only one (within 10 %).
Needs ../shared (birds25, the AIY model).
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TRAILCAM_SHARED", REPO.parent / "shared"))
AIY = SHARED / "models" / "aiy_birds_v1" / "model.tflite"
BIRDS = SHARED / "data" / "birds25"
GOAL_RATIO = 1.10

# `python -c` programs: the front door as the console script runs it, and the old behaviour.
AS_INSTALLED = "from edge.cli import main; raise SystemExit(main())"
PANDAS_FIRST = "import pandas; from edge.cli import main; raise SystemExit(main())"


def _station(root: Path, frames: int) -> Path:
    folder = root / "frames"
    folder.mkdir(parents=True)
    photos = sorted(BIRDS.rglob("*.jpg"))[:frames]
    for n, photo in enumerate(photos):
        (folder / f"{n:04d}_{photo.parent.name.replace(' ', '_')}.jpg").write_bytes(photo.read_bytes())
    config = root / "edge.toml"
    config.write_text(f'[storage]\ndatabase = "{root / "edge.db"}"\n[model]\npath = "{AIY}"\n'
                      f'[[cameras]]\nname = "cam"\npath = "{folder}"\n')
    return config


def _peak_run_mb(python: str, program: str, config: Path) -> float:
    for leftover in config.parent.glob("edge.db*"):
        leftover.unlink()
    proc = subprocess.Popen([python, "-c", program, "run", "--once", "--config", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{python} edge run exited {proc.returncode}")
    return usage.ru_maxrss / 1024


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _web_mb(python: str, program: str, config: Path) -> float:
    port = _free_port()
    proc = subprocess.Popen([python, "-c", program, "web", "--config", str(config), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{python} edge web did not start") from None
                time.sleep(0.1)
        for page in ("/", "/species", "/events", "/health"):
            urllib.request.urlopen(f"http://127.0.0.1:{port}{page}", timeout=30).read()
        status = Path(f"/proc/{proc.pid}/status").read_text()
        return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1]) / 1024
    finally:
        proc.terminate()
        proc.wait(30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--edge-python", default=str(REPO / ".venv-edge" / "bin" / "python"),
                        help="the edge-only environment's interpreter (skipped when absent)")
    args = parser.parse_args(argv)
    if not AIY.is_file() or not BIRDS.is_dir():
        print(f"memory_bench: needs {AIY} and {BIRDS} (../shared)", file=sys.stderr)
        return 2
    variants = [("full environment, as `edge` runs it", sys.executable, AS_INSTALLED),
                ("full environment, pandas imported first (before)", sys.executable, PANDAS_FIRST)]
    if Path(args.edge_python).is_file():
        variants.append(("edge-only environment", args.edge_python, AS_INSTALLED))
    with tempfile.TemporaryDirectory(prefix="trailcam-memory-") as tmp:
        config = _station(Path(tmp), args.frames)
        _peak_run_mb(sys.executable, AS_INSTALLED, config)  # the database and caches exist for `edge web`
        rows: dict[str, list[tuple[float, float]]] = {name: [] for name, _, _ in variants}
        for _ in range(args.repeats):  # interleaved, so a busy moment hits every variant alike
            for name, python, program in variants:
                run_mb = _peak_run_mb(python, program, config)
                _peak_run_mb(sys.executable, AS_INSTALLED, config)  # leave a filled database behind
                rows[name].append((run_mb, _web_mb(python, program, config)))
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"{args.frames} frames, median of {args.repeats}; load {os.getloadavg()[0]:.1f}")
    base = rows.get("edge-only environment")
    base_run = statistics.median(r for r, _ in base) if base else None
    base_web = statistics.median(w for _, w in base) if base else None
    print("| process | " + " | ".join(name for name, _, _ in variants) + " |")
    print("|---|" + "---:|" * len(variants))
    for index, label in ((0, "`edge run` peak RSS (MB)"), (1, "`edge web` RSS after 4 pages (MB)")):
        cells = []
        for name, _, _ in variants:
            value = statistics.median(pair[index] for pair in rows[name])
            reference = base_run if index == 0 else base_web
            ratio = f" ({value / reference:.2f}x)" if reference else ""
            cells.append(f"{value:.0f}{ratio}")
        print(f"| {label} | " + " | ".join(cells) + " |")
    if base:
        full = rows[variants[0][0]]
        worst = max(statistics.median(r for r, _ in full) / base_run, statistics.median(w for _, w in full) / base_web)
        print(f"goal: the full environment within {GOAL_RATIO:.2f}x of edge-only: "
              + ("met" if worst <= GOAL_RATIO else "MISSED") + f" ({worst:.2f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
