"""Clip benchmark: what a video clip costs the daemon next to photos of the same frames.

    python -m benchmarks.clip_bench [--seconds 10] [--fps 30] [--repeats 3] [--rss-seconds 60]

Side by side in one run, on one clip encoded here with PyAV (H.264, 1280x720, a keyframe every
second, birds25 birds moving over a real bird-free trail-camera frame, benchmarks/clip_scenes.py),
with the shared SSD detector and the AIY classifier:

1. ms per sampled frame, clip route (ClipProcessor: hash, decode every frame, sample 2 a second,
   analyse_picture, one transaction each) next to the photo route (FrameProcessor on the same
   sampled frames saved as JPEG files: read, hash, JPEG decode, analyse, one transaction each);
   routes alternated, medians of `--repeats`, model load excluded. Goal: clip <= 1.2x photo.
2. Decode cost of the clip alone (ClipReader.samples, no analysis): every frame vs keyframes only.
3. Peak RSS (VmHWM) of a fresh process: sampling the clip and one of `--rss-seconds` with no
   models (bounded: the same for both), and `edge run --once` counting the long clip next to
   the same process counting the sampled frames as photos, with the SSD detector and without
   it (frames classified whole). Goal: under 150 MB with a clip.

Needs ../shared (or $TRAILCAM_SHARED) for the models and photos, and the `video` extra (PyAV).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from benchmarks.clip_scenes import Move, Segment, moving_frames, write_clip

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("TRAILCAM_SHARED", REPO.parent / "shared"))
SIZE = (1280, 720)
RATE = 2.0
GOAL_RATIO = 1.2
GOAL_RSS_MB = 150


def _config_text(camera: Path, db: Path, detector: bool = True) -> str:
    models = SHARED / "models"
    detector_table = f'[detector]\npath = "{models / "ssd_mobilenet_v1_coco"}"' if detector else ""
    return f"""
[station]
timezone = "UTC"
device_id = "clip-bench"
[model]
path = "{models / 'aiy_birds_v1'}"
labels = "{models / 'aiy_birds_v1' / 'labelmap.csv'}"
{detector_table}
[[cameras]]
name = "feeder"
path = "{camera}"
settle_s = 0.1
[storage]
database = "{db}"
[clips]
sample_rate = {RATE}
"""


def _pictures(seconds: float, fps: int) -> list[Image.Image]:
    """The clip's frames: empty, one bird crossing, three birds, empty (real photos, real backdrop)."""
    birds = SHARED / "data" / "birds25"
    backdrop_path = SHARED / "data" / "trailcam-nobird" / "speciesnet__test_data_blank.jpg"
    if not backdrop_path.is_file() or not birds.is_dir():
        raise SystemExit(f"shared data not found under {SHARED}/data (set TRAILCAM_SHARED)")
    backdrop = Image.open(backdrop_path).convert("RGB")
    chickadee, second = birds / "BLACK-CAPPED CHICKADEE" / "3.jpg", birds / "BLACK-CAPPED CHICKADEE" / "5.jpg"
    cardinal = birds / "NORTHERN CARDINAL" / "4.jpg"
    quarter = seconds / 4
    plan = [Segment(quarter),
            Segment(quarter, [Move(chickadee, (60, 120), (220, 140))]),
            Segment(quarter, [Move(chickadee, (220, 140), (260, 120)), Move(second, (520, 380), (580, 360)),
                              Move(cardinal, (920, 60), (900, 100))]),
            Segment(quarter)]
    return [picture for picture, _ in moving_frames(birds, backdrop, plan, SIZE, fps)]


def _daemon(run: Path, camera: Path):
    from edge.config import load_config
    from edge.daemon.wiring import build

    config_path = run / "edge.toml"
    config_path.write_text(_config_text(camera, run / "state" / "edge.db"))
    daemon = build(load_config(config_path, environ={}), once=True, field=False)
    daemon.start()
    return daemon


def _clip_route(work: Path, clip: Path) -> tuple[float, int]:
    """(ms per sampled frame, sampled frames) of ClipProcessor.process over the clip, fresh store."""
    from edge.daemon.clips import ClipProcessor

    run = work / f"clip-{time.monotonic_ns()}"
    camera = run / "camera"
    camera.mkdir(parents=True)
    target = camera / clip.name
    shutil.copy2(clip, target)
    os.utime(target, (time.time() - 60, time.time() - 60))
    daemon = _daemon(run, camera)
    try:
        processor = ClipProcessor(daemon.processor, daemon.config.clips, {"feeder": 0.1})
        started = time.perf_counter()
        outcome = processor.process(str(target), "feeder", lambda _outcome: None)
        elapsed = time.perf_counter() - started
    finally:
        daemon.stop()
    if outcome.status != "done" or not outcome.sampled:
        raise SystemExit(f"clip route: {outcome.status} {outcome.error}")
    shutil.rmtree(run)
    return elapsed * 1000 / outcome.sampled, outcome.sampled


