"""systemd/trailcam-collector.service: systemd-analyze accepts it, and its sandbox is at least
the edge daemon's (every hardening line of trailcam-edge.service is in it)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNIT = "trailcam-collector.service"


def _text() -> str:
    return (REPO / "systemd" / UNIT).read_text()


def test_the_sandbox_covers_the_edge_units_and_listens_on_nothing() -> None:
    edge = (REPO / "systemd" / "trailcam-edge.service").read_text().splitlines()
    sandbox = [line for line in edge if line.startswith(("Protect", "Private", "Restrict", "NoNewPrivileges",
                                                          "SystemCallArchitectures", "Capability", "LockPersonality"))]
    assert len(sandbox) > 15 and all(line in _text().splitlines() for line in sandbox)
    assert "ExecStart=/opt/trailcam/venv/bin/collector run --broker ${COLLECTOR_BROKER} --db ${COLLECTOR_DB}" in _text()
    # Like the edge daemon: started means running, and a stuck writer is restarted
    # (tests/collector/test_collector_systemd.py shows the process speaks the protocol).
    lines = _text().splitlines()
    assert "Type=notify" in lines and "NotifyAccess=main" in lines
    assert any(line.startswith("WatchdogSec=") and int(line.split("=")[1]) >= 30 for line in lines)


@pytest.fixture(scope="module")
def systemd_analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None:
        pytest.skip("systemd-analyze absent; `make system-deps` installs it")
    return path


def test_systemd_analyze_verify_and_security(tmp_path: Path, systemd_analyze: str) -> None:
    # verify insists that ExecStart's binary and the EnvironmentFile exist: point them at this
    # interpreter (`python -m collector`) and a file in the test's folder.
    env = tmp_path / "collector.env"
    env.write_text("COLLECTOR_BROKER=127.0.0.1:1883\nCOLLECTOR_DB=/var/lib/trailcam-collector/central.sqlite\n")
    text = _text().replace("/opt/trailcam/venv/bin/collector", f"{sys.executable} -m collector")
    text = text.replace("EnvironmentFile=/etc/trailcam/collector.env", f"EnvironmentFile={env}")
    unit = tmp_path / UNIT
    unit.write_text(text)
    verify = subprocess.run([systemd_analyze, "verify", str(unit)], check=False, capture_output=True, text=True,
                            timeout=60, cwd=tmp_path)
    assert verify.returncode == 0 and [line for line in verify.stderr.splitlines() if UNIT in line] == [], verify.stderr
    security = subprocess.run([systemd_analyze, "security", "--offline=yes", "--threshold=20", str(unit)],
                              check=False, capture_output=True, text=True, timeout=60)
    assert security.returncode == 0, security.stdout[-2000:] + security.stderr
    level = float(security.stdout.split(f"Overall exposure level for {UNIT}: ")[1].split()[0])
    assert level <= 1.5, security.stdout[-3000:]
