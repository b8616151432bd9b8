"""Live cameras: what the motion gate costs while nothing moves, and how soon motion is a visit.

    python -m benchmarks.live_bench [--seconds 20] [--episodes 3]

1. Gate CPU at 1080p, 5 frames/s, nothing moving: a 1920x1080 25 fps H.264 clip of a real empty
   trail-camera scene (with the sensor noise of a real camera: ±2 grey levels per pixel and frame)
   is decoded with PyAV as the reader does; for the frames the gate looks at (5 a second) the
   grey copy (swscale) and the comparison (MotionGate) are timed in thread CPU time. Reported:
   the gate's share of one core at 5 frames/s (goal < 10 %), and beside it, for scale, what
   decoding the whole 25 fps stream costs (any reader pays it; the gate does not add to it).
2. Motion → committed visit: the real daemon (in-process, AIY model, whole-frame route) reads a
   real RTSP stream (ffmpeg feeding rtsp-server-perl on loopback, as tests/edge/live/test_live_streams.py)
   of a clip in which a real cardinal appears for 4 s every 20 s (the still stretch is long enough
   for the background to settle and the episode to close between two visits); per episode, the time from the gate
   seeing motion (its log record) to the commit of the episode's first frame, which opens or
   extends the visit. The gate itself may see the motion up to 1/motion_fps after the frame
   arrives (not included: it is the sampling period, 200 ms at 5 frames/s).

Needs ../shared (or $TRAILCAM_SHARED), PyAV, ffmpeg and rtsp-server-perl (`make system-deps`).
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("TRAILCAM_SHARED", REPO.parent / "shared"))
SCENE = SHARED / "data" / "trailcam-nobird" / "speciesnet__test_data_blank.jpg"
BIRD = SHARED / "data" / "birds25" / "NORTHERN CARDINAL" / "1.jpg"


def _still_clip(path: Path, seconds: float, fps: int = 25, size: tuple[int, int] = (1920, 1080)) -> Path:
    """A still 1080p scene with a real sensor's noise, H.264 as an IP camera sends it."""
    import av
    from PIL import Image

    base = np.asarray(Image.open(SCENE).convert("RGB").resize(size), dtype=np.int16)
    rng = np.random.default_rng(7)
    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=fps)
    stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
    stream.options = {"g": str(2 * fps), "preset": "veryfast", "crf": "23"}
    noises = [rng.integers(-2, 3, size=base.shape, dtype=np.int16) for _ in range(5)]
    for index in range(int(seconds * fps)):
        picture = np.clip(base + noises[index % len(noises)], 0, 255).astype(np.uint8)
        for packet in stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return path


def gate_cost(clip: Path, motion_fps: float = 5.0, width: int = 96) -> dict[str, float]:
    """Thread CPU seconds: decoding all frames, and the gate's work on motion_fps of them a second."""
    import av

    from edge.config.live import LiveConfig
    from edge.live.motion import MotionGate
    from edge.live.reader import grey_size

    live = LiveConfig(motion_fps=motion_fps, motion_width=width)
    gate = MotionGate.of(live)
    container = av.open(str(clip))
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    rate = float(stream.average_rate)
    every = max(1, round(rate / motion_fps))
    decode_cpu = gate_cpu = 0.0
    frames = gated = moving = 0
    size = None
    iterator = container.decode(stream)
    while True:
        started = time.thread_time()
        try:
            frame = next(iterator)
        except StopIteration:
            break
        decode_cpu += time.thread_time() - started
        frames += 1
        if frames % every:
            continue
        started = time.thread_time()
        size = size or grey_size(frame.width, frame.height, live.motion_width)
        grey = frame.reformat(width=size[0], height=size[1], format="gray").to_ndarray()
        moving += gate.moving(grey)
        gate_cpu += time.thread_time() - started
        gated += 1
    container.close()
    seconds = frames / rate
    # Decoding runs on FFmpeg's own threads too (thread_type AUTO): count the process's CPU for it.
    return {"frames": frames, "gated": gated, "moving": moving, "stream_s": seconds,
            "gate_ms": 1000 * gate_cpu / max(1, gated), "gate_share": gate_cpu / seconds,
            "decode_thread_share": decode_cpu / seconds}


