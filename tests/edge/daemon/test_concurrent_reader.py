"""An operator's reader process querying counts in a loop while the daemon writes: no
"database is locked", and every snapshot is consistent (tallies equal the frame rows)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from tests.edge.conftest import count_rows, jpeg_bytes, wait_for

READER = r"""
import json, sys, time
from edge.store.db import open_readonly
from edge.store import queries
db_path, expected = sys.argv[1], int(sys.argv[2])
while True:
    try:
        db = open_readonly(db_path)
        break
    except Exception:
        time.sleep(0.01)
print("ready", flush=True)
reads, errors, inconsistent, last_total, went_back = 0, [], 0, 0, 0
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    try:
        db.conn.execute("BEGIN")
        tallied = db.conn.execute("SELECT COALESCE(SUM(frames), 0) FROM daily_tallies").fetchone()[0]
        rows = db.conn.execute("SELECT count(*) FROM frames WHERE status = 'ok' AND species IS NOT NULL").fetchone()[0]
        events = db.conn.execute("SELECT COALESCE(SUM(frame_count), 0) FROM events").fetchone()[0]
        db.conn.execute("COMMIT")
        report = queries.counts(db, by="day", unit="frames")
        reads += 1
        inconsistent += (tallied != rows) or (events != rows)
        went_back += tallied < last_total
        last_total = tallied
        if tallied >= expected and sum(r["frames"] for r in report) >= expected:
            break
    except Exception as error:
        errors.append(f"{type(error).__name__}: {error}")
        if db.conn.in_transaction:
            db.conn.execute("ROLLBACK")
print(json.dumps({"reads": reads, "errors": errors[:5], "inconsistent": inconsistent, "went_back": went_back, "last": last_total}))
"""


def test_reader_never_sees_locks_or_partial_frames(tmp_path, make_config, thread_daemon, bird_photo, cli_env) -> None:
    camera = tmp_path / "cam"
    config = make_config([{"name": "cam", "path": str(camera)}])
    db = config.storage.database
    thread_daemon(config)
    wait_for(lambda: db.exists(), 30, what="database created")
    total = 60
    reader = subprocess.Popen([sys.executable, "-c", READER, str(db), str(total)], env=cli_env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert reader.stdout.readline().strip() == "ready"
    for index in range(total):
        (camera / f"f{index:03d}.jpg").write_bytes(
            jpeg_bytes(bird_photo("NORTHERN CARDINAL", 1 + index % 5), comment=f"{index} {time.time_ns()}"))
    out, err = reader.communicate(timeout=150)
    assert reader.returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["errors"] == []
    assert result["inconsistent"] == 0 and result["went_back"] == 0
    assert result["last"] == total and result["reads"] > 5
    assert count_rows(db, "SELECT count(*) FROM frames WHERE status = 'ok'") == total
