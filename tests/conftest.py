"""Fixtures every test area shares: where the repository and ../shared are, and how to run CLIs.

Area-specific fixtures live in tests/fixtures/ (models, broker) and in each area's conftest.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.fixtures.require import missing

pytest_plugins = ["tests.fixtures.models", "tests.fixtures.broker", "tests.fixtures.disk", "tests.fixtures.postgres",
                  "tests.fixtures.central_db", "tests.fixtures.skip_budget"]

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DIR = Path(os.environ.get("TRAILCAM_SHARED", REPO_ROOT.parent / "shared"))
EDGE_VENV_PYTHON = REPO_ROOT / ".venv-edge" / "bin" / "python"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def birds25_dir() -> Path:
    path = SHARED_DIR / "data" / "birds25"
    if not path.is_dir():
        missing("SHARED", f"real photographs not available: {path} is absent (../shared is not beside the checkout)")
    return path


@pytest.fixture(scope="session")
def trailcam_nobird_dir() -> Path:
    """27 real camera-trap frames without a bird (Bushnell, Reconyx, Stealth Cam banners; its
    SOURCE.md and manifest.json): never copied into the repository, read from ../shared."""
    path = SHARED_DIR / "data" / "trailcam-nobird"
    if not (path / "manifest.json").is_file():
        missing("SHARED", f"real camera-trap frames not available: {path}/manifest.json is absent "
                    "(../shared is not beside the checkout)")
    return path


@pytest.fixture(scope="session")
def aiy_model_dir() -> Path:
    path = SHARED_DIR / "models" / "aiy_birds_v1"
    if not (path / "model.tflite").is_file():
        missing("SHARED", f"AIY birds model not available: {path}/model.tflite is absent")
    return path


@pytest.fixture(scope="session")
def birdnet_geo_dir() -> Path:
    """BirdNET's species-range model (CC BY-NC-SA 4.0): the .tflite and its 6,522 labels."""
    path = SHARED_DIR / "models" / "birdnet_geo_v2_4"
    if not (path / "BirdNET_GLOBAL_6K_V2.4_MData_Model_V2_FP16.tflite").is_file():
        missing("SHARED", f"BirdNET range model not available: {path}/BirdNET_GLOBAL_6K_V2.4_MData_Model_V2_FP16.tflite "
                    "is absent (../shared is not beside the checkout)")
    return path


@pytest.fixture(scope="session")
def ssd_detector_dir() -> Path:
    """The COCO SSD MobileNet v1 detector (detect.tflite + labels.txt; "bird" is class 15)."""
    path = SHARED_DIR / "models" / "ssd_mobilenet_v1_coco"
    if not (path / "detect.tflite").is_file():
        missing("SHARED", f"SSD detector not available: {path}/detect.tflite is absent")
    return path


@pytest.fixture(scope="session")
def cli_env() -> dict[str, str]:
    """Environment for running `python -m edge|trainer` in a subprocess against this checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture(scope="session")
def python_exe() -> str:
    return sys.executable


@pytest.fixture(scope="session")
def edge_venv_python() -> Path:
    """The edge-only environment (tflite-runtime, NumPy 1.x, no TensorFlow) that `make test` builds."""
    if not EDGE_VENV_PYTHON.exists():
        if os.environ.get("TRAILCAM_REQUIRE_EDGE_VENV"):
            pytest.fail(f"{EDGE_VENV_PYTHON} missing although make test should have built it")
        pytest.skip(f"edge-only venv absent ({EDGE_VENV_PYTHON}); `make edge-venv` builds it")
    return EDGE_VENV_PYTHON
