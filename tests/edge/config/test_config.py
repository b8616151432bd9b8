"""Configuration: TOML + environment, validated at start; every error names its key; exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edge.config import ConfigError, load_config
from tests.edge.conftest import write_toml


def _edge(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge", *args], env=env, capture_output=True, text=True, timeout=120)


def _main(args: list[str], capsys, monkeypatch, env: dict[str, str] | None = None):
    """The CLI entry point in-process: same parsing, validation and exit codes, no startup cost."""
    from types import SimpleNamespace

    import edge.cli.commands
    from edge.cli.commands import main

    monkeypatch.setattr(edge.cli.commands, "setup_logging", lambda level: None)  # leave pytest's logging alone
    monkeypatch.setattr(edge.cli.commands, "keep_daemon_light", lambda: None)  # pytest's process may want pandas
    monkeypatch.setattr("edge.daemon.lifecycle.Daemon.install_signal_handlers", lambda self: None)  # keep pytest's
    for key, value in (env or {}).items():
        monkeypatch.setenv(key, value)
    code = main(args)
    out, err = capsys.readouterr()
    return SimpleNamespace(returncode=code, stdout=out, stderr=err)


def test_defaults_env_overrides_and_sections(tmp_path: Path) -> None:
    path = tmp_path / "edge.toml"
    path.write_text('[station]\ntimezone = "Europe/Berlin"\n[[cameras]]\nname = "feeder"\npath = "/srv/cam"\nmode = "poll"\n')
    config = load_config(path, environ={"TRAILCAM__MQTT__PORT": "8883", "TRAILCAM__CLASSIFY__THRESHOLD": "0.7",
                                        "TRAILCAM__CLASSIFY__DENY": '["House Sparrow"]', "OTHER": "x"})
    assert config.station.timezone == "Europe/Berlin"
    assert config.cameras[0].mode == "poll" and config.cameras[0].settle_s == 2.0
    assert config.mqtt.port == 8883 and config.classify.threshold == 0.7 and config.classify.deny == ["House Sparrow"]
    assert config.events.independence_s == 60 and config.events.group_by == "camera"
    assert str(config.storage.database) == "/var/lib/trailcam/trailcam.db"
    assert config.model.top_k == 5 and config.logging.level == "INFO"
    relative = load_config(path, environ={}, overrides={"cameras": [{"name": "c", "path": "some/dir"}]})
    assert relative.cameras[0].path == Path.cwd() / "some" / "dir"  # frames are recorded by absolute path


@pytest.mark.parametrize(
    ("toml", "key", "problem"),
    [
        ('[station]\ntimezone = "Mars/Olympus"\n', "station.timezone", "unknown IANA time zone"),
        ('[[cameras]]\nname = "a"\npath = "/x"\nmode = "fanotify"\n', "cameras[0].mode", "'inotify' or 'poll'"),
        # Neither a folder nor a stream: the table is named (path and source are each optional).
        ('[[cameras]]\nname = "a"\n', "cameras[0]", "give path (a folder the camera writes frames into) or source"),
        ('[classify]\nthreshold = 1.5\n', "classify.threshold", "less than or equal to 1"),
        ('[events]\nindependence_s = -3\n', "events.independence_s", "greater than 0"),
        ('[events]\ngroup_by = "visit"\n', "events.group_by", "'camera' or 'species'"),
        ('[model]\ntop_k = "many"\n', "model.top_k", "valid integer"),
        ('[storage]\ndatabse = "/tmp/x.db"\n', "storage.databse", "unknown key"),
        ('[sation]\ndevice_id = "x"\n', "sation", "unknown key"),
        ('[station]\ndevice_id = "my/station"\n', "station.device_id", "MQTT topic level"),
        ('[classify]\nallow = ["A"]\ndeny = ["A"]\n', "classify", "both allowed and denied: A"),
        ('[mqtt]\nport = "abc"\n', "mqtt.port", "valid integer"),
        ('[detector]\nresize = "pad"\n', "detector.resize", "'auto', 'letterbox' or 'stretch'"),
        ('[station\n', "", "not valid TOML"),
    ],
)
def test_bad_config_names_key_and_problem(tmp_path: Path, toml: str, key: str, problem: str) -> None:
    path = tmp_path / "edge.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    message = str(caught.value)
    assert str(path) in message and problem in message
    assert f": {key}:" in message if key else True


def test_bad_config_exits_2_from_every_command(tmp_path: Path, cli_env, capsys, monkeypatch) -> None:
    path = tmp_path / "edge.toml"
    path.write_text('[classify]\nthreshold = 2\n[[cameras]]\nname = "a"\npath = "/x"\nrecursive = "sometimes"\n')
    for command in (["run"], ["check"], ["counts"]):
        args = [*command, "--config", str(path)]
        # The daemon as a process (its real exit status); the others in-process.
        result = _edge(args, cli_env) if command == ["run"] else _main(args, capsys, monkeypatch)
        assert result.returncode == 2, (command, result.stderr)
        assert "classify.threshold: Input should be less than or equal to 1" in result.stderr
        assert "cameras[0].recursive:" in result.stderr
        assert "Traceback" not in result.stderr
    missing = _main(["run", "--config", str(tmp_path / "nope.toml")], capsys, monkeypatch)
    assert missing.returncode == 2 and "nope.toml: file not found" in missing.stderr
    (tmp_path / "empty.toml").write_text("")
    env_bad = _main(["check", "--config", str(tmp_path / "empty.toml")], capsys, monkeypatch,
                    {"TRAILCAM__EVENTS__INDEPENDENCE_S": "soon"})
    assert env_bad.returncode == 2 and "events.independence_s: Input should be a valid number" in env_bad.stderr


def test_run_names_missing_model_and_camera(tmp_path: Path, capsys, monkeypatch) -> None:
    empty = tmp_path / "edge.toml"
    empty.write_text("")
    no_camera = _main(["run", "--config", str(empty), "--db", str(tmp_path / "x.db")], capsys, monkeypatch)
    assert no_camera.returncode == 2 and "cameras: no camera folder configured" in no_camera.stderr
    no_model = _main(["run", "--config", str(empty), "--watch", str(tmp_path), "--db", str(tmp_path / "x.db")], capsys, monkeypatch)
    assert no_model.returncode == 2 and "model.path: no model configured" in no_model.stderr
    bad_model = _main(["run", "--config", str(empty), "--watch", str(tmp_path), "--model", str(tmp_path / "none.tflite")], capsys, monkeypatch)
    assert bad_model.returncode == 2 and "model not found" in bad_model.stderr
    assert not (tmp_path / "x.db").exists()


def test_check_validates_config_model_and_database(tmp_path: Path, aiy_model: Path, capsys, monkeypatch) -> None:
    camera = tmp_path / "cam"
    camera.mkdir()
    config = write_toml(tmp_path / "edge.toml", camera, aiy_model, tmp_path / "state" / "t.db")
    ok = _main(["check", "--config", str(config)], capsys, monkeypatch)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "model: ok (aiy_birds_v1-" in ok.stdout
    assert "965 labels" in ok.stdout and "no-bird label 'None'" in ok.stdout
    assert "check: all ok" in ok.stdout and not (tmp_path / "state" / "t.db").exists()

    (tmp_path / "notadb.db").write_text("hello")
    broken = write_toml(tmp_path / "broken.toml", tmp_path / "missing", aiy_model, tmp_path / "notadb.db")
    bad = _main(["check", "--config", str(broken)], capsys, monkeypatch)
    assert bad.returncode == 2
    assert "cameras[0].path:" in bad.stdout and "storage.database:" in bad.stdout


def test_documented_example_config_is_valid(repo_root: Path, tmp_path: Path) -> None:
    """The example in docs/configuring.md is what users copy: it must validate as written."""
    text = (repo_root / "docs" / "configuring.md").read_text()
    section = text[text.index("## Example"):]
    example = section[section.index("```toml") + len("```toml"):section.index("```", section.index("```toml") + 7)]
    path = tmp_path / "edge.toml"
    path.write_text(example)
    config = load_config(path, environ={})
    assert config.cameras[0].name == "feeder" and config.model.no_bird_label == 964
    assert config.classify.thresholds == {"House Finch": 0.8} and config.classify.deny == ["Homo sapiens"]


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ('[events]\nindependence_s = "60"\n', "events.independence_s"),
        ('[[cameras]]\nname = "a"\npath = "/x"\nrecursive = "no"\n', "cameras[0].recursive"),
        ('[classify]\nthreshold = "0.7"\n', "classify.threshold"),
        ('[mqtt]\nenabled = "true"\n', "mqtt.enabled"),
        ('[health]\nmetrics_port = "9100"\n', "health.metrics_port"),
        ('[model]\ntop_k = 5.0\n', "model.top_k"),
    ],
)
def test_quoted_numbers_and_booleans_are_refused(tmp_path: Path, toml: str, key: str) -> None:
    """TOML has types: a quoted "60" or "no" is a mistake to name, not a value to coerce."""
    path = tmp_path / "edge.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert f": {key}: Input should be a valid" in str(caught.value)


def test_paths_stay_toml_strings_and_env_overrides_are_toml_values(tmp_path: Path) -> None:
    path = tmp_path / "edge.toml"
    path.write_text('[model]\npath = "/m/model.tflite"\nlabels = "/m/labels.txt"\nno_bird_label = 964\n'
                    '[storage]\ndatabase = "/s/t.db"\n[retention]\narchive_dir = "/a"\n'
                    '[[cameras]]\nname = "c"\npath = "/cam"\nrecursive = true\n')
    config = load_config(path, environ={
        "TRAILCAM__EVENTS__INDEPENDENCE_S": "90", "TRAILCAM__MQTT__ENABLED": "true", "TRAILCAM__MQTT__PORT": "8883",
        "TRAILCAM__CLASSIFY__THRESHOLDS": '{"House Finch": 0.8}',
        # Text keys keep the raw string, even when it looks like a number.
        "TRAILCAM__MQTT__PASSWORD": "123456", "TRAILCAM__STATION__DEVICE_ID": "0042",
        "TRAILCAM__STORAGE__DATABASE": "/env/t.db"})
    assert config.events.independence_s == 90.0 and isinstance(config.events.independence_s, float)
    assert config.mqtt.enabled is True and config.mqtt.port == 8883
    assert config.classify.thresholds == {"House Finch": 0.8}
    assert config.mqtt.password.get_secret_value() == "123456" and config.station.device_id == "0042"
    assert config.storage.database == Path("/env/t.db") and config.model.path == Path("/m/model.tflite")
    assert config.model.labels == Path("/m/labels.txt") and config.retention.archive_dir == Path("/a")
    assert config.cameras[0].recursive is True and config.model.no_bird_label == 964
    with pytest.raises(ConfigError, match="events.independence_s: Input should be a valid number"):
        load_config(path, environ={"TRAILCAM__EVENTS__INDEPENDENCE_S": "soon"})
