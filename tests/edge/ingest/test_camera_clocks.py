"""Camera clocks (issue 20): the repeated and the skipped local hour, a camera's own zone and
clock error, malformed EXIF offsets. Unit tests of the reading and the resolver, then real
photos with written EXIF times through the real daemon (`edge run --once` and live)."""

from __future__ import annotations

import logging
import os
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from PIL import Image

from edge.config import ConfigError, load_config
from edge.config.cameras import CameraConfig, parse_zone
from edge.daemon.wiring import build
from edge.ingest.capture_time import (
    CameraClock,
    CaptureReading,
    Neighbour,
    camera_clock,
    camera_order,
    localise,
    read_capture_time,
    resolve_ambiguous,
)
from tests.edge.conftest import DaemonProcess, jpeg_bytes, query_rows, wait_for

UTC = UTC
BERLIN, NEW_YORK = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")

# The fall-back burst of the issue: 45 s of real time across the repeated hour, in file order.
FALL_BACK = {
    "Europe/Berlin": [datetime(2026, 10, 25, 2, 59, 40), datetime(2026, 10, 25, 2, 59, 55),
                      datetime(2026, 10, 25, 2, 0, 10), datetime(2026, 10, 25, 2, 0, 25)],
    "America/New_York": [datetime(2026, 11, 1, 1, 59, 40), datetime(2026, 11, 1, 1, 59, 55),
                         datetime(2026, 11, 1, 1, 0, 10), datetime(2026, 11, 1, 1, 0, 25)],
}
# The same burst in UTC: the first two in summer time, the last two in winter time.
FALL_BACK_UTC = {
    "Europe/Berlin": ["2026-10-25T00:59:40.000Z", "2026-10-25T00:59:55.000Z",
                      "2026-10-25T01:00:10.000Z", "2026-10-25T01:00:25.000Z"],
    "America/New_York": ["2026-11-01T05:59:40.000Z", "2026-11-01T05:59:55.000Z",
                         "2026-11-01T06:00:10.000Z", "2026-11-01T06:00:25.000Z"],
}


# ---- reading a wall time -------------------------------------------------------------------

def test_a_wall_time_is_plain_ambiguous_or_nonexistent() -> None:
    assert localise(datetime(2026, 7, 1, 12), BERLIN) == (datetime(2026, 7, 1, 10, tzinfo=UTC), None, None)
    assert localise(datetime(2026, 10, 25, 2, 30), BERLIN) == (
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC), datetime(2026, 10, 25, 1, 30, tzinfo=UTC), "ambiguous")
    assert localise(datetime(2026, 11, 1, 1, 30), NEW_YORK) == (
        datetime(2026, 11, 1, 5, 30, tzinfo=UTC), datetime(2026, 11, 1, 6, 30, tzinfo=UTC), "ambiguous")
    # The skipped hour: read with the offset before the gap (winter time), i.e. an hour on.
    assert localise(datetime(2026, 3, 29, 2, 30), BERLIN) == (datetime(2026, 3, 29, 1, 30, tzinfo=UTC), None, "nonexistent")
    assert localise(datetime(2026, 3, 8, 2, 30), NEW_YORK) == (datetime(2026, 3, 8, 7, 30, tzinfo=UTC), None, "nonexistent")
    # The edges of the repeated hour are plain.
    assert localise(datetime(2026, 10, 25, 1, 59, 59), BERLIN)[2] is None
    assert localise(datetime(2026, 10, 25, 3, 0), BERLIN)[2] is None
    # A fixed offset has no daylight saving: never doubtful.
    assert localise(datetime(2026, 10, 25, 2, 30), parse_zone("+01:00")) == (
        datetime(2026, 10, 25, 1, 30, tzinfo=UTC), None, None)


@pytest.mark.parametrize(("text", "hours"), [("+01:00", 1), ("UTC+1", 1), ("+0100", 1), ("-05:30", -5.5),
                                             ("GMT-3", -3), ("utc+01:00", 1), ("UTC", 0)])
