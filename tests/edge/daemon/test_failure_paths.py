"""Failure paths field devices hit (issue 22), each through the real daemon or the real store.

- placeholder and damaged EXIF dates and offsets: the frame is counted, its time is the file's
  (time_source `mtime`) or, for an offset that is not one, read in the zone and flagged
  `malformed-offset`; never a crash, never an error row;
- SIGHUP with a corrupt model: the old model stays, the failure is logged, frames go on;
- a migration whose backup copy cannot be written (a file-size limit: the kernel refuses the
  write; a read-only folder: the preflight refuses first): the start is refused with a clear
  message and the database is unchanged.
"""

from __future__ import annotations

import io
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import piexif
import pytest
from PIL import Image

from edge.ingest.capture_time import CameraClock, parse_exif_datetime, parse_offset, read_capture_time
from edge.store.times import format_utc
from tests.edge.conftest import DaemonProcess, count_rows, jpeg_bytes, wait_for, write_aiy_bundle, write_toml
from tests.fixtures.require import missing

MTIME = 1_780_000_000.0  # 2026-05-28T20:26:40Z: the file time every damaged frame falls back to
SCHEMA5_DB = Path(__file__).parents[1] / "data" / "schema5-c4ed169.db"

# (DateTimeOriginal as written, OffsetTimeOriginal as written or None, expected time_source, flags)
DAMAGED = {
    "zeros": (b"0000:00:00 00:00:00", None, "mtime", None),
    "blanks": (b"    :  :     :  :  ", None, "mtime", None),
    "month13": (b"2026:13:01 10:00:00", None, "mtime", None),
    "feb30": (b"2026:02:30 10:00:00", None, "mtime", None),
    "hour25": (b"2026:05:01 25:00:00", None, "mtime", None),
    "garbage": (b"\xff\xfe\x00\x01garbage", None, "mtime", None),
    "year1": (b"0001:01:01 00:00:00", None, "mtime", None),            # east of UTC (Tokyo) it would be year 0
    "year1-offset": (b"0001:01:01 00:30:00", b"+01:00", "mtime", None),
    "year9999": (b"9999:12:31 23:59:59", None, "mtime", None),         # + the visit window: year 10000
    "offset+25": (b"2026:05:01 10:00:00", b"+25:00", "exif-local", "malformed-offset"),
    "offset+14:60": (b"2026:05:01 10:00:00", b"+14:60", "exif-local", "malformed-offset"),
    "offset-letters": (b"2026:05:01 10:00:00", b"+ab:cd", "exif-local", "malformed-offset"),
    "offset-blank": (b"2026:05:01 10:00:00", b"   :  ", "exif-local", None),  # EXIF's "unknown": not malformed
}


def _damaged_jpeg(photo: Path, taken: bytes, offset: bytes | None) -> bytes:
    """A real photo whose EXIF DateTimeOriginal (and offset) hold exactly the given bytes."""
    exif = {"0th": {}, "Exif": {piexif.ExifIFD.DateTimeOriginal: taken}, "GPS": {}, "1st": {}}
    if offset is not None:
        exif["Exif"][piexif.ExifIFD.OffsetTimeOriginal] = offset
    buffer = io.BytesIO()
    Image.open(photo).convert("RGB").save(buffer, "JPEG", quality=90, exif=piexif.dump(exif))
    return buffer.getvalue()


@pytest.mark.parametrize("case", sorted(DAMAGED))
def test_damaged_exif_times_read_as_the_file_time_or_flagged_never_raise(case: str) -> None:
    taken, offset, source, flag = DAMAGED[case]
    exif = {"0th": {}, "Exif": {piexif.ExifIFD.DateTimeOriginal: taken}, "GPS": {}, "1st": {}}
    if offset is not None:
        exif["Exif"][piexif.ExifIFD.OffsetTimeOriginal] = offset
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "JPEG", exif=piexif.dump(exif))
    from zoneinfo import ZoneInfo
    with Image.open(io.BytesIO(buffer.getvalue())) as image:
        reading = read_capture_time(image, MTIME, CameraClock(ZoneInfo("Asia/Tokyo")))
    assert reading.source == source
    assert reading.flags == ((flag,) if flag else ())
    if source == "mtime":
        assert reading.at == datetime.fromtimestamp(MTIME, UTC)
        assert parse_exif_datetime(taken) is None
    else:
        assert reading.at == datetime(2026, 5, 1, 1, 0, tzinfo=UTC)  # 10:00 in Tokyo (UTC+9)
        assert parse_offset(offset) is None


