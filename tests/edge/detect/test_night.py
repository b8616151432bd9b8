"""Infrared night frames (edge/detect/night.py) on real pictures: the 27 camera-trap frames of
../shared/data/trailcam-nobird (its manifest.json says which are nights) and the 125 birds25 day
photos; the night threshold the finder applies to them; the flag `edge run` stores."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edge.detect.banner import find_banner
from edge.detect.finder import BirdFinder, FinderSettings
from edge.detect.model import Detector, resolve_detector
from edge.detect.night import MONOCHROME_MAX, channel_difference, is_night, is_night_rgb

# The manifest's one night that is no infrared frame: a Reconyx colour exposure at dusk (18:35,
# ISO 400), brownish leaves and all. The flag says what the picture is: not infrared.
COLOUR_DUSK = "speciesnet__test_data_blank.jpg"
IR_NIGHT = "zamba__tests_assets_images_ena24_small_2480.jpg"  # an opossum under the IR LEDs, 1920x1080
DAY = "zamba__tests_assets_images_ena24_small_596.jpg"  # a squirrel by day, colour, 2048x1536


def _picture(path: Path) -> Image.Image:
    """The frame without its banner, as the finder judges it."""
    with Image.open(path) as opened:
        image = opened.convert("RGB")
    top, bottom = find_banner(image).rows(image.size[1])
    return image.crop((0, top, image.size[0], image.size[1] - bottom))


def test_the_infrared_nights_of_the_real_frames_are_recognised(trailcam_nobird_dir: Path) -> None:
    manifest = json.loads((trailcam_nobird_dir / "manifest.json").read_text(encoding="utf-8"))
    assert len(manifest) == 27
    wrong = []
    for entry in manifest:
        picture = _picture(trailcam_nobird_dir / entry["file"])
        expected = entry["night"] and entry["file"] != COLOUR_DUSK
        if is_night(picture) != expected:
            wrong.append(entry["file"])
    assert wrong == []
    assert sum(e["night"] for e in manifest) == 11  # 10 infrared, and the colour dusk frame
    # The colour dusk frame is a colour picture, by a margin.
    assert channel_difference(np.asarray(_picture(trailcam_nobird_dir / COLOUR_DUSK).resize((128, 96)))) > 1.5 * MONOCHROME_MAX


def test_day_photos_are_never_nights(birds25_dir: Path) -> None:
    photos = sorted(birds25_dir.rglob("*.jpg"))
    assert len(photos) == 125
    nights = [p.name for p in photos if is_night(Image.open(p))]
    assert nights == []


def test_a_tinted_infrared_frame_is_still_a_night_and_a_grey_day_is_not(trailcam_nobird_dir: Path) -> None:
    night = np.asarray(_picture(trailcam_nobird_dir / IR_NIGHT).resize((128, 96)), dtype=np.float32)
    pinkish = np.clip(night * np.asarray([1.12, 0.92, 1.05], np.float32), 0, 255).astype(np.uint8)
    assert is_night_rgb(pinkish)
    # A monochrome Reconyx frame by day: grey, but lit evenly (few dark pixels).
    grey_day = _picture(trailcam_nobird_dir / "zamba__tests_assets_images_ena24_small_9455.jpg")
    assert channel_difference(np.asarray(grey_day.resize((128, 96)))) < MONOCHROME_MAX
    assert not is_night(grey_day)
    with pytest.raises(ValueError, match="RGB array"):
        is_night_rgb(np.zeros((4, 4), np.uint8))


def test_the_night_threshold_applies_to_night_frames_only(ssd_detector_dir: Path, birds25_dir: Path,
                                                          trailcam_nobird_dir: Path) -> None:
    """The same bird pasted on an infrared night and on a day frame: with night_threshold 0.99
    the night frame keeps no box, the day frame keeps what the day threshold keeps."""
    from benchmarks.scenes import compose, species_photos

    detector = Detector(resolve_detector(ssd_detector_dir), threads=2, score_threshold=0.5)
    source = species_photos(birds25_dir)["AMERICAN ROBIN"][0]
    frames = {}
    for name in (IR_NIGHT, DAY):
        with Image.open(trailcam_nobird_dir / name) as opened:
            backdrop = opened.convert("RGB")
        frames[name] = compose(birds25_dir, backdrop.size, 1, (0.001,), sources=[source], backdrop=backdrop,
                               boxes=[(700, 400, 1000, 700)]).jpeg()
    plain = BirdFinder(detector, FinderSettings())
    strict = BirdFinder(detector, FinderSettings(threshold=0.5, night_threshold=0.99))
    night_plain, night_strict = (f.locate(frames[IR_NIGHT], (224, 224)) for f in (plain, strict))
    assert night_plain.night and night_strict.night
    assert night_plain.birds and all(b.box.score < 0.99 for b in night_plain.birds)
    assert night_strict.birds == []
    day_plain, day_strict = (f.locate(frames[DAY], (224, 224)) for f in (plain, strict))
    assert not day_plain.night
    assert day_plain.birds and [b.box for b in day_strict.birds] == [b.box for b in day_plain.birds]


def test_edge_run_stores_the_night_flag_and_edge_frames_shows_it(tmp_path: Path, ssd_detector_dir: Path,
                                                                 aiy_model_dir: Path, trailcam_nobird_dir: Path,
                                                                 cli_env: dict[str, str]) -> None:
    camera = tmp_path / "trail"
    camera.mkdir()
    shutil.copy(trailcam_nobird_dir / IR_NIGHT, camera / "night.jpg")
    shutil.copy(trailcam_nobird_dir / DAY, camera / "day.jpg")
    for offset, name in enumerate(("night.jpg", "day.jpg")):
        os.utime(camera / name, (1_780_000_000 + 3600 * offset,) * 2)
    database = tmp_path / "state" / "edge.db"
    config = tmp_path / "edge.toml"
    config.write_text(f"""
