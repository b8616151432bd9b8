"""Generated camera frames carry trail-camera EXIF times laid out as visits (the demo relies on it)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from PIL import Image

from edge.ingest.capture_time import capture_time
from trainer.synth import BURST, BURST_GAP, CLASS_GAP, VISIT_EVERY, generate_frames


def test_frames_with_a_start_time_are_bursts_of_visits_the_edge_reads(tmp_path):
    start = datetime(2026, 5, 1, 7, 0)
    zone = ZoneInfo("Europe/Berlin")
    frames = generate_frames(tmp_path, per_class=4, num_classes=3, image_size=96, seed=5, start_time=start)
    by_class: dict[str, list[datetime]] = {}
    for path, name in frames:
        with Image.open(path) as image:
            taken, source = capture_time(image, mtime=0.0, station_tz=zone)
        assert source == "exif-local"  # DateTimeOriginal without an offset, as trail cameras write it
        by_class.setdefault(name, []).append(taken)

    assert len(by_class) == 3 and all(len(times) == 4 for times in by_class.values())
    first_visits = sorted(min(times) for times in by_class.values())
    assert first_visits[0] == start.replace(tzinfo=zone)
    assert [b - a for a, b in zip(first_visits, first_visits[1:])] == [CLASS_GAP, CLASS_GAP]
    for times in by_class.values():
        times.sort()
        bursts = [times[i:i + BURST] for i in range(0, len(times), BURST)]
        assert all(burst[1] - burst[0] == BURST_GAP for burst in bursts)
        assert bursts[1][0] - bursts[0][0] == VISIT_EVERY
        # More than the edge's default 60 s independence interval apart: two visits per class.
        assert bursts[1][0] - bursts[0][-1] > timedelta(seconds=60)


def test_frames_without_a_start_time_have_no_exif_time(tmp_path):
    (path, _name), *_ = generate_frames(tmp_path, per_class=1, num_classes=2, image_size=64, seed=1)
    with Image.open(path) as image:
        _taken, source = capture_time(image, mtime=1_700_000_000.0, station_tz=ZoneInfo("UTC"))
    assert source == "mtime"


def test_frames_with_a_start_time_are_written_in_shooting_order(tmp_path):
    frames = generate_frames(tmp_path, per_class=4, num_classes=3, image_size=64, seed=5,
                             start_time=datetime(2026, 5, 1, 7, 0))
    zone = ZoneInfo("UTC")
    taken = []
    for path, _name in frames:
        with Image.open(path) as image:
            taken.append(capture_time(image, mtime=0.0, station_tz=zone)[0])
    names = [path.name for path, _ in frames]
    mtimes = [path.stat().st_mtime for path, _ in frames]
    assert taken == sorted(taken) and len(set(taken)) == len(taken)
    assert names == sorted(names) and mtimes == sorted(mtimes)