def test_damaged_exif_frames_are_counted_through_the_daemon_with_the_file_time(tmp_path: Path, aiy_model, bird_photo,
                                                                              cli_env) -> None:
    camera, db = tmp_path / "cam", tmp_path / "t.db"
    camera.mkdir()
    for number, case in enumerate(sorted(DAMAGED), 1):
        taken, offset, _source, _flag = DAMAGED[case]
        path = camera / f"IMG_{number:04d}.jpg"
        path.write_bytes(_damaged_jpeg(bird_photo("NORTHERN CARDINAL", 1 + number % 5), taken, offset))
        os.utime(path, (MTIME + number, MTIME + number))
    config = write_toml(tmp_path / "edge.toml", camera, aiy_model, db)
    run = subprocess.run([sys.executable, "-m", "edge", "run", "--once", "--config", str(config)], env=cli_env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    conn = sqlite3.connect(db)
    rows = {Path(p).name: rest for p, *rest in conn.execute(
        "SELECT path, status, error, time_source, time_flags, captured_at FROM frames")}
    conn.close()
    assert len(rows) == len(DAMAGED)
    for number, case in enumerate(sorted(DAMAGED), 1):
        status, error, source, flags, captured = rows[f"IMG_{number:04d}.jpg"]
        _taken, _offset, expected_source, flag = DAMAGED[case]
        assert (status, error) == ("ok", None), case
        assert source == expected_source and flags == flag, (case, source, flags)
        if expected_source == "mtime":
            assert captured == format_utc(datetime.fromtimestamp(MTIME + number, UTC)), case
        else:
            assert captured == "2026-05-01T08:00:00.000Z", case  # 10:00 in Berlin (UTC+2), the station's zone
    assert "is not an offset" in run.stderr  # the malformed offsets are said (once per camera)
    assert "Traceback" not in run.stderr


# -- SIGHUP with a corrupt model ----------------------------------------------------------

def _corrupt(bundle: Path, how: str) -> None:
    """Spoil the bundle's model: garbage bytes (its sha256 no longer matches the manifest), or
    garbage / a truncated model with the manifest's sha256 rewritten, so that the interpreter,
    not the checksum, is what refuses it."""
    import hashlib
    import json

    model = bundle / "model.tflite"
    real = model.read_bytes()
    model.write_bytes(os.urandom(64 * 1024) if how != "truncated" else real[: len(real) // 3])
    if how != "garbage":
        manifest = json.loads((bundle / "manifest.json").read_text())
        manifest["tflite_sha256"] = hashlib.sha256(model.read_bytes()).hexdigest()
        manifest["model_id"] = "aiy-corrupt"
        (bundle / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("how", ["garbage", "garbage-same-sha", "truncated"])
def test_sighup_with_a_corrupt_model_keeps_the_old_one_and_frames_go_on(tmp_path: Path, aiy_model, bird_photo,
                                                                        cli_env, how: str) -> None:
    camera, db = tmp_path / "cam", tmp_path / "t.db"
    camera.mkdir()
    bundle = write_aiy_bundle(tmp_path / "bundle", aiy_model, "aiy-first")
    config = write_toml(tmp_path / "edge.toml", camera, bundle, db)
    ok = "SELECT COUNT(*) FROM frames WHERE status = 'ok'"
    daemon = DaemonProcess(["--config", str(config)], cli_env, tmp_path / "run.log")
    try:
        wait_for(lambda: "backlog of" in daemon.output(), 60, what="daemon started")
        (camera / "IMG_0001.jpg").write_bytes(jpeg_bytes(bird_photo("NORTHERN CARDINAL", 1)))
        wait_for(lambda: count_rows(db, ok) == 1, 60, what="first frame")
        _corrupt(bundle, how)
        daemon.signal(signal.SIGHUP)
        wait_for(lambda: "model reload failed, keeping aiy-first" in daemon.output(), 60, what="reload refused")
        (camera / "IMG_0002.jpg").write_bytes(jpeg_bytes(bird_photo("NORTHERN CARDINAL", 2)))
        wait_for(lambda: count_rows(db, ok) == 2, 60, what="a frame after the refused reload")
        assert daemon.proc.poll() is None, daemon.output()
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(60) == 0, daemon.output()
    finally:
        daemon.kill()
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT model_id, COUNT(*) FROM frames GROUP BY model_id").fetchall() == [("aiy-first", 2)]
    conn.close()
    assert "model reloaded" not in daemon.output()


# -- a migration whose backup cannot be written -------------------------------------------

def _dump(path: Path) -> list[str]:
    """Everything the database holds, as SQL (the journal mode, a header flag, left aside)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def _schema_version(path: Path) -> str:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
    finally:
        conn.close()


def test_a_migration_backup_over_the_file_size_limit_refuses_the_start_and_changes_nothing(
        tmp_path: Path, aiy_model, cli_env) -> None:
    """The kernel refuses the backup's writes past RLIMIT_FSIZE (EFBIG, as a full disk or a
    quota would): `edge run` stops with a message naming the backup, the schema-5 database is
    left as it was, and no partial copy stays behind."""
    camera, db = tmp_path / "cam", tmp_path / "state" / "edge.db"
    camera.mkdir()
    db.parent.mkdir()
    shutil.copyfile(SCHEMA5_DB, db)
    before = _dump(db)
    limit = db.stat().st_size // 2  # the copy needs the whole size; the daemon's other files are small

    def limited() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write (EFBIG), not a killed process
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    config = write_toml(tmp_path / "edge.toml", camera, aiy_model, db)
    run = subprocess.run([sys.executable, "-m", "edge", "run", "--once", "--config", str(config)], env=cli_env,
                         capture_output=True, text=True, timeout=300, preexec_fn=limited)
    assert run.returncode not in (0, None), run.stderr
    assert f"schema 5 needs migrating to 6, but the backup copy {db}.schema5.bak cannot be written" in run.stderr
    assert "Traceback" not in run.stderr
    assert _schema_version(db) == "5"
    assert _dump(db) == before
    assert sorted(p.name for p in db.parent.iterdir() if ".bak" in p.name) == []


DROP_CAPS = ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search", "--"]


def test_a_database_in_a_read_only_folder_is_refused_before_any_migration(tmp_path: Path, aiy_model, cli_env) -> None:
    """A read-only state folder: neither the backup nor the journal could be written; the
    preflight refuses the start (exit 2, naming storage.database) and the database is unchanged."""
    prefix: list[str] = []
    if os.geteuid() == 0:  # root writes anywhere: drop the capabilities that let it
        if shutil.which("setpriv") is None:
            missing("SETPRIV", "running as root and setpriv (util-linux) is not installed: cannot make a folder read-only")
        prefix = DROP_CAPS
    camera, state = tmp_path / "cam", tmp_path / "state"
    camera.mkdir()
    state.mkdir()
    db = state / "edge.db"
    shutil.copyfile(SCHEMA5_DB, db)
    before = _dump(db)
    tmp_path.chmod(0o755)
    camera.chmod(0o755)
    config = write_toml(tmp_path / "edge.toml", camera, aiy_model, db)
    state.chmod(0o555)
    try:
        run = subprocess.run([*prefix, sys.executable, "-m", "edge", "run", "--once", "--config", str(config)],
                             env=cli_env, capture_output=True, text=True, timeout=300)
    finally:
        state.chmod(0o755)
    assert run.returncode == 2, run.stderr
    assert "storage.database" in run.stderr and "is not writable" in run.stderr, run.stderr
    assert _schema_version(db) == "5" and _dump(db) == before
    assert sorted(p.name for p in state.iterdir()) == ["edge.db"]
