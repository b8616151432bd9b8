"""The edge package must run on a Pi without TensorFlow: importing all of it and classifying a
frame must never import TensorFlow (it is installed in the development venv, so a stray
import would succeed silently there and fail on a device)."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

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
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "tf_keras", "jax", "torch"))
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
