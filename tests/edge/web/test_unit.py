"""trailcam-web.service: the file in systemd/ is what install-service writes, systemd-analyze
accepts it with the daemon's exposure level, and `install-service --web` installs and enables it
with an empty credential file."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edge.operate.service import (
    WEB_CREDENTIAL_FILE,
    WEB_UNIT_NAME,
    render_unit,
    render_web_unit,
)
from tests.fixtures.require import missing

REPO = Path(__file__).resolve().parents[3]


def test_the_shipped_unit_is_the_rendered_one() -> None:
    text = (REPO / "systemd" / WEB_UNIT_NAME).read_text()
    assert text == render_web_unit()
    assert "ExecStart=/opt/trailcam/venv/bin/edge web --config /etc/trailcam/edge.toml" in text
    # The same sandbox as the daemon's unit, line for line.
    sandbox = [line for line in render_unit().splitlines() if line.startswith(("Protect", "Private", "Restrict",
                                                                                "SystemCall", "Capability"))]
    assert sandbox and all(line in text.splitlines() for line in sandbox)


@pytest.fixture(scope="module")
def systemd_analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None:
        missing("SYSTEMD", "systemd-analyze absent; `make system-deps` installs it")
    return path


def test_systemd_analyze_verify_and_security(tmp_path: Path, systemd_analyze: str) -> None:
    unit = tmp_path / WEB_UNIT_NAME
    unit.write_text(render_web_unit(exec_path=f"{sys.executable} -m edge"))
    verify = subprocess.run([systemd_analyze, "verify", str(unit)], check=False, capture_output=True, text=True, timeout=60,
                            cwd=tmp_path)
    assert verify.returncode == 0 and [line for line in verify.stderr.splitlines() if WEB_UNIT_NAME in line] == [], verify.stderr
    security = subprocess.run([systemd_analyze, "security", "--offline=yes", "--threshold=20", str(unit)],
                              check=False, capture_output=True, text=True, timeout=60)
    assert security.returncode == 0, security.stdout[-2000:] + security.stderr
    assert f"Overall exposure level for {WEB_UNIT_NAME}: 1." in security.stdout


def test_install_service_web_into_a_root(tmp_path: Path, cli_env: dict[str, str]) -> None:
    root = tmp_path / "root"
    argv = [sys.executable, "-m", "edge", "install-service", "--root", str(root), "--exec", "/opt/tc/bin/edge", "--web"]
    run = subprocess.run(argv, env=cli_env, check=False, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    unit = root / "etc/systemd/system" / WEB_UNIT_NAME
    assert "ExecStart=/opt/tc/bin/edge web --config /etc/trailcam/edge.toml" in unit.read_text()
    credential = root / WEB_CREDENTIAL_FILE.lstrip("/")
    assert credential.read_text() == "" and oct(credential.stat().st_mode & 0o777) == "0o600"
    link = root / "etc/systemd/system/multi-user.target.wants" / WEB_UNIT_NAME
    assert os.readlink(link) == f"/etc/systemd/system/{WEB_UNIT_NAME}"
    again = subprocess.run(argv, env=cli_env, check=False, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "nothing to change" in again.stdout
