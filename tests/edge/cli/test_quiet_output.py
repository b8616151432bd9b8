"""What `edge` prints on a first start, read from the real command: one line for a new database
(not one "migrating schema" line per step), and no TFLite runtime notice for loading the model
(`INFO: Created TensorFlow Lite XNNPACK delegate for CPU.` is LiteRT's, on fd 2), while what
the runtime writes otherwise still reaches stderr."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from edge.classify.runtime_notices import NOTICES
from edge.store.schema import SCHEMA_VERSION

XNNPACK = "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."


def test_first_start_says_one_line_for_the_new_database_and_nothing_of_xnnpack(aiy_model: Path, tmp_path: Path,
                                                                                 cli_env) -> None:
    camera = tmp_path / "camera"
    camera.mkdir()
    db = tmp_path / "new.db"
    run = subprocess.run([sys.executable, "-m", "edge", "run", "--once", "--model", str(aiy_model), "--watch",
                          str(camera), "--db", str(db)], env=cli_env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    output = run.stdout + run.stderr
    assert f"database {db}: created, schema {SCHEMA_VERSION}" in run.stderr
    assert "migrating schema" not in output
    assert XNNPACK not in output
    assert db.is_file()


def test_the_filter_keeps_what_is_not_the_notice(tmp_path: Path) -> None:
    """Written to fd 2 from below Python (as the C++ runtime does): the notice goes, the rest stays."""
    script = (
        "import os\n"
        "from edge.classify.runtime_notices import runtime_notices_hidden\n"
        "with runtime_notices_hidden():\n"
        f"    os.write(2, b'{XNNPACK}\\n')\n"
        "    os.write(2, b'ERROR: something real\\n')\n"
        "os.write(2, b'after\\n')\n")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[3]))
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "ERROR: something real\nafter\n"
    assert NOTICES.match(XNNPACK)  # the pattern the filter uses matches the runtime's line