def _photo_route(work: Path, photos: list[Path]) -> float:
    """ms per frame of FrameProcessor.process over the sampled frames as JPEG files, fresh store."""
    run = work / f"photo-{time.monotonic_ns()}"
    camera = run / "camera"
    camera.mkdir(parents=True)
    for photo in photos:
        shutil.copy2(photo, camera / photo.name)
    daemon = _daemon(run, camera)
    try:
        started = time.perf_counter()
        outcomes = [daemon.processor.process(str(camera / p.name), "feeder") for p in photos]
        elapsed = time.perf_counter() - started
    finally:
        daemon.stop()
    bad = [o.status for o in outcomes if o.status != "ok"]
    if bad:
        raise SystemExit(f"photo route: {bad}")
    shutil.rmtree(run)
    return elapsed * 1000 / len(photos)


def _decode(clip: Path, keyframes_only: bool) -> tuple[float, int, int]:
    """(ms to sample the whole clip, frames decoded, frames sampled), no analysis."""
    from edge.ingest.clips import ClipReader

    with clip.open("rb") as source, ClipReader(source) as reader:
        started = time.perf_counter()
        sampled = sum(1 for _ in reader.samples(RATE, keyframes_only))
        elapsed = time.perf_counter() - started
        return elapsed * 1000, reader.decoded, sampled


def _peak_rss_mb(work: Path, files: list[Path], name: str, detector: bool = True) -> tuple[float, str]:
    """Peak RSS (VmHWM, MB) of a fresh `edge run --once` process counting `files`, and its RSS at
    exit with its summary line."""
    run = work / f"rss-{name}"
    camera = run / "camera"
    camera.mkdir(parents=True)
    for path in files:
        shutil.copy2(path, camera / path.name)
        os.utime(camera / path.name, (time.time() - 60, time.time() - 60))
    (run / "edge.toml").write_text(_config_text(camera, run / "state" / "edge.db", detector))
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               TF_CPP_MIN_LOG_LEVEL="2")
    # VmHWM of the edge process itself, read at its exit: ru_maxrss of a child would carry this
    # benchmark's own peak (Linux keeps the parent's high-water mark across fork and exec).
    launcher = ("import atexit, runpy, sys\n"
                "def peak():\n"
                "    for line in open('/proc/self/status'):\n"
                "        if line.startswith(('VmHWM:', 'VmRSS:')):\n"
                "            print('RSS_KB', line.split()[0], line.split()[1], file=sys.stderr, flush=True)\n"
                "atexit.register(peak)\n"
                "sys.argv = ['edge'] + sys.argv[1:]\n"
                "runpy.run_module('edge', run_name='__main__', alter_sys=True)\n")
    result = subprocess.run([sys.executable, "-c", launcher, "run", "--once", "--config", str(run / "edge.toml")],
                            env=env, capture_output=True, text=True, timeout=1800)
    if result.returncode != 0:
        raise SystemExit(f"edge run --once ({name}) failed: {result.returncode}: {result.stderr[-2000:]}")
    kb = {line.split()[1]: int(line.split()[2]) for line in result.stderr.splitlines() if line.startswith("RSS_KB")}
    if "VmHWM:" not in kb:
        raise SystemExit(f"edge run --once ({name}): no peak RSS reported: {result.stderr[-2000:]}")
    output = result.stdout
    summary = next((line for line in output.splitlines() if " ok" in line), "")
    at_exit = f"{kb.get('VmRSS:', 0) / 1024:.1f} MB at exit; "
    return kb["VmHWM:"] / 1024, at_exit + summary.replace("summary: ", "").split("; times")[0]


def _decode_rss_mb(clip: Path) -> float:
    """Peak RSS (MB) of a fresh process that only samples `clip` (PyAV, no models): what the
    decoder holds, the same for a clip of 10 s or of an hour if memory is bounded."""
    code = ("import sys\n"
            "from edge.ingest.clips import ClipReader\n"
            "with open(sys.argv[1], 'rb') as source, ClipReader(source) as reader:\n"
            "    sampled = sum(1 for _ in reader.samples(float(sys.argv[2])))\n"
            "print([line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM:')][0])\n")
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, "-c", code, str(clip), str(RATE)], env=env, capture_output=True,
                            text=True, timeout=600, check=True)
    return int(result.stdout.split()[-1]) / 1024


