"""The processes that stay up for months (`edge run`, `edge web`) never load pandas, which
sqlite-utils imports wherever it is installed (+65 MB resident, docs/benchmarks.md): the front
door keeps it out before any command module loads. Short commands are left alone."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

PROBE = """
import sys
from edge.cli import main
try:
    main([{words}])
except SystemExit:
    pass
print("loaded" if sys.modules.get("pandas") is not None else "kept out")
"""


def _pandas_after(*words: str) -> str:
    code = PROBE.format(words=", ".join(repr(w) for w in words))
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    return run.stdout.strip().splitlines()[-1]


@pytest.mark.skipif(importlib.util.find_spec("pandas") is None, reason="pandas is not installed here: nothing to keep out")
def test_long_lived_commands_keep_pandas_out_and_short_ones_do_not_care() -> None:
    assert _pandas_after("run", "--help") == "kept out"
    assert _pandas_after("web", "--help") == "kept out"
    assert _pandas_after("counts", "--help") == "loaded"  # the probe can see pandas when it loads
