"""The edge's declared dependency floors are the versions CI tests, and cannot drift apart.

pyproject.toml's `edge`, `edge-tflite`, `web`, `onnx` and `video` extras give each dependency a `>=` floor;
constraints/edge-min.txt pins exactly those floors, and `make test-min` installs them into
.venv-min and runs the edge tests there. A floor raised or lowered in one place only fails
here, before anyone ships a floor that no test has run (sqlite-utils>=3.36 was declared while
the store needs `Database.atomic()`, new in 4.0).
"""

from __future__ import annotations

import os
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO_ROOT = Path(__file__).resolve().parent.parent
CONSTRAINTS = REPO_ROOT / "constraints" / "edge-min.txt"
EDGE_EXTRAS = ("edge", "edge-tflite", "web", "onnx", "video")
MIN_ENV = "TRAILCAM_MIN_ENV"  # set by `make test-min`


def pyproject_floors() -> dict[str, Version]:
    """{package: floor} over the edge extras; every requirement must have exactly one `>=`,
    and a package in both extras the same one."""
    extras = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    floors: dict[str, Version] = {}
    for extra in EDGE_EXTRAS:
        for line in extras[extra]:
            requirement = Requirement(line)
            lower = [Version(s.version) for s in requirement.specifier if s.operator == ">="]
            assert len(lower) == 1, f"[{extra}] {line!r}: needs exactly one >= floor (the version CI tests)"
            name = canonicalize_name(requirement.name)
            assert floors.setdefault(name, lower[0]) == lower[0], (
                f"{name}: the extras disagree on its floor ({floors[name]} vs {lower[0]} in [{extra}])")
    return floors


def constraint_pins() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for raw in CONSTRAINTS.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        (spec,) = requirement.specifier
        assert spec.operator == "==", f"{CONSTRAINTS.name}: {line!r} must pin with =="
        pins[canonicalize_name(requirement.name)] = Version(spec.version)
    return pins


def test_constraints_file_pins_exactly_the_pyproject_floors() -> None:
    assert constraint_pins() == pyproject_floors()


def test_the_sagemaker_container_asks_for_the_same_floors() -> None:
    """The training container installs ai-edge-litert and Pillow itself (export verification runs
    the edge's runner there): its floors are the edge's, not a third copy that drifts."""
    from trainer.sagemaker.sdk import CONTAINER_REQUIREMENTS

    floors = pyproject_floors()
    for line in CONTAINER_REQUIREMENTS:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        if name in floors:
            (spec,) = requirement.specifier
            assert (spec.operator, Version(spec.version)) == (">=", floors[name]), line


@pytest.mark.skipif(not os.environ.get(MIN_ENV), reason=f"only in the lowest-versions venv ({MIN_ENV}=1, make test-min)")
def test_the_lowest_versions_environment_has_exactly_the_floors() -> None:
    """What `make test-min` runs the edge tests on is really the floors (not a newer release that
    pip preferred): every pinned package that is installed has its floor version."""
    pins = constraint_pins()
    installed = {}
    for name in pins:
        try:
            installed[name] = Version(metadata.version(name))
        except metadata.PackageNotFoundError:
            continue
    assert set(installed) == set(pins) - {"tflite-runtime"}  # the `edge` extra: ai-edge-litert on x86-64
    assert installed == {name: pins[name] for name in installed}
