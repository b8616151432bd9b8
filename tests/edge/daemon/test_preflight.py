"""Start-up refusal: `edge check` and `edge run` share one preflight, so they agree.

Every configuration mistake is refused by both commands with exit 2 and a message that names
the dotted key, and a refused start creates nothing: no database, no state folder (where
status.json lives), no status.json. Each case runs the real CLI as a subprocess.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.edge.conftest import write_aiy_bundle, write_toml


def _edge(args: list[str], env: dict[str, str], extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge", *args], env={**env, **(extra_env or {})},
                          capture_output=True, text=True, timeout=180)


@pytest.fixture
def readonly_dir(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """A folder nobody can write in: a read-only tmpfs as root (root ignores permissions), else 0555."""
    folder = tmp_path / "readonly"
    if os.geteuid() == 0:
        yield request.getfixturevalue("tmpfs")(folder, "1m", readonly=True)
        return
    folder.mkdir()
    folder.chmod(0o555)
    yield folder
    folder.chmod(0o755)


# (name, TOML changes, expected message). `{tmp}` is the test's folder; `state` is the state
# folder the database (and status.json) would go in unless a case moves the database.
CASES: list[tuple[str, dict[str, str], str]] = [
    ("database under a file", {"database": "{tmp}/afile/x.db"},
     "storage.database: {tmp}/afile is not a folder"),
    ("database folder unwritable", {"database": "{readonly}/state/t.db"},
     "storage.database: {readonly} is not writable"),
    ("missing model", {"model": "{tmp}/none.tflite"},
     "model.path: {tmp}/none.tflite: model not found"),
    ("missing labels", {"extra_model": 'labels = "{tmp}/none.txt"'},
     "model.labels: {tmp}/none.txt: labels file not found"),
    ("camera is a file", {"camera": "{tmp}/afile"},
     "cameras[0].path: {tmp}/afile is not a folder"),
    ("deny typo", {"extra": '[classify]\ndeny = ["Turdus migratoriuss"]'},
     "classify.deny[0]: 'Turdus migratoriuss' is not a label of the model (did you mean 'Turdus migratorius'?)"),
    ("threshold typo", {"extra": '[classify]\nthresholds = {{"Turdus migratoriuss" = 0.9}}'},
     "classify.thresholds.\"Turdus migratoriuss\": 'Turdus migratoriuss' is not a label of the model "
     "(did you mean 'Turdus migratorius'?)"),
    ("allow matches nothing (case)", {"extra_model": 'labels = "{aiy}/labelmap.csv"',
                                      "extra": '[classify]\nallow = ["Turdus migratorius", "american robin"]'},
     "classify.allow[1]: 'american robin' is not a label of the model (did you mean 'American Robin'? "
     "names are case-sensitive)"),
    ("quoted number", {"extra": '[events]\nindependence_s = "60"'},
     "events.independence_s: Input should be a valid number (got '60')"),
    ("quoted boolean", {"camera_extra": 'recursive = "no"'},
     "cameras[0].recursive: Input should be a valid boolean (got 'no')"),
]


def _write_case(tmp_path: Path, aiy_model_dir: Path, changes: dict[str, str], readonly: Path | None) -> tuple[Path, Path]:
    (tmp_path / "afile").write_text("not a folder")
    camera = tmp_path / "cam"
    camera.mkdir(exist_ok=True)

    def fill(text: str) -> str:
        return text.format(tmp=tmp_path, aiy=aiy_model_dir, readonly=readonly)

    db = Path(fill(changes.get("database", "{tmp}/state/t.db")))
    text = write_toml(tmp_path / "edge.toml", Path(fill(changes.get("camera", str(camera)))),
                      Path(fill(changes.get("model", str(aiy_model_dir / "model.tflite")))), db).read_text()
    if "camera_extra" in changes:
        text = text.replace('name = "feeder"\n', 'name = "feeder"\n' + fill(changes["camera_extra"]) + "\n")
    if "extra_model" in changes:
        text = text.replace("[storage]\n", fill(changes["extra_model"]) + "\n\n[storage]\n")
    text += fill(changes.get("extra", "")) + "\n"
    (tmp_path / "edge.toml").write_text(text)
    return tmp_path / "edge.toml", db


@pytest.mark.parametrize("command", ["run", "check"])
@pytest.mark.parametrize(("name", "changes", "expected"), CASES, ids=[case[0] for case in CASES])
def test_config_mistake_is_refused_by_check_and_run_alike_and_creates_nothing(
        tmp_path: Path, aiy_model_dir: Path, cli_env: dict[str, str], request: pytest.FixtureRequest,
        command: str, name: str, changes: dict[str, str], expected: str) -> None:
    readonly = request.getfixturevalue("readonly_dir") if "{readonly}" in str(changes) else None
    config, db = _write_case(tmp_path, aiy_model_dir, changes, readonly)
    result = _edge([command, "--config", str(config)], cli_env)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert expected.format(tmp=tmp_path, readonly=readonly) in output, output
    assert "Traceback" not in output and "all ok" not in output
    assert not db.exists(), f"{db} created by a refused {command}"
    assert not (tmp_path / "state").exists(), f"state folder created by a refused {command}"
    assert not list(tmp_path.rglob("status.json")) and not (db.parent / "status.json").exists()
    if readonly is not None:
        assert not db.parent.exists()


def test_refused_start_reports_every_problem_at_once(tmp_path: Path, aiy_model_dir: Path, cli_env) -> None:
    config, db = _write_case(tmp_path, aiy_model_dir, {"database": "{tmp}/afile/x.db", "camera": "{tmp}/afile",
                                                       "extra": '[classify]\ndeny = ["Turdus migratoriuss"]'}, None)
    result = _edge(["run", "--config", str(config)], cli_env)
    assert result.returncode == 2
    for key in ("cameras[0].path:", "classify.deny[0]:", "storage.database:"):
        assert f"edge: {key}" in result.stderr, result.stderr


def test_check_passes_what_run_then_starts_with_flag_and_env_overrides(
        tmp_path: Path, aiy_model_dir: Path, cli_env: dict[str, str]) -> None:
    """The CLI flags (--model, --watch, --db) and a numeric environment override still work."""
    camera, db = tmp_path / "cam", tmp_path / "state" / "t.db"
    camera.mkdir()
    (tmp_path / "edge.toml").write_text('[station]\ndevice_id = "test"\n[classify]\ndeny = ["Turdus migratorius"]\n')
    args = ["--config", str(tmp_path / "edge.toml"), "--model", str(aiy_model_dir / "model.tflite"),
            "--watch", str(camera), "--db", str(db)]
    env = {"TRAILCAM__EVENTS__INDEPENDENCE_S": "90"}
    check = _edge(["check", *args], cli_env, env)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "classify: ok (1 species name(s) are labels of the model)" in check.stdout
    assert f"storage.database: ok ({db} will be created)" in check.stdout and not (tmp_path / "state").exists()
    run = _edge(["run", "--once", *args], cli_env, env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert db.exists() and (tmp_path / "state" / "status.json").exists()


def test_missing_camera_folder_is_a_warning_for_check_and_the_daemon_an_error_for_once(
        tmp_path: Path, aiy_model_dir: Path, cli_env: dict[str, str]) -> None:
    config = write_toml(tmp_path / "edge.toml", tmp_path / "later", aiy_model_dir / "model.tflite",
                        tmp_path / "state" / "t.db")
    check = _edge(["check", "--config", str(config)], cli_env)
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"cameras[0].path: warning: {tmp_path / 'later'} does not exist (yet)" in check.stdout
    once = _edge(["run", "--once", "--config", str(config)], cli_env)
    assert once.returncode == 2 and f"cameras[0].path: {tmp_path / 'later'} does not exist" in once.stderr
    assert not (tmp_path / "state").exists()


def test_reload_to_a_model_without_a_configured_name_keeps_the_old_model(
        tmp_path: Path, aiy_model: Path, make_config: Callable, caplog: pytest.LogCaptureFixture) -> None:
    bundle = write_aiy_bundle(tmp_path / "bundle", aiy_model, "aiy-bundle")
    config = make_config(model={"path": str(bundle)}, classify={"deny": ["Turdus migratorius"]})
    from edge.daemon.wiring import build

    daemon = build(config, once=True, field=False)
    daemon.start()
    try:
        before = daemon.processor.classifier
        labels = bundle / "labels.txt"
        original = labels.read_text()
        # The retrained model lost the class (same number of outputs, another name in its place).
        labels.write_text(original.replace("Turdus migratorius\n", "Turdus migratorius robustus\n"))
        with caplog.at_level(logging.ERROR, logger="edge.daemon.lifecycle"):
            assert daemon.reload_model() is False
        assert daemon.processor.classifier is before
        assert ("classify.deny[0]: 'Turdus migratorius' is not a label of the model "
                "(did you mean 'Turdus migratorius robustus'?)") in caplog.text
        assert "model reload refused, keeping aiy-bundle" in caplog.text
        labels.write_text(original)
        assert daemon.reload_model() is True and daemon.processor.classifier is not before
    finally:
        daemon.stop()


def test_start_in_process_refuses_a_species_typo_before_opening_the_store(tmp_path: Path, make_config) -> None:
    from edge.daemon.lifecycle import DaemonError
    from edge.daemon.wiring import build

    config = make_config(classify={"thresholds": {"Turdus migratoriuss": 0.9}})
    with pytest.raises(DaemonError, match=r"classify\.thresholds\.\"Turdus migratoriuss\".*did you mean 'Turdus migratorius'"):
        build(config, field=False).start()
    assert not (tmp_path / "trailcam.db").exists()
