"""Video clips in a camera folder, counted by the real daemon (`edge run`) with real decoders
(PyAV's FFmpeg), the shared SSD detector and the AIY classifier, on clips encoded here from
birds25 photos moving over a real trail-camera frame: counts and MaxN per species, the capture
time from the container or the file, a copy and a second run counting nothing twice, Camtrap DP's
one media row per clip; a truncated clip; an unsupported codec; a clip still being written."""

from __future__ import annotations

import csv
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.edge.daemon.clips.conftest import FPS, edge, faststart_clip, rows, set_mtime, write_clip, write_config
from tests.edge.exports.conftest import standards_dir  # noqa: F401 - the fixture (Camtrap DP 1.0.2, offline)

START = datetime(2026, 5, 1, 7, 30, tzinfo=UTC)


def _species(db: Path, clip: str) -> dict[str, int]:
    """Per species, the individuals the visits of a clip's frames count (MaxN, event_species)."""
    return dict(rows(db, """SELECT s.species, MAX(s.individuals) FROM event_species AS s
                             WHERE s.event_id IN (SELECT event_id FROM frames WHERE path LIKE ? AND event_id IS NOT NULL)
                             GROUP BY s.species""", (f"%{clip}",)))


def test_clips_count_like_photos_once_each_and_export_as_one_media_row(
        tmp_path: Path, feeder_pictures, goldfinch_pictures, aiy_model_dir: Path, ssd_detector_dir: Path,
        cli_env: dict[str, str], standards_dir: Path) -> None:
    camera = tmp_path / "feeder"
    camera.mkdir()
    # An MP4 (H.264) with its creation time, as a feeder camera writes it (its wall clock) ...
    feeder = write_clip(camera / "CLIP0001.MP4", feeder_pictures, FPS,
                        metadata={"creation_time": "2026-05-01T07:30:00.000000Z"})
    set_mtime(feeder, START + timedelta(seconds=6))
    # ... and an AVI (MJPEG) without one, half an hour later: timed by its file, less its duration.
    goldfinch = write_clip(camera / "CLIP0002.AVI", goldfinch_pictures, FPS, codec="mjpeg")
    set_mtime(goldfinch, START + timedelta(minutes=30, seconds=3))
    db = tmp_path / "state" / "edge.db"
    config = write_config(tmp_path / "edge.toml", camera, db, aiy_model_dir, ssd_detector_dir)

    run = edge(["run", "--once", "--config", str(config)], cli_env)
    assert run.returncode == 0, run.stderr
    assert "18 ok" in run.stdout, run.stdout + run.stderr  # 6 s and 3 s at 2 samples a second

    clips = rows(db, """SELECT path, state, media_type, codec, captured_at, time_source, frames_sampled,
                               frames_decoded, round(duration_s, 1) FROM clips ORDER BY path""")
    assert clips == [
        (str(feeder), "done", "video/mp4", "h264", "2026-05-01T07:30:00.000Z", "container-local", 12, 60, 6.0),
        (str(goldfinch), "done", "video/x-msvideo", "mjpeg", "2026-05-01T08:00:00.000Z", "mtime", 6, 30, 3.0),
    ]
    offsets = rows(db, "SELECT clip_offset_s, captured_at FROM frames WHERE path = ? ORDER BY clip_offset_s",
                   (str(feeder),))
    assert [o for o, _ in offsets] == [i / 2 for i in range(12)]
    assert offsets[3][1] == "2026-05-01T07:30:01.500Z"  # the clip's start plus the frame's offset
    # One visit per clip; MaxN over the sampled frames: two chickadees at once, the cardinal with them.
    assert rows(db, "SELECT COUNT(*) FROM events")[0][0] == 2
    assert _species(db, "CLIP0001.MP4") == {"Black-capped Chickadee": 2, "Northern Cardinal": 1}
    assert _species(db, "CLIP0002.AVI") == {"American Goldfinch": 1}

    # Nothing counts twice: a second run, a copy under another name.
    shutil.copy2(feeder, camera / "COPY0001.MP4")
    again = edge(["run", "--once", "--config", str(config)], cli_env)
    assert again.returncode == 0, again.stderr
    assert rows(db, "SELECT COUNT(*) FROM frames")[0][0] == 18
    assert rows(db, "SELECT COUNT(*) FROM clips")[0][0] == 2
    assert rows(db, "SELECT SUM(individuals) FROM event_species")[0][0] == 4
    # A clip's samples are analysed like photos: daylight frames, flagged as such (frames.night).
    assert rows(db, "SELECT DISTINCT night FROM frames WHERE clip_id IS NOT NULL") == [(0,)]

    # Camtrap DP: each clip one media row (video/...), its observations the visits' (event level).
    out = tmp_path / "package"
    export = edge(["export", "camtrap-dp", "--config", str(config), "--out", str(out), "--validate",
                   str(standards_dir)], cli_env)
    assert export.returncode == 0, export.stdout + export.stderr
    with (out / "media.csv").open(newline="") as handle:
        media = list(csv.DictReader(handle))
    assert sorted((m["fileName"], m["fileMediatype"]) for m in media) == [
        ("CLIP0001.MP4", "video/mp4"), ("CLIP0002.AVI", "video/x-msvideo")]
    assert {m["mediaID"] for m in media} == {sha for (sha,) in rows(db, "SELECT sha256 FROM clips")}
    with (out / "observations.csv").open(newline="") as handle:
        observations = list(csv.DictReader(handle))
    assert {o["observationLevel"] for o in observations} == {"event"}
    assert sorted((o["scientificName"], o["count"]) for o in observations) == [
        ("Cardinalis cardinalis", "1"), ("Poecile atricapillus", "2"), ("Spinus tristis", "1")]


