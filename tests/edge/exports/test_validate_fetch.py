"""`--validate` without a folder: the official files fetched once over real HTTP into the cache
(here from a local http.server on 127.0.0.1 serving the shared copy), the second run served from
the cache; a failed fetch is a clear usage error that keeps the written package."""

from __future__ import annotations

import functools
import hashlib
import json
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from edge.exports.camtrap_dp_validate import BASE_URL_ENV, STANDARD_FILES, cache_dir, fetch_standards
from tests.edge.exports.conftest import Station
from tests.edge.exports.helpers import edge


class Server:
    """A real HTTP server on a free loopback port, counting the paths it served."""

    def __init__(self, folder: Path) -> None:
        self.requests: list[str] = []
        served = self.requests

        class Handler(SimpleHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet; the list below is the log
                served.append(self.path)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(folder)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/camtrap-dp/1.0.2/"
        self.root = folder
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def server(standards_dir: Path, tmp_path: Path):
    # Served under a path like the official one's (…/camtrap-dp/1.0.2/), from the shared copy.
    root = tmp_path / "www"
    (root / "camtrap-dp").mkdir(parents=True)
    (root / "camtrap-dp" / "1.0.2").symlink_to(standards_dir, target_is_directory=True)
    with Server(root) as running:
        yield running


def test_validate_fetches_once_then_uses_the_cache(station: Station, tmp_path: Path, edge_env, server: Server,
                                                   standards_dir: Path) -> None:
    env = {**edge_env, BASE_URL_ENV: server.url}
    first = edge(["export", "camtrap-dp", "--config", str(station.config), "--out", str(tmp_path / "one"),
                  "--validate"], env)
    assert first.returncode == 0, first.stdout + first.stderr
    cache = Path(env["XDG_CACHE_HOME"]) / "trailcam" / "camtrap-dp-1.0.2"
    assert f"standards: fetched into {cache}" in first.stdout
    assert "valid Camtrap DP 1.0.2 package" in first.stdout
    assert sorted(server.requests) == sorted(f"/camtrap-dp/1.0.2/{name}" for name in STANDARD_FILES)
    sources = json.loads((cache / "SOURCES.json").read_text())
    for name in STANDARD_FILES:
        expected = hashlib.sha256((standards_dir / name).read_bytes()).hexdigest()
        assert sources["files"][name] == {"url": server.url + name, "sha256": expected}
        assert (cache / name).read_bytes() == (standards_dir / name).read_bytes()

    second = edge(["export", "camtrap-dp", "--config", str(station.config), "--out", str(tmp_path / "two"),
                   "--validate"], env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"standards: cached in {cache}" in second.stdout
    assert len(server.requests) == len(STANDARD_FILES)  # nothing fetched again

    # A cached file that changed (sha256 no longer the recorded one) is fetched again.
    (cache / "media-table-schema.json").write_text("{}")
    folder, fetched = fetch_standards(cache, server.url)
    assert fetched and folder == cache and len(server.requests) == 2 * len(STANDARD_FILES)
    assert (cache / "media-table-schema.json").read_bytes() == (standards_dir / "media-table-schema.json").read_bytes()


def test_a_failed_fetch_is_a_clear_error_and_keeps_the_package(station: Station, tmp_path: Path, edge_env,
                                                               server: Server) -> None:
    env = {**edge_env, BASE_URL_ENV: server.url.replace("1.0.2", "9.9.9")}  # nothing there: 404
    out = tmp_path / "package"
    result = edge(["export", "camtrap-dp", "--config", str(station.config), "--out", str(out), "--validate"], env)
    assert result.returncode == 2
    assert f"--validate: cannot fetch {env[BASE_URL_ENV]}camtrap-dp-profile.json" in result.stderr
    assert "--validate FOLDER takes a local copy" in result.stderr
    assert (out / "datapackage.json").is_file()  # the package is written; only its validation failed
    assert not (Path(env["XDG_CACHE_HOME"]) / "trailcam" / "camtrap-dp-1.0.2").exists()  # no half cache


def test_the_cache_honours_xdg_cache_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "trailcam" / "camtrap-dp-1.0.2"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "trailcam" / "camtrap-dp-1.0.2"


def test_the_daemon_never_imports_frictionless(cli_env) -> None:
    """frictionless is an optional extra: the daemon, the CLI and the exports load without it."""
    import subprocess
    import sys

    code = ("import sys, edge.daemon.wiring, edge.cli.commands, edge.exports.camtrap_dp, edge.exports.coco_ct, "
            "edge.exports.camtrap_dp_validate; print('frictionless' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], env=cli_env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_without_frictionless_the_export_works_and_validate_says_what_to_install(
        station: Station, tmp_path: Path, edge_venv_python: Path, cli_env, standards_dir: Path) -> None:
    """The edge-only environment (tflite-runtime, no [ecology] extra) exports; --validate there is a
    usage error naming the extra, and the package stays written."""
    import subprocess

    probe = subprocess.run([str(edge_venv_python), "-c", "import frictionless"], capture_output=True, text=True)
    if probe.returncode == 0:
        pytest.skip("frictionless is installed in the edge-only venv")
    out = tmp_path / "package"
    result = subprocess.run([str(edge_venv_python), "-m", "edge", "export", "camtrap-dp", "--config",
                             str(station.config), "--out", str(out), "--validate", str(standards_dir)],
                            env=cli_env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "validation needs the frictionless package: pip install 'trailcam[ecology]'" in result.stderr
    assert "deployments: 2" in result.stdout and (out / "observations.csv").is_file()


def test_the_frictionless_floor_is_the_extras(repo_root: Path) -> None:
    """camtrap_dp_validate.py refuses a frictionless older than the [ecology] floor (5.19.1 cannot resolve
    the profile's local $refs), and pyproject declares that same floor in [ecology] and [dev]."""
    import tomllib

    from edge.exports.camtrap_dp_validate import MIN_FRICTIONLESS

    extras = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    floor = "frictionless>=" + ".".join(map(str, MIN_FRICTIONLESS))
    assert floor in extras["ecology"] and floor in extras["dev"]
