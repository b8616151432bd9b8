"""The REQUIRE switches and the skip budget that `make test` relies on (issue 22).

Run as real pytest sessions in subprocesses: a test needing ../shared skips without the switch
and fails with it; with TRAILCAM_SKIP_BUDGET set, an unexpected skip or one too many fails a
session that would otherwise pass, and a session without tests keeps exit code 5.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.skip_budget import BUDGET_FILE, load_budget, over_budget

REPO = Path(__file__).resolve().parent.parent
SHARED_TEST = "tests/edge/daemon/test_frame_limit.py"  # one daemon test that needs ../shared (AIY model, photos)


def _pytest(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("TRAILCAM_REQUIRE_", "TRAILCAM_SKIP_BUDGET"))}
    environ.update(env, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0", "-rs", *args],
                          cwd=REPO, env=environ, capture_output=True, text=True, timeout=300)


def test_the_checked_in_budget_loads_and_names_both_runs() -> None:
    budget = load_budget()
    assert {run for entry in budget for run in entry.limits} == {"main", "min"}
    assert all(entry.why for entry in budget), "every allowed skip says why"


def test_over_budget_counts_per_reason_and_flags_unknown_reasons() -> None:
    budget = load_budget()
    tomlkit = "tomlkit is installed here: the refusal path does not apply"
    assert over_budget([("a", tomlkit)], "main", budget) == []
    assert len(over_budget([("a", tomlkit), ("b", tomlkit)], "main", budget)) == 1  # its entry allows one
    assert over_budget([("a", tomlkit)], "min", budget) == ["a: unexpected skip: " + tomlkit]  # not test-min's
    tensorflow = "trainer-built models need TensorFlow, absent in this edge-only environment (No module ...)"
    assert over_budget([(str(i), tensorflow) for i in range(40)], "min", budget) == []  # "*": any number
    assert over_budget([("x", tensorflow)], "main", budget) != []  # the main run has TensorFlow
    assert over_budget([("y", "real photographs not available")], "main", budget) != []


def test_a_test_needing_shared_skips_without_the_switch_and_fails_with_it(tmp_path: Path) -> None:
    absent = str(tmp_path / "no-shared")
    skipped = _pytest([SHARED_TEST], tmp_path, TRAILCAM_SHARED=absent)
    assert skipped.returncode == 0 and "1 skipped" in skipped.stdout, skipped.stdout
    assert "AIY birds model not available" in skipped.stdout
    required = _pytest([SHARED_TEST], tmp_path, TRAILCAM_SHARED=absent, TRAILCAM_REQUIRE_SHARED="1")
    assert required.returncode == 1 and "1 error" in required.stdout, required.stdout  # the fixture fails
    assert "TRAILCAM_REQUIRE_SHARED is set" in required.stdout


def test_the_budget_fails_a_passing_session_with_an_unexpected_skip(tmp_path: Path) -> None:
    result = _pytest([SHARED_TEST], tmp_path, TRAILCAM_SHARED=str(tmp_path / "no-shared"), TRAILCAM_SKIP_BUDGET="main")
    assert result.returncode == 1, result.stdout
    assert "1 skipped" in result.stdout
    assert "unexpected skip: AIY birds model not available" in result.stdout


def test_the_budget_accepts_the_expected_skips_and_keeps_exit_code_5(tmp_path: Path) -> None:
    expected = _pytest(["tests/test_dependency_floors.py", "-k", "lowest_versions_environment"], tmp_path,
                       TRAILCAM_SKIP_BUDGET="main")
    assert expected.returncode == 0 and "1 skipped" in expected.stdout, expected.stdout
    assert "skip budget (TRAILCAM_SKIP_BUDGET=main): 1 skip(s), all expected" in expected.stdout
    none = _pytest(["tests/test_dependency_floors.py", "-k", "no_such_test"], tmp_path, TRAILCAM_SKIP_BUDGET="main")
    assert none.returncode == 5, none.stdout  # no tests: make fails on it as on any failure
    wrong = _pytest(["tests/test_dependency_floors.py"], tmp_path, TRAILCAM_SKIP_BUDGET="everything")
    assert wrong.returncode == 4 and "not a run of tests/skip_budget.toml" in wrong.stderr


@pytest.mark.parametrize("bad", ['[[allowed]]\nreason = "x"\n', '[[allowed]]\nreason = "x"\nruns = { main = -1 }\n'])
def test_a_malformed_budget_entry_is_named(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "budget.toml"
    path.write_text(bad)
    with pytest.raises(ValueError, match="budget.toml: allowed entry 1"):
        load_budget(path)
    assert BUDGET_FILE.is_file()
