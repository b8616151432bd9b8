"""The core path through the real CLI: frames in a folder → `edge run --once` → `edge counts`."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from tests.edge.conftest import count_rows, jpeg_bytes


def _edge(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge", *args], env=env, capture_output=True, text=True, timeout=timeout)


def test_run_once_then_counts(tmp_path: Path, aiy_model: Path, bird_photo, cli_env) -> None:
    camera = tmp_path / "camera"
    camera.mkdir()
    # Two visits of a cardinal 10 minutes apart (3 + 2 frames) and one chickadee visit.
    shots = [("NORTHERN CARDINAL", 1, "08:00:00"), ("NORTHERN CARDINAL", 2, "08:00:05"), ("NORTHERN CARDINAL", 3, "08:00:10"),
             ("NORTHERN CARDINAL", 4, "08:10:00"), ("NORTHERN CARDINAL", 5, "08:10:03"),
             ("BLACK-CAPPED CHICKADEE", 1, "09:00:00")]
    for index, (species, number, clock) in enumerate(shots):
        taken = datetime.fromisoformat(f"2026-06-01T{clock}")
        (camera / f"IMG_{index:04d}.JPG").write_bytes(jpeg_bytes(bird_photo(species, number), taken, offset="+02:00"))
    db = tmp_path / "counts.db"

    run = _edge(["run", "--once", "--model", str(aiy_model), "--watch", str(camera), "--db", str(db),
                 "--timezone", "Europe/Berlin"], cli_env)
    assert run.returncode == 0, run.stderr
    assert count_rows(db, "SELECT count(*) FROM frames WHERE status = 'ok'") == 6

    counts = _edge(["counts", "--db", str(db), "--by", "day", "--format", "json"], cli_env)
    assert counts.returncode == 0, counts.stderr
    rows = {row["species"]: row["events"] for row in json.loads(counts.stdout)}
    assert rows == {"Cardinalis cardinalis": 2, "Poecile atricapillus": 1}
    assert {row["period"] for row in json.loads(counts.stdout)} == {"2026-06-01"}

    frames = _edge(["counts", "--db", str(db), "--frames", "--format", "csv"], cli_env)
    assert frames.stdout.splitlines() == [
        "period,species,frames", "2026-06-01,Cardinalis cardinalis,5", "2026-06-01,Poecile atricapillus,1"]

    # Running again over the same folder (in the database's zone: another is refused) records nothing twice.
    again = _edge(["run", "--once", "--model", str(aiy_model), "--watch", str(camera), "--db", str(db),
                   "--timezone", "Europe/Berlin"], cli_env)
    assert again.returncode == 0, again.stderr
    assert count_rows(db, "SELECT count(*) FROM frames") == 6
    assert count_rows(db, "SELECT SUM(events) FROM daily_tallies") == 3