def _cpu() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        name = next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, StopIteration):
        name = platform.processor() or platform.machine()
    return f"{name}, {os.cpu_count()} cores"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the timed clip")
    parser.add_argument("--fps", type=int, default=30, help="the clip's frame rate")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rss-seconds", type=float, default=60.0, help="length of the clip the RSS run counts")
    args = parser.parse_args([] if argv is None else argv)  # `python -m benchmarks` calls main()
    try:
        import av
    except ImportError:
        print("clip_bench: skipped: PyAV (the `video` extra) is not installed")
        return 0
    from edge.ingest.clips import ClipReader

    print(f"machine: {_cpu()}; Python {platform.python_version()}; PyAV {av.__version__} "
          f"(FFmpeg {'.'.join(map(str, av.library_versions.get('libavcodec', ())))} libavcodec)")
    pictures = _pictures(args.seconds, args.fps)
    with tempfile.TemporaryDirectory(prefix="clip-bench-") as tmp:
        work = Path(tmp)
        clip = write_clip(work / "CLIP0001.MP4", pictures, args.fps, gop=args.fps)
        # The photo route's frames: exactly the pictures the clip route samples, as JPEG files.
        photos_dir = work / "photos"
        photos_dir.mkdir()
        photos = []
        with clip.open("rb") as source, ClipReader(source) as reader:
            for sample in reader.samples(RATE):
                path = photos_dir / f"IMG{sample.index:04d}.JPG"
                sample.picture.save(path, quality=90)
                # distinct bytes per file (the empty seconds give identical pictures), so the
                # content hash never skips one as a duplicate: every photo is analysed, as every sample
                path.write_bytes(path.read_bytes() + sample.index.to_bytes(4, "big"))
                photos.append(path)
        print(f"clip: {args.seconds:g} s, {SIZE[0]}x{SIZE[1]}, {args.fps} fps, H.264 (keyframe every second), "
              f"{clip.stat().st_size / 1e6:.1f} MB; sampled at {RATE:g}/s: {len(photos)} frames "
              f"(JPEG q90 for the photo route)")

        clip_ms: list[float] = []
        photo_ms: list[float] = []
        for _ in range(args.repeats):  # alternated, so drift on a shared machine hits both alike
            ms, sampled = _clip_route(work, clip)
            if sampled != len(photos):
                raise SystemExit(f"clip route sampled {sampled}, expected {len(photos)}")
            clip_ms.append(ms)
            photo_ms.append(_photo_route(work, photos))
        clip_med, photo_med = statistics.median(clip_ms), statistics.median(photo_ms)
        ratio = clip_med / photo_med
        print("\n1. ms per sampled frame (detect + classify + record; medians of "
              f"{args.repeats}, alternated)")
        print(f"   photo route (JPEG files)      {photo_med:8.1f} ms   runs {', '.join(f'{m:.1f}' for m in photo_ms)}")
        print(f"   clip route (decode + sample)  {clip_med:8.1f} ms   runs {', '.join(f'{m:.1f}' for m in clip_ms)}")
        print(f"   ratio clip/photo              {ratio:8.2f}x   goal <= {GOAL_RATIO}x: "
              f"{'met' if ratio <= GOAL_RATIO else 'MISSED'}")

        print("\n2. decode cost of the clip alone (no analysis; medians of "
              f"{args.repeats})")
        for label, keyframes in (("every frame", False), ("keyframes only", True)):
            runs = [_decode(clip, keyframes) for _ in range(args.repeats)]
            ms = statistics.median(r[0] for r in runs)
            _, decoded, sampled = runs[0]
            print(f"   {label:15s} {ms:8.1f} ms per clip   {decoded:4d} frames decoded, {sampled:3d} sampled   "
                  f"{ms / max(1, sampled):6.1f} ms per sampled frame")

        # RSS: a longer clip (the same frames looped) in a fresh `edge run --once`.
        loops = max(1, round(args.rss_seconds / args.seconds))
        (work / "long").mkdir()
        long_clip = write_clip(work / "long" / "LONG0001.MP4", pictures * loops, args.fps, gop=args.fps)
        short_mb, long_mb = _decode_rss_mb(clip), _decode_rss_mb(long_clip)
        print("\n3. peak RSS (VmHWM) of a fresh process")
        print(f"   decode only, {args.seconds:g} s clip          {short_mb:7.1f} MB")
        print(f"   decode only, {args.seconds * loops:g} s clip          {long_mb:7.1f} MB   (bounded: "
              f"{'same' if abs(long_mb - short_mb) < 8 else 'GROWS'} whatever the length)")
        for detector, models in ((True, "SSD detector + AIY"), (False, "AIY only, frames classified whole")):
            tag = "det" if detector else "whole"
            rss_photo, photo_line = _peak_rss_mb(work, photos, f"photos-{tag}", detector)
            rss_clip, clip_line = _peak_rss_mb(work, [long_clip], f"clip-{tag}", detector)
            print(f"   `edge run --once`, {models}:")
            print(f"     {len(photos)} photos              {rss_photo:7.1f} MB   ({photo_line.strip()})")
            print(f"     one {args.seconds * loops:g} s clip         {rss_clip:7.1f} MB   ({clip_line.strip()})   "
                  f"goal < {GOAL_RSS_MB} MB: {'met' if rss_clip < GOAL_RSS_MB else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