def test_zones_as_people_write_them(text: str, hours: float) -> None:
    assert parse_zone(text).utcoffset(datetime(2026, 7, 1)) == timedelta(hours=hours)
    assert parse_zone("Europe/Berlin") == BERLIN


def _image(taken: datetime | None, offset: str | None = None) -> Image.Image:
    import io

    return Image.open(io.BytesIO(jpeg_bytes(Image.new("RGB", (8, 8)), taken, offset)))


@pytest.mark.parametrize("written", ["+2:00", "+0200x", "+15:00", "+01:75", "2:00", "CET"])
def test_a_malformed_offset_is_flagged_and_read_in_the_camera_zone(written: str) -> None:
    station = read_capture_time(_image(datetime(2026, 7, 1, 12), written), 0.0, CameraClock(BERLIN))
    assert (station.at, station.source, station.flags) == (
        datetime(2026, 7, 1, 10, tzinfo=UTC), "exif-local", ("malformed-offset",))
    assert station.offset_text == written
    own = read_capture_time(_image(datetime(2026, 7, 1, 12), written), 0.0, CameraClock(parse_zone("+01:00"), True))
    assert (own.at, own.source, own.flags) == (datetime(2026, 7, 1, 11, tzinfo=UTC), "exif-camera", ("malformed-offset",))


def test_offsets_that_are_offsets_or_unknown_are_not_flagged() -> None:
    clock = CameraClock(BERLIN)
    for written, expected in (("+02:00", 10), ("+0200", 10), ("-05:00", 17), ("+00:00", 12)):
        reading = read_capture_time(_image(datetime(2026, 7, 1, 12), written), 0.0, clock)
        assert (reading.at.hour, reading.source, reading.flags) == (expected, "exif", ())
    blank = read_capture_time(_image(datetime(2026, 7, 1, 12), "   :  "), 0.0, clock)  # EXIF's "unknown"
    assert (blank.at.hour, blank.source, blank.flags) == (10, "exif-local", ())


def test_corrections_apply_to_exif_times_not_to_file_times() -> None:
    clock = CameraClock(BERLIN, correction=timedelta(seconds=450))
    local = read_capture_time(_image(datetime(2026, 7, 1, 12)), 0.0, clock)
    assert (local.at, local.source) == (datetime(2026, 7, 1, 10, 7, 30, tzinfo=UTC), "exif-local+corrected")
    offset = read_capture_time(_image(datetime(2026, 7, 1, 12), "+02:00"), 0.0, clock)
    assert (offset.at, offset.source) == (datetime(2026, 7, 1, 10, 7, 30, tzinfo=UTC), "exif+corrected")
    file_time = read_capture_time(_image(None), 1_780_000_000.0, clock)
    assert (file_time.at, file_time.source) == (datetime.fromtimestamp(1_780_000_000.0, UTC), "mtime")
    # Both readings of an ambiguous time are corrected alike.
    both = read_capture_time(_image(datetime(2026, 10, 25, 2, 30)), 0.0, clock)
    assert (both.at, both.later) == (datetime(2026, 10, 25, 0, 37, 30, tzinfo=UTC), datetime(2026, 10, 25, 1, 37, 30, tzinfo=UTC))


def test_a_camera_clock_from_its_config() -> None:
    def clock(**keys) -> CameraClock:
        return camera_clock(CameraConfig(name="c", path="/x", **keys), BERLIN)

    assert clock() == CameraClock(BERLIN, False, timedelta(0))
    assert clock(clock_offset_s=-90.5).correction == timedelta(seconds=-90.5)
    pair = {"camera": datetime(2026, 5, 1, 10, 0), "true": datetime(2026, 5, 1, 10, 7, 30)}
    assert clock(clock_reference=pair).correction == timedelta(minutes=7, seconds=30)
    as_text = {"camera": "2026-05-01T10:00:00", "true": "2026-05-01T10:07:30"}
    assert clock(clock_reference=as_text).correction == timedelta(minutes=7, seconds=30)
    # A camera on winter time all year, noted in summer against a phone on summer time: the
    # camera's 10:00 (+01:00) and the phone's 11:07:30 (+02:00) are 7.5 minutes apart.
    winter = clock(timezone="+01:00", clock_reference={"camera": "2026-07-01T10:00:00", "true": "2026-07-01T11:07:30"})
    assert (winter.own_zone, winter.correction) == (True, timedelta(minutes=7, seconds=30))
    with_offsets = clock(clock_reference={"camera": "2026-07-01T10:00:00Z", "true": "2026-07-01T12:00:30+02:00"})
    assert with_offsets.correction == timedelta(seconds=30)