def test_a_truncated_clip_counts_what_came_before_the_fault_and_is_an_error(
        tmp_path: Path, feeder_pictures, aiy_model_dir: Path, ssd_detector_dir: Path, cli_env: dict[str, str]) -> None:
    camera = tmp_path / "feeder"
    camera.mkdir()
    whole = faststart_clip(tmp_path / "whole.mp4", feeder_pictures)
    data = whole.read_bytes()
    cut = camera / "CUT.MP4"
    cut.write_bytes(data[:int(len(data) * 0.75)])  # the camera's card pulled out mid-write
    set_mtime(cut, START)
    db = tmp_path / "state" / "edge.db"
    config = write_config(tmp_path / "edge.toml", camera, db, aiy_model_dir, ssd_detector_dir)

    run = edge(["run", "--once", "--config", str(config)], cli_env)
    assert run.returncode == 0, run.stderr
    (state, error, sampled), = rows(db, "SELECT state, error, frames_sampled FROM clips")
    assert state == "error" and "truncated" in error and 1 <= sampled < 12, (state, error, sampled)
    counted = rows(db, "SELECT COUNT(*) FROM frames WHERE status = 'ok' AND path = ?", (str(cut),))[0][0]
    assert counted == sampled
    # The error is on record at the clip's path (edge status, the error lists show it) ...
    (message,), = rows(db, "SELECT error FROM frames WHERE status = 'error' AND path = ?", (str(cut),))
    assert "truncated" in message and f"{sampled} sampled frame(s) before it counted" in message
    # ... and the birds before the fault count.
    assert _species(db, "CUT.MP4").get("Black-capped Chickadee", 0) >= 1
    assert "truncated" in run.stderr


def test_an_unsupported_codec_is_a_clear_error_and_counts_nothing(
        tmp_path: Path, goldfinch_pictures, aiy_model_dir: Path, ssd_detector_dir: Path,
        cli_env: dict[str, str]) -> None:
    camera = tmp_path / "feeder"
    camera.mkdir()
    mjpeg = write_clip(tmp_path / "source.avi", goldfinch_pictures[:10], FPS, codec="mjpeg").read_bytes()
    assert mjpeg.count(b"MJPG") == 2  # the stream header's handler and the format's compression
    odd = camera / "ODD.AVI"
    odd.write_bytes(mjpeg.replace(b"MJPG", b"ZQX9"))  # a FourCC no FFmpeg decoder knows
    set_mtime(odd, START)
    db = tmp_path / "state" / "edge.db"
    config = write_config(tmp_path / "edge.toml", camera, db, aiy_model_dir, ssd_detector_dir)

    run = edge(["run", "--once", "--config", str(config)], cli_env)
    assert run.returncode == 0, run.stderr
    (state, error), = rows(db, "SELECT state, error FROM clips")
    assert state == "error" and "unsupported video codec" in error
    assert rows(db, "SELECT status, error FROM frames") == [("error", error)]
    assert rows(db, "SELECT COUNT(*) FROM events")[0][0] == 0
    assert "unsupported video codec" in run.stderr


def test_a_clip_still_being_written_is_waited_for(tmp_path: Path, goldfinch_pictures, aiy_model_dir: Path,
                                                  ssd_detector_dir: Path) -> None:
    from edge.config import load_config
    from edge.daemon.wiring import build

    camera = tmp_path / "feeder"
    camera.mkdir()
    db = tmp_path / "state" / "edge.db"
    config = load_config(write_config(tmp_path / "edge.toml", camera, db, aiy_model_dir, ssd_detector_dir))
    daemon = build(config, once=True, field=False)
    daemon.start()
    try:
        whole = faststart_clip(tmp_path / "whole.mp4", goldfinch_pictures).read_bytes()
        growing = camera / "LIVE.MP4"
        growing.write_bytes(whole[:len(whole) // 3])  # the camera is still writing it: modified just now
        outcome = daemon.process(str(growing), "feeder")
        assert outcome.status == "waiting" and outcome.frames == []
        assert rows(db, "SELECT COUNT(*) FROM clips")[0][0] == 0 and rows(db, "SELECT COUNT(*) FROM frames")[0][0] == 0
        # Finished, and `--once` has nothing else to do: it waits for the clip's settle time and counts it.
        growing.write_bytes(whole)
        daemon.loop()
    finally:
        daemon.stop()
    assert rows(db, "SELECT state, frames_sampled FROM clips") == [("done", 6)]
    assert rows(db, "SELECT COUNT(*) FROM frames WHERE status = 'ok'")[0][0] == 6
    assert daemon.health.processed.get("clip_waiting", 0) >= 1
