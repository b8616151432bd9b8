"""The `collector` command line: devices (table, json, silent flag), import, usage errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from collector.sink import Sink
from tests.collector.helpers import REPO, event_history, info_payload
from tests.collector.test_sink import _messages
from tests.fixtures.waiting import wait_for


def _collector(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "collector", *args], capture_output=True, text=True, timeout=60,
                          cwd=cwd, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})


def test_devices_lists_and_flags_the_silent(central_db: str, tmp_path: Path) -> None:
    sink = Sink(central_db)
    try:
        sink.write(_messages("cam-1", [("status", "online"), ("info", info_payload("cam-1"))]))
        sink.write(_messages("cam-2", event_history("cam-2", 1)))
    finally:
        sink.close()
    out = _collector("devices", "--db", central_db, "--format", "json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    devices = json.loads(out.stdout)
    assert [d["device"] for d in devices] == ["cam-1", "cam-2"]
    assert [d["state"] for d in devices] == ["online", "unknown"]
    assert devices[0]["cameras"] == ["feeder", "pond"] and devices[0]["software_version"] == "0.1.0"
    assert not any(d["silent"] for d in devices)
    assert devices[0]["last_seen"].endswith("Z")
    # Nothing arrives after the writes, so a second later both are silent.
    wait_for(lambda: "2 devices, 2 silent" in _collector("devices", "--db", central_db, "--silent-after", "1s",
                                                         cwd=tmp_path).stdout, 10, interval=0.3,
             what="both devices silent after 1s")
    table = _collector("devices", "--db", central_db, "--silent-after", "1s", cwd=tmp_path)
    assert table.returncode == 0 and table.stdout.splitlines()[0].split()[:2] == ["device", "state"]
    assert "SILENT" in table.stdout.splitlines()[1]


def test_import_command_twice(central_db: str, tmp_path: Path) -> None:
    path = tmp_path / "site-visit.jsonl"
    lines = [{"topic": f"trailcam/cam-v/{t}", "payload": json.loads(p)} for n in range(5) for t, p in
             event_history("cam-v", n)]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    first = _collector("import", str(path), "--db", central_db, cwd=tmp_path)
    second = _collector("import", str(path), "--db", central_db, cwd=tmp_path)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert "20 event messages" in first.stdout and "0 rejected" in first.stdout
    listed = json.loads(_collector("devices", "--db", central_db, "--format", "json", cwd=tmp_path).stdout)
    assert [d["device"] for d in listed] == ["cam-v"]


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    bad_broker = _collector("run", "--broker", "nohost", "--db", "x.sqlite", cwd=tmp_path)
    assert bad_broker.returncode == 2 and "expected HOST:PORT" in bad_broker.stderr
    bad_duration = _collector("devices", "--db", "x.sqlite", "--silent-after", "soon", cwd=tmp_path)
    assert bad_duration.returncode == 2 and "expected a duration" in bad_duration.stderr
    missing = _collector("import", str(tmp_path / "none.jsonl"), "--db", "x.sqlite", cwd=tmp_path)
    assert missing.returncode == 2 and "no such file" in missing.stderr
    nodir = _collector("devices", "--db", str(tmp_path / "no" / "such" / "c.sqlite"), cwd=tmp_path)
    assert nodir.returncode == 1 and "does not exist" in nodir.stderr
    unreachable = _collector("devices", "--db", "postgresql://nobody@127.0.0.1:1/x", cwd=tmp_path)
    assert unreachable.returncode == 1 and "collector devices:" in unreachable.stderr
