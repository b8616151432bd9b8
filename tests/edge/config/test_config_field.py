"""[retention] and [health] validation: each bad key is named, exit code 2."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("section, expected", [
    ('[retention]\nafter_processing = "archive"\n',
     "retention: archive_dir is required when after_processing = \"archive\""),
    ('[retention]\nafter_processing = "shred"\n', "retention.after_processing: "),
    ('[retention]\nmin_free_mb = -5\n', "retention.min_free_mb: "),
    ('[retention]\nmin_free_mb = 100\nresume_free_mb = 50\n', "resume_free_mb must be >= min_free_mb"),
    ('[retention]\narchive_max_percent = 150\n', "retention.archive_max_percent: "),
    ('[health]\nmetrics_port = 70000\n', "health.metrics_port: "),
    ('[health]\nstatus_intervall_s = 5\n', "health.status_intervall_s: unknown key"),
])
def test_bad_field_config_names_the_key_and_exits_2(tmp_path, cli_env, section, expected):
    config = tmp_path / "edge.toml"
    config.write_text(section)
    result = subprocess.run([sys.executable, "-m", "edge", "status", "--config", str(config)],
                            env=cli_env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr, result.stderr
