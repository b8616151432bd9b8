"""The edge package must run on a Pi without TensorFlow: importing all of it and classifying a
frame must never import TensorFlow (it is installed in the development venv, so a stray
import would succeed silently there and fail on a device)."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import edge

PROBE = r"""
import importlib, json, pkgutil, sys
import edge
names = sorted(m.name for m in pkgutil.walk_packages(edge.__path__, "edge.") if m.name != "edge.__main__")
for name in names:
    importlib.import_module(name)
from edge.classify.model import load_classifier
from edge.ingest.imaging import decode
clf = load_classifier(sys.argv[1])
frame = decode(open(sys.argv[2], "rb").read(), clf.input_size)
preds, _ = clf.classify(frame.rgb, 1)
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "tf_keras", "jax", "torch", "matplotlib"))
print(json.dumps({"modules": names, "heavy": heavy, "top1": preds[0].label, "runtime": clf.runtime}))
"""


def test_edge_never_imports_tensorflow(aiy_model: Path, bird_photo, cli_env) -> None:
    result = subprocess.run([sys.executable, "-c", PROBE, str(aiy_model), str(bird_photo("NORTHERN CARDINAL", 1))],
                            env=cli_env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["heavy"] == []
    assert "edge.daemon" in report["modules"] and "edge.store" in report["modules"]
    assert report["top1"] == "Cardinalis cardinalis"
    expected = {m.name for m in pkgutil.walk_packages(edge.__path__, "edge.")} - {"edge.__main__"}
    assert set(report["modules"]) == expected


# The daemon's and the CLI's import path, and the report's modules themselves: matplotlib (the
# `report` extra, installed in the development venv) is imported only when a report draws its plots.
PLOT_PROBE = r"""
import json, sys
import edge.daemon, edge.daemon.wiring, edge.cli, edge.cli.commands, edge.cli.report
import edge.ecology.analyses, edge.ecology.report
edge.cli.commands.build_parser()
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] == "matplotlib")))
"""


def test_the_daemon_and_the_cli_never_import_matplotlib(cli_env) -> None:
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        pytest.skip("matplotlib is not installed here: nothing could import it")
    result = subprocess.run([sys.executable, "-c", PLOT_PROBE], env=cli_env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