# ---- the resolver ----------------------------------------------------------------------------

def _resolve_burst(walls: list[datetime], zone: ZoneInfo, names: list[str], mtimes: list[float]) -> list[datetime]:
    """Each frame resolved against the ones before it (as the store would hold them)."""
    recorded: list[Neighbour] = []
    for wall, name, mtime in zip(walls, names, mtimes):
        early, later, _ = localise(wall, zone)
        reading = CaptureReading(early, "exif-local", ("ambiguous",) if later else (), wall, later)
        near = [n for n in recorded if later is not None and early <= n.at <= later]
        recorded.append(Neighbour(resolve_ambiguous(reading, f"/cam/{name}", mtime, near).at, f"/cam/{name}", mtime))
    return [n.at for n in recorded]


@pytest.mark.parametrize("zone", sorted(FALL_BACK))
def test_the_repeated_hour_follows_the_camera_order(zone: str) -> None:
    walls = FALL_BACK[zone]
    expected = [datetime.fromisoformat(t.replace("Z", "+00:00")) for t in FALL_BACK_UTC[zone]]
    names = [f"IMG_{i:04d}.JPG" for i in range(1, 5)]
    assert _resolve_burst(walls, ZoneInfo(zone), names, [100.0, 101.0, 102.0, 103.0]) == expected
    # Copied without their times (one mtime) and named without numbers: the order they arrive in.
    assert _resolve_burst(walls, ZoneInfo(zone), ["a.jpg", "b.jpg", "c.jpg", "d.jpg"], [5.0] * 4) == expected


def test_sequence_numbers_come_before_mtimes() -> None:
    first_pass = Neighbour(datetime(2026, 10, 25, 0, 59, 55, tzinfo=UTC), "/cam/IMG_0002.JPG", 200.0)
    # IMG_0001 arrives after IMG_0002 with a later mtime (a copy): its number says it was taken before.
    assert camera_order("/cam/IMG_0001.JPG", 300.0, first_pass) == -1
    assert camera_order("/cam/IMG_0003.JPG", 100.0, first_pass) == 1
    # Another folder or another prefix: the numbers do not compare; mtime, then arrival.
    assert camera_order("/cam/100MEDIA/IMG_0001.JPG", 300.0, first_pass) == 1
    assert camera_order("/cam/DSC_0001.JPG", 100.0, first_pass) == -1
    assert camera_order("/cam/DSC_0001.JPG", 200.0, first_pass) == 1
    wall = datetime(2026, 10, 25, 2, 59, 40)
    early, later, _ = localise(wall, BERLIN)
    reading = CaptureReading(early, "exif-local", ("ambiguous",), wall, later)
    # 02:59:40 taken before IMG_0002 (00:59:55Z): the first reading (00:59:40Z), not the second.
    chosen = resolve_ambiguous(reading, "/cam/IMG_0001.JPG", 300.0, [first_pass])
    assert (chosen.at, chosen.second) == (early, False)
    # Taken after it: 02:59:40 of the second pass (01:59:40Z).
    chosen = resolve_ambiguous(reading, "/cam/IMG_0009.JPG", 300.0, [first_pass])
    assert (chosen.at, chosen.second, chosen.because) == (later, True, first_pass)
    # Nothing near: the first reading.
    assert resolve_ambiguous(reading, "/cam/IMG_0009.JPG", 300.0, []).second is False


