"""`edge models pull` of MegaDetector's weights against a real HTTP server on 127.0.0.1: no
publisher publishes a sha256 for them, so the pull is refused without --sha256 (or
--trust-on-first-use), checked against the digest given, and says how to export the .onnx the
edge runs; a .onnx put into the pulled folder then reads MegaDetector's built-in classes."""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from edge.classify import catalogue
from edge.cli import models as models_cli

MIT = catalogue.find("megadetector-v6-mit-yolov9-c")
WEIGHTS = b"not really a checkpoint, but bytes whose digest the pull must check" * 100


class _Weights(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path != "/" + MIT.files[0].download_name:
            self.send_error(404, "not here")
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(WEIGHTS)))
        self.end_headers()
        self.wfile.write(WEIGHTS)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def mirror() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Weights)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="edge")
    models_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_the_catalogue_names_the_publishers_files_and_licences() -> None:
    entries = {e.name: e for e in catalogue.CATALOGUE if e.name.startswith("megadetector-")}
    assert set(entries) == {"megadetector-v6", "megadetector-v5a", "megadetector-v6-mit-yolov9-c",
                            "megadetector-v6-mit-yolov9-e", "megadetector-v6-apa-rtdetr-c", "megadetector-v6-apa-rtdetr-e"}
    for name, entry in entries.items():
        if name == "megadetector-v6":
            assert not entry.pullable and "AGPL" in entry.notes
            continue
        (weights,) = entry.files
        assert weights.sha256 is None and not entry.verified  # nobody publishes one: --sha256 it is
        assert weights.store_as.endswith((".pt", ".ckpt", ".pth")) and entry.model_file is None and entry.convert
    assert entries["megadetector-v5a"].files[0].url == (
        "https://github.com/agentmorris/MegaDetector/releases/download/v5.0/md_v5a.0.0.pt")
    assert entries["megadetector-v5a"].licence == "AGPL-3.0" and entries["megadetector-v5a"].licence_notice
    assert all(entries[n].licence == "MIT" for n in ("megadetector-v6-mit-yolov9-c", "megadetector-v6-mit-yolov9-e"))
    assert all(entries[n].licence == "Apache-2.0" for n in ("megadetector-v6-apa-rtdetr-c", "megadetector-v6-apa-rtdetr-e"))
    assert all(entries[n].files[0].url.startswith("https://zenodo.org/records/15398270/files/MDV6-")
               for n in entries if n.startswith("megadetector-v6-"))
    # No Ultralytics-based (AGPL) MegaDetector v6 is offered.
    assert not [e for e in catalogue.CATALOGUE if "MDV6-yolov" in "".join(f.url for f in e.files)]


def test_pull_needs_the_digest_checks_it_and_says_how_to_convert(mirror: str, tmp_path: Path, capsys) -> None:
    models = tmp_path / "models"
    assert _run(["models", "pull", MIT.name, "--dir", str(models), "--mirror", mirror]) == 2
    assert "--sha256 HEX" in capsys.readouterr().err
    assert not models.exists() or os.listdir(models) == []
    wrong = "ab" * 32
    assert _run(["models", "pull", MIT.name, "--dir", str(models), "--mirror", mirror, "--sha256", wrong]) == 1
    assert f"expected {wrong}" in capsys.readouterr().err
    assert not (models / MIT.name).exists()
    digest = hashlib.sha256(WEIGHTS).hexdigest()
    assert _run(["models", "pull", MIT.name, "--dir", str(models), "--mirror", mirror, "--sha256", digest]) == 0
    out = capsys.readouterr().out
    folder = models / MIT.name
    assert (folder / "MDV6-mit-yolov9-c.ckpt").read_bytes() == WEIGHTS
    assert "these are PyTorch weights: export the .onnx" in out and "layout yolov8" in out
    assert f'path = "{folder}"' in out and 'bird_labels = ["animal"]' in out
    assert _run(["models", "verify", "--dir", str(models)]) == 0
    capsys.readouterr()


def test_an_exported_onnx_in_the_pulled_folder_reads_megadetectors_classes(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from edge.detect.model import Detector, resolve_detector
    from tests.edge.detect.colour_detectors import build_onnx

    folder = tmp_path / "models" / MIT.name
    folder.mkdir(parents=True)
    (folder / "MDV6-mit-yolov9-c.ckpt").write_bytes(WEIGHTS)  # the weights stay beside the export
    built = build_onnx(tmp_path / "built", ["yolov8"])["yolov8"]
    shutil.copy(built / "model.onnx", folder / "model.onnx")
    spec = resolve_detector(folder, bird_labels=("animal",), person_labels=("person",), vehicle_labels=("vehicle",))
    assert spec.labels == ["animal", "person", "vehicle"] and spec.other_classes == {1: "person", 2: "vehicle"}
    assert Detector(spec).layout == "yolov8"
