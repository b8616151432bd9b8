"""The systemd unit and `edge install-service` into temporary roots."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from edge.config import EdgeConfig
from edge.operate.service import (
    CREDENTIAL_FILE,
    DROPIN_NAME,
    UNIT_NAME,
    Installer,
    render_config_skeleton,
    render_paths_dropin,
    render_unit,
)
from tests.fixtures.require import missing

REPO = Path(__file__).resolve().parents[3]


def tree(root: Path) -> dict[str, tuple]:
    """Every path under root with its kind, mode and content (or link target)."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        st = path.lstat()
        if path.is_symlink():
            out[rel] = ("link", os.readlink(path))
        elif path.is_dir():
            out[rel] = ("dir", stat.S_IMODE(st.st_mode))
        else:
            out[rel] = ("file", stat.S_IMODE(st.st_mode), path.read_bytes(), st.st_mtime_ns)
    return out


def install(root: Path, **kw) -> list[str]:
    lines: list[str] = []
    kw.setdefault("exec_path", "/opt/trailcam/venv/bin/edge")
    changed = Installer(root, run=lambda *a, **k: pytest.fail("no command may run under --root"),
                        out=lines.append, **kw).install()
    return changed


def test_install_service_twice_gives_identical_files(tmp_path):
    root = tmp_path / "root"
    first = install(root)
    snapshot = tree(root)
    assert install(root) == []  # nothing rewritten, not even the mtime
    assert tree(root) == snapshot
    unit = root / "etc/systemd/system" / UNIT_NAME
    assert unit.read_text() == render_unit()
    assert os.readlink(root / "etc/systemd/system/multi-user.target.wants" / UNIT_NAME) == \
        f"/etc/systemd/system/{UNIT_NAME}"
    config = root / "etc/trailcam/edge.toml"
    assert stat.S_IMODE(config.stat().st_mode) == 0o640
    credential = root / CREDENTIAL_FILE.lstrip("/")
    assert credential.read_text() == "" and stat.S_IMODE(credential.stat().st_mode) == 0o600
    assert len(first) == 4


def test_operator_config_is_never_overwritten(tmp_path):
    root = tmp_path / "root"
    install(root)
    config = root / "etc/trailcam/edge.toml"
    config.write_text("[retention]\nafter_processing = \"delete\"\n")
    install(root)
    assert config.read_text() == "[retention]\nafter_processing = \"delete\"\n"


def test_writable_paths_drop_in_comes_and_goes(tmp_path):
    root = tmp_path / "root"
    install(root, writable_paths=["/srv/trailcam/camera", "/srv/trailcam/archive"])
    dropin = root / f"etc/systemd/system/{UNIT_NAME}.d/{DROPIN_NAME}"
    assert "ReadWritePaths=/srv/trailcam/archive /srv/trailcam/camera" in dropin.read_text()
    assert "ProtectHome" not in dropin.read_text()
    install(root)  # back to keep: camera folder read-only again
    assert not dropin.exists()
    assert "ProtectHome=read-only" in render_paths_dropin(["/home/pi/camera"])


def test_config_skeleton_is_valid_toml_listing_every_section():
    text = render_config_skeleton()
    assert EdgeConfig.model_validate(tomllib.loads(text)) == EdgeConfig()  # all commented: defaults
    for section in EdgeConfig.model_fields:
        assert f"[{section}]" in text
    # uncommenting every key gives the defaults back: the skeleton tells the truth
    key_line = re.compile(r"^# ([A-Za-z_][A-Za-z0-9_]*) = (?!\s*\(|\.\.\.)")
    uncommented = "\n".join(line[2:] if key_line.match(line) else line for line in text.splitlines())
    assert uncommented != text
    assert EdgeConfig.model_validate(tomllib.loads(uncommented)) == EdgeConfig()


def test_checked_in_unit_is_the_rendered_one():
    assert (REPO / "systemd" / UNIT_NAME).read_text() == render_unit()


@pytest.fixture(scope="module")
def systemd_analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None:
        missing("SYSTEMD", "systemd-analyze absent; `make system-deps` installs it")
    return path


def test_systemd_analyze_verify_passes_without_warnings(tmp_path, systemd_analyze):
    # verify insists that ExecStart's binary exists: render the unit with this interpreter
    # (`python -m edge`), which is what install-service writes when no `edge` script exists.
    unit_dir = tmp_path / "system"
    unit_dir.mkdir()
    (unit_dir / UNIT_NAME).write_text(render_unit(exec_path=f"{sys.executable} -m edge"))
    dropin_dir = unit_dir / f"{UNIT_NAME}.d"
    dropin_dir.mkdir()
    (dropin_dir / DROPIN_NAME).write_text(render_paths_dropin(["/srv/camera", "/home/pi/archive"]))
    result = subprocess.run([systemd_analyze, "verify", str(unit_dir / UNIT_NAME)],
                            capture_output=True, text=True, timeout=60, cwd=unit_dir)
    ours = [line for line in result.stderr.splitlines() if UNIT_NAME in line]
    assert result.returncode == 0, result.stderr
    assert ours == [], result.stderr


def test_cli_install_service_into_a_root_follows_the_config(tmp_path, cli_env):
    root = tmp_path / "root"
    config = root / "etc/trailcam/edge.toml"
    config.parent.mkdir(parents=True)
    config.write_text('[[cameras]]\nname = "feeder"\npath = "/srv/trailcam/feeder"\n\n'
                      '[retention]\nafter_processing = "archive"\narchive_dir = "/srv/trailcam/archive"\n')
    argv = [sys.executable, "-m", "edge", "install-service", "--root", str(root), "--exec", "/opt/tc/bin/edge"]
    first = subprocess.run(argv, env=cli_env, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    assert "skipped (--root): useradd --system" in first.stdout
    snapshot = tree(root)
    second = subprocess.run(argv, env=cli_env, capture_output=True, text=True, timeout=60)
    assert second.returncode == 0 and "nothing to change" in second.stdout
    assert tree(root) == snapshot
    unit = (root / "etc/systemd/system" / UNIT_NAME).read_text()
    assert "ExecStart=/opt/tc/bin/edge run --config /etc/trailcam/edge.toml" in unit
    dropin = (root / f"etc/systemd/system/{UNIT_NAME}.d/{DROPIN_NAME}").read_text()
    assert "ReadWritePaths=/srv/trailcam/archive /srv/trailcam/feeder" in dropin


def test_systemd_analyze_security_exposure_stays_low(tmp_path, systemd_analyze):
    unit = tmp_path / UNIT_NAME
    unit.write_text(render_unit(exec_path=f"{sys.executable} -m edge"))
    # --threshold is in tenths: fail above an exposure of 2.0 ("OK"; 10 is "UNSAFE")
    result = subprocess.run([systemd_analyze, "security", "--offline=yes", "--threshold=20", str(unit)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    assert "Overall exposure level for trailcam-edge.service: 1." in result.stdout


def test_install_service_warns_about_an_executable_the_sandbox_hides(tmp_path, cli_env):
    result = subprocess.run([sys.executable, "-m", "edge", "install-service", "--root", str(tmp_path / "root"),
                             "--exec", "/home/pi/venv/bin/edge", "--no-enable"],
                            env=cli_env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert "warning: ExecStart /home/pi/venv/bin/edge is under a home directory" in result.stderr
    assert not (tmp_path / "root/etc/systemd/system/multi-user.target.wants").exists()