# ---- configuration -------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("camera", "key", "problem"),
    [
        ('timezone = "Mars/Olympus"', "cameras[0].timezone", "unknown time zone 'Mars/Olympus'"),
        ('timezone = "+15:00"', "cameras[0].timezone", "out of range"),
        ('clock_offset_s = "450"', "cameras[0].clock_offset_s", "without quotes"),
        ('clock_offset_s = 450\nclock_reference = { camera = 2026-05-01T10:00:00, true = 2026-05-01T10:07:30 }',
         "cameras[0].clock_reference", "give clock_offset_s or clock_reference, not both"),
        ('clock_reference = { camera = 2026-05-01T10:00:00 }', "cameras[0].clock_reference.true", "required key is missing"),
        ('clock_reference = { camera = "yesterday", true = 2026-05-01T10:07:30 }', "cameras[0].clock_reference.camera",
         "not a date-time"),
        ('clock_reference = { camera = 2026-05-01, true = 2026-05-01T10:07:30 }', "cameras[0].clock_reference.camera",
         "needs a time of day"),
        ('clock_reference = { camera = 2026-05-01T10:00:00, true = 2026-05-01T10:07:30, phone = 1 }',
         "cameras[0].clock_reference.phone", "unknown key"),
    ],
)
def test_bad_camera_clocks_name_their_key(tmp_path: Path, camera: str, key: str, problem: str) -> None:
    path = tmp_path / "edge.toml"
    path.write_text(f'[[cameras]]\nname = "a"\npath = "/x"\n{camera}\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert f": {key}: " in str(caught.value) and problem in str(caught.value), str(caught.value)


# ---- through the daemon --------------------------------------------------------------------

def _write(folder: Path, name: str, blob: bytes, mtime: float) -> Path:
    """As an uploader writes: a hidden name, the camera's file time, then the rename."""
    hidden = folder / f".{name}"
    hidden.write_bytes(blob)
    os.utime(hidden, (mtime, mtime))
    os.replace(hidden, folder / name)
    return folder / name


def _frames(db: Path) -> list[tuple]:
    return query_rows(db, "SELECT path, captured_at, time_source, time_flags, event_id FROM frames ORDER BY id")


def _edge(args: list[str], capsys) -> SimpleNamespace:
    from edge.cli.commands import main

    code = main(args)
    out, err = capsys.readouterr()
    return SimpleNamespace(returncode=code, stdout=out, stderr=err)


@pytest.mark.parametrize("zone", sorted(FALL_BACK))
def test_the_fall_back_burst_is_one_visit_in_order(tmp_path: Path, make_config, bird_photo, caplog, zone: str) -> None:
    """`edge run --once`, stopped after two frames and run again for the other two: the store's
    frames of that hour decide, so a restart inside the burst changes nothing."""
    camera = tmp_path / "cam"
    camera.mkdir()
    config = make_config([{"name": "cam", "path": str(camera)}], station={"timezone": zone},
                         events={"independence_s": 60})
    start = datetime(2026, 10, 25, 12).timestamp()
    for index, taken in enumerate(FALL_BACK[zone]):
        _write(camera, f"IMG_{index + 1:04d}.JPG", jpeg_bytes(bird_photo("NORTHERN CARDINAL", index + 1), taken),
               start + 15 * index)
        if index in (1, 3):
            with caplog.at_level(logging.WARNING, logger="edge.daemon.pipeline"):
                assert build(config, once=True, field=False).run() == 0
    rows = _frames(config.storage.database)
    assert [(Path(p).name, at, source, flags) for p, at, source, flags, _ in rows] == [
        (f"IMG_{i + 1:04d}.JPG", FALL_BACK_UTC[zone][i], "exif-local", "ambiguous") for i in range(4)]
    assert len({event for *_, event in rows}) == 1
    events = query_rows(config.storage.database, "SELECT started_at, ended_at, frame_count FROM events")
    assert events == [(FALL_BACK_UTC[zone][0], FALL_BACK_UTC[zone][3], 4)]
    said = [r.getMessage() for r in caplog.records if "repeated hour" in r.getMessage()]
    # Once per burst and choice: the first reading (first run), the second (second run); not per frame.
    assert len(said) == 2, said
    assert f"in the repeated hour of {zone}" in said[0] and "read as the first one" in said[0]
    assert "read as the second one" in said[1] and "not earlier than the camera's frame" in said[1]
    assert "IMG_0002.JPG" in said[1]


def test_the_fall_back_burst_live(tmp_path: Path, aiy_model: Path, bird_photo, cli_env) -> None:
    """`edge run` watching the folder while the camera writes the burst frame by frame."""
    camera, db = tmp_path / "cam", tmp_path / "trailcam.db"
    camera.mkdir()
    config = tmp_path / "edge.toml"
    config.write_text(f'[station]\ndevice_id = "test"\ntimezone = "Europe/Berlin"\n'
                      f'[[cameras]]\nname = "feeder"\npath = "{camera}"\n'
                      f'[model]\npath = "{aiy_model}"\n[storage]\ndatabase = "{db}"\n[events]\nindependence_s = 60\n')
    daemon = DaemonProcess(["--config", str(config)], cli_env, tmp_path / "run.log")
    try:
        wait_for(lambda: "backlog of" in daemon.output(), 90, what="daemon started")
        start = datetime(2026, 10, 25, 12).timestamp()
        for index, taken in enumerate(FALL_BACK["Europe/Berlin"]):
            _write(camera, f"IMG_{index + 1:04d}.JPG",
                   jpeg_bytes(bird_photo("NORTHERN CARDINAL", index + 1), taken), start + 15 * index)
            wait_for(lambda index=index: len(_frames(db)) == index + 1, 60, what=f"frame {index + 1} recorded")
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(60) == 0, daemon.output()
    finally:
        daemon.kill()
    rows = _frames(db)
    assert [at for _, at, *_ in rows] == FALL_BACK_UTC["Europe/Berlin"]
    assert {flags for _, _, _, flags, _ in rows} == {"ambiguous"} and len({e for *_, e in rows}) == 1
    assert daemon.output().count("repeated hour") == 2


def test_a_winter_time_camera_files_its_birds_at_the_right_hour(tmp_path: Path, aiy_model: Path, bird_photo,
                                                                cli_env, capsys) -> None:
    """A Europe/Berlin station in July; one camera keeps winter time all year (+01:00), one the
    station's summer time. Both photograph at 11:00 CEST: the first writes 10:00, the second 11:00."""
    winter, summer, db = tmp_path / "winter", tmp_path / "summer", tmp_path / "trailcam.db"
    for folder in (winter, summer):
        folder.mkdir()
    (winter / "IMG_0001.JPG").write_bytes(jpeg_bytes(bird_photo("NORTHERN CARDINAL", 1), datetime(2026, 7, 15, 10, 0)))
    (summer / "IMG_0001.JPG").write_bytes(jpeg_bytes(bird_photo("NORTHERN CARDINAL", 2), datetime(2026, 7, 15, 11, 0, 30)))
    config = tmp_path / "edge.toml"
    config.write_text(f'[station]\ndevice_id = "test"\ntimezone = "Europe/Berlin"\n'
                      f'[[cameras]]\nname = "winter"\npath = "{winter}"\ntimezone = "+01:00"\n'
                      f'[[cameras]]\nname = "summer"\npath = "{summer}"\n'
                      f'[model]\npath = "{aiy_model}"\n[storage]\ndatabase = "{db}"\n')
    run = DaemonProcess(["--config", str(config), "--once"], cli_env, tmp_path / "run.log")
    assert run.wait(120) == 0, run.output()
    rows = {camera: (at, source, flags) for camera, at, source, flags in
            query_rows(db, "SELECT camera, captured_at, time_source, time_flags FROM frames")}
    assert rows == {"winter": ("2026-07-15T09:00:00.000Z", "exif-camera", None),
                    "summer": ("2026-07-15T09:00:30.000Z", "exif-local", None)}
    assert "camera winter: EXIF times without an offset read in UTC+01:00" in run.output()
    hourly = _edge(["counts", "--db", str(db), "--by", "hour", "--format", "csv"], capsys)
    assert hourly.returncode == 0, hourly.stderr
    assert hourly.stdout.splitlines()[1:] == ["2026-07-15T11:00+02:00,Cardinalis cardinalis,2"]


def test_clock_corrections_malformed_offsets_and_the_skipped_hour(tmp_path: Path, make_config, bird_photo,
                                                                  caplog) -> None:
    """A camera 7.5 minutes slow by clock_offset_s, another by a reference pair; a camera that
    writes `+2:00`; a frame in the spring-forward gap. One `edge run --once`."""
    folders = {name: tmp_path / name for name in ("offset", "pair", "sloppy")}
    cameras = [{"name": "offset", "path": str(folders["offset"]), "clock_offset_s": 450},
               {"name": "pair", "path": str(folders["pair"]),
                "clock_reference": {"camera": "2026-05-01T10:00:00", "true": "2026-05-01T10:07:30"}},
               {"name": "sloppy", "path": str(folders["sloppy"])}]
    config = make_config(cameras, station={"timezone": "Europe/Berlin"})
    shots = {
        ("offset", "IMG_0001.JPG"): (datetime(2026, 5, 2, 12, 0), None),
        ("offset", "IMG_0002.JPG"): (datetime(2026, 5, 2, 13, 0), "+02:00"),  # the camera's claim, still slow
        ("offset", "IMG_0003.JPG"): (None, None),  # no EXIF time: the file time, never corrected
        ("pair", "IMG_0001.JPG"): (datetime(2026, 5, 2, 12, 0), None),
        ("sloppy", "IMG_0001.JPG"): (datetime(2026, 5, 2, 12, 0), "+2:00"),
        ("sloppy", "IMG_0002.JPG"): (datetime(2026, 5, 2, 12, 0, 20), "+2:00"),
        ("sloppy", "IMG_0003.JPG"): (datetime(2026, 3, 29, 2, 30), None),  # the skipped hour
    }
    mtime = datetime(2026, 5, 2, 18, tzinfo=UTC).timestamp()
    for index, ((camera, name), (taken, offset)) in enumerate(shots.items()):
        photo = bird_photo("NORTHERN CARDINAL" if index < 5 else "AMERICAN ROBIN", index % 5 + 1)
        _write(folders[camera], name, jpeg_bytes(photo, taken, offset), mtime + index)
    with caplog.at_level(logging.WARNING, logger="edge.daemon.pipeline"):
        assert build(config, once=True, field=False).run() == 0
    rows = {(camera, Path(path).name): (at, source, flags) for camera, path, at, source, flags in
            query_rows(config.storage.database, "SELECT camera, path, captured_at, time_source, time_flags FROM frames")}
    assert rows == {
        ("offset", "IMG_0001.JPG"): ("2026-05-02T10:07:30.000Z", "exif-local+corrected", None),
        ("offset", "IMG_0002.JPG"): ("2026-05-02T11:07:30.000Z", "exif+corrected", None),
        ("offset", "IMG_0003.JPG"): ("2026-05-02T18:00:02.000Z", "mtime", None),
        ("pair", "IMG_0001.JPG"): ("2026-05-02T10:07:30.000Z", "exif-local+corrected", None),
        ("sloppy", "IMG_0001.JPG"): ("2026-05-02T10:00:00.000Z", "exif-local", "malformed-offset"),
        ("sloppy", "IMG_0002.JPG"): ("2026-05-02T10:00:20.000Z", "exif-local", "malformed-offset"),
        # 34 days before the camera's May frames, in arrival order: the plausibility check
        # (edge/store/clock_checks.py) flags it out-of-order beside the capture-time flag.
        ("sloppy", "IMG_0003.JPG"): ("2026-03-29T01:30:00.000Z", "exif-local", "nonexistent,out-of-order"),
    }
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    malformed = [m for m in said if "OffsetTimeOriginal" in m]
    assert len(malformed) == 1 and "camera sloppy" in malformed[0] and "'+2:00'" in malformed[0]
    assert "read in Europe/Berlin" in malformed[0]
    gap = [m for m in said if "does not exist" in m]
    assert len(gap) == 1 and "2026-03-29 02:30:00 does not exist in Europe/Berlin" in gap[0]
    assert "2026-03-29T03:30:00+02:00" in gap[0]