[model]
path = "{aiy_model_dir}"
[detector]
path = "{ssd_detector_dir}"
[[cameras]]
name = "trail"
path = "{camera}"
[storage]
database = "{database}"
""", encoding="utf-8")

    def edge(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "edge", *args], env=cli_env, capture_output=True, text=True,
                              timeout=300, check=False)

    run = edge("run", "--once", "--config", str(config))
    assert run.returncode == 0, run.stderr
    conn = sqlite3.connect(database)
    try:
        stored = dict(conn.execute("SELECT path, night FROM frames WHERE status = 'ok'").fetchall())
    finally:
        conn.close()
    assert stored == {str(camera / "night.jpg"): 1, str(camera / "day.jpg"): 0}
    listed = edge("frames", "--db", str(database), "--format", "json")
    assert listed.returncode == 0, listed.stderr
    assert {Path(row["path"]).name: row["night"] for row in json.loads(listed.stdout)} == {"night.jpg": 1, "day.jpg": 0}


def test_edge_classify_with_a_detector_says_which_frames_are_nights(tmp_path: Path, ssd_detector_dir: Path,
                                                                     aiy_model_dir: Path, trailcam_nobird_dir: Path,
                                                                     cli_env: dict[str, str]) -> None:
    """`"night"` in the JSON, `(night)` after the night frame's line of text, nothing on the day's."""
    night, day = tmp_path / "night.jpg", tmp_path / "day.jpg"
    shutil.copy(trailcam_nobird_dir / IR_NIGHT, night)
    shutil.copy(trailcam_nobird_dir / DAY, day)

    def classify(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "edge", "classify", "--model", str(aiy_model_dir), "--detector",
                               str(ssd_detector_dir), *args, str(night), str(day)], env=cli_env, capture_output=True,
                              text=True, timeout=300, check=False)

    as_json = classify("--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    assert {Path(e["path"]).name: e["night"] for e in json.loads(as_json.stdout)["images"]} == {
        "night.jpg": True, "day.jpg": False}
    as_text = classify()
    assert as_text.returncode == 0, as_text.stderr
    lines = {Path(line.split(":", 1)[0]).name: line for line in as_text.stdout.splitlines() if ".jpg:" in line}
    assert lines["night.jpg"].endswith("(night)") and "(night)" not in lines["day.jpg"]


def test_the_whole_frame_route_judges_the_real_frames_alike(trailcam_nobird_dir: Path) -> None:
    """Without a detector the frame is judged on the classifier's decode (224 x 224, banner
    included: its letters are grey on black, not colour): the same flags as the finder's."""
    from edge.ingest.imaging import decode

    manifest = json.loads((trailcam_nobird_dir / "manifest.json").read_text(encoding="utf-8"))
    for entry in manifest:
        path = trailcam_nobird_dir / entry["file"]
        whole = is_night_rgb(decode(path.read_bytes(), (224, 224), draft=True).rgb)
        assert whole == is_night(_picture(path)), entry["file"]


def test_the_finder_judges_the_night_on_its_overview_as_on_the_picture(trailcam_nobird_dir: Path,
                                                                        ssd_detector_dir: Path) -> None:
    """The finder judges the night on the picture fitted to the detector's input (the full-frame
    pass's, one full-picture resize fewer): the same flag as the picture itself on every real
    frame, stretched (the SSD) as letterboxed."""
    from edge.detect.finder import BirdFinder, FinderSettings
    from edge.detect.model import Detector, resolve_detector

    manifest = json.loads((trailcam_nobird_dir / "manifest.json").read_text(encoding="utf-8"))
    spec = resolve_detector(ssd_detector_dir)
    finders = [BirdFinder(Detector(spec, resize=resize), FinderSettings(tiles="off")) for resize in ("stretch", "letterbox")]
    nights = 0
    for entry in manifest:
        path = trailcam_nobird_dir / entry["file"]
        expected = is_night(_picture(path))
        nights += expected
        for finder in finders:
            assert finder.locate(path.read_bytes(), (224, 224)).night == expected, (entry["file"], finder.detector.resize)
    assert nights == 10