def decode_process_share(clip: Path) -> float:
    """The process CPU (all threads) of decoding the whole clip, per second of stream."""
    import av

    container = av.open(str(clip))
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    rate = float(stream.average_rate)
    started = time.process_time()
    frames = sum(1 for _ in container.decode(stream))
    spent = time.process_time() - started
    container.close()
    return spent / (frames / rate)


class _Motion(logging.Handler):
    """The reader's "motion (episode N …)" records: the moment the gate saw motion."""

    def __init__(self) -> None:
        super().__init__()
        self.at: dict[int, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if ": motion (episode " in message:
            self.at[int(message.split("episode ", 1)[1].split(":", 1)[0])] = record.created


def latency(episodes: int, work: Path) -> list[float]:
    """Seconds from motion seen to the commit of the episode's first frame, per episode."""
    sys.path.insert(0, str(REPO))
    from edge.config import load_config
    from edge.daemon.wiring import build
    from tests.fixtures.streams import RtspServer, make_clip

    work.mkdir(parents=True, exist_ok=True)
    clip = make_clip(work / "feeder.mp4", SCENE, BIRD, still_s=16.0, bird_s=4.0)
    server = RtspServer(clip, work / "rtsp").start()
    empty = work / "edge.toml"
    empty.touch()
    config = load_config(empty, environ={}, overrides={
        "cameras": [{"name": "feeder", "source": server.url("admin", "bench-password"),
                     "live": {"transport": "udp", "connect_timeout_s": 3.0, "read_timeout_s": 3.0}}],
        "model": {"path": str(SHARED / "models" / "aiy_birds_v1" / "model.tflite")},
        "storage": {"database": str(work / "state" / "trailcam.db")}, "station": {"device_id": "bench"},
        "events": {"independence_s": 2.0}})
    motion = _Motion()
    reader_log = logging.getLogger("edge.live.reader")
    reader_log.addHandler(motion)
    reader_log.setLevel(logging.INFO)
    daemon = build(config, field=False)
    commits: list[tuple[float, str]] = []
    daemon.after_frame.append(lambda outcome: commits.append((time.time(), outcome.path)))
    thread = threading.Thread(target=daemon.loop, daemon=True)
    daemon.start()
    thread.start()
    try:
        deadline = time.monotonic() + 30 + 22 * episodes
        while len(motion.at) < episodes and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2)
    finally:
        daemon.request_stop()
        thread.join(timeout=30)
        daemon.stop()
        server.stop()
        reader_log.removeHandler(motion)
    figures = []
    for _episode, seen in sorted(motion.at.items())[:episodes]:
        after = [at for at, _path in commits if at >= seen]
        if after:
            figures.append(after[0] - seen)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.live_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the still 1080p clip")
    parser.add_argument("--episodes", type=int, default=3, help="motion episodes timed on the RTSP stream")
    args = parser.parse_args()
    try:
        import av  # noqa: F401
    except ImportError:
        print("live_bench: PyAV is not installed (pip install 'trailcam[video]')", file=sys.stderr)
        return 2
    cores = os.cpu_count()
    load = os.getloadavg()[0]
    print(f"machine: {platform.processor() or platform.machine()}, {cores} cores, load {load:.2f}, "
          f"Python {platform.python_version()}")
    with tempfile.TemporaryDirectory(prefix="live-bench-") as folder:
        work = Path(folder)
        clip = _still_clip(work / "still-1080p.mp4", args.seconds)
        cost = gate_cost(clip)
        decode = decode_process_share(clip)
        print("\n| 1080p, 25 fps stream, nothing moving | per gate frame | share of one core |")
        print("|---|---:|---:|")
        print(f"| motion gate at 5 frames/s (grey 96x54 + compare) | {cost['gate_ms']:.2f} ms | "
              f"{100 * cost['gate_share']:.2f} % (goal < 10 %) |")
        print(f"| decoding the whole stream (for scale; every reader pays it) | - | {100 * decode:.1f} % |")
        print(f"\nframes {cost['frames']}, gated {cost['gated']}, seen moving {cost['moving']} (false alarms)")
        figures = latency(args.episodes, work / "latency")
    if figures:
        print("\n| motion seen → episode's first frame committed (s) | median | max | episodes |")
        print("|---|---:|---:|---:|")
        print(f"| RTSP 640x360, AIY whole frame | {statistics.median(figures):.3f} | {max(figures):.3f} | {len(figures)} |")
    else:
        print("no episode timed (is rtsp-server-perl installed?)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
