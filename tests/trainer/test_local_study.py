"""`trainer tune --backend local` on a tiny synthetic set: TPE + median pruning, results, best.json
retrainable with `trainer train --params`, and an interrupted study that resumes without
repeating finished trials."""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trainer.cli import main as trainer_main

IMAGE_SIZE = 32
SPACE = """
[params.epochs]
type = "int"
low = 1
high = 2
[params.learning_rate]
type = "float"
low = 0.001
high = 0.3
scaling = "Logarithmic"
[params.dense_units]
type = "int"
low = 8
high = 24
[fixed]
optimizer = "adam"
dropout = 0.1
"""


def common_args(data: Path, study: Path, space: Path, trials: int) -> list[str]:
    return ["tune", "--data", str(data), "--study-dir", str(study), "--search-space", str(space),
            "--trials", str(trials), "--image-size", str(IMAGE_SIZE), "--batch-size", "16",
            "--prune-startup-trials", "1", "--prune-warmup-epochs", "0", "--seed", "5"]


@pytest.fixture(scope="module")
def space_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("space") / "space.toml"
    path.write_text(SPACE)
    return path


@pytest.fixture(scope="module")
def study(synthetic_dataset: Path, space_file: Path, tmp_path_factory) -> Path:
    """Four trials; the first two are queued: a sound configuration, then one whose learning rate
    diverges, so the median pruner has something certain to stop."""
    root = tmp_path_factory.mktemp("study")
    good, bad = root / "good.json", root / "bad.json"
    good.write_text(json.dumps({"epochs": 2, "learning_rate": 0.005, "dense_units": 24}))
    bad.write_text(json.dumps({"params": {"epochs": 2, "learning_rate": 0.3, "dense_units": 8}}))
    study_dir = root / "study"
    code = trainer_main([*common_args(synthetic_dataset, study_dir, space_file, 4),
                         "--enqueue", str(good), "--enqueue", str(bad)])
    assert code == 0
    return study_dir


def load_study(study_dir: Path, name: str = "trailcam-convnet"):
    import optuna

    return optuna.load_study(study_name=name, storage=f"sqlite:///{study_dir / 'study.db'}")


def test_study_prunes_and_its_best_beats_its_worst(study: Path):
    from optuna.trial import TrialState

    trials = load_study(study).get_trials()
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == 4
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert pruned, "the diverging configuration should have been pruned"
    assert trials[1].state == TrialState.PRUNED and trials[1].params["learning_rate"] == pytest.approx(0.3)
    assert len(pruned[0].intermediate_values) < pruned[0].params["epochs"]  # stopped before its last epoch
    completed = [t.value for t in trials if t.state == TrialState.COMPLETE]
    scores = completed + [t.intermediate_values[max(t.intermediate_values)] for t in pruned]
    assert max(completed) > min(scores)
    assert max(completed) >= 0.6  # the sound configuration learns the synthetic classes


def test_results_table_csv_plot_and_best_json(study: Path):
    rows = list(csv.DictReader((study / "results.csv").open()))
    assert len(rows) == 4 and [int(r["rank"]) for r in rows] == [1, 2, 3, 4]
    completed = [float(r["val_accuracy"]) for r in rows if r["state"] == "complete"]
    assert completed == sorted(completed, reverse=True)  # sorted by the objective, best first
    states = [r["state"] for r in rows]
    assert states == sorted(states, key=lambda s: s != "complete")  # completed first, then pruned
    assert {"param_epochs", "param_learning_rate", "param_dense_units"} <= set(rows[0])
    assert (study / "history.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    best = json.loads((study / "best.json").read_text())
    assert best["objective"]["value"] == pytest.approx(completed[0])
    assert best["params"]["optimizer"] == "adam" and best["params"]["image_size"] == IMAGE_SIZE
    assert Path(best["run_dir"], "best.keras").is_file()  # the winner's model is already there


def test_best_json_retrains_with_one_command(study: Path, synthetic_dataset: Path, tmp_path: Path):
    best = json.loads((study / "best.json").read_text())
    out = tmp_path / "retrained"
    assert trainer_main(["train", "--data", str(synthetic_dataset), "--params", str(study / "best.json"),
                         "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    for key in ("epochs", "learning_rate", "dense_units", "optimizer", "dropout", "image_size"):
        assert config[key] == pytest.approx(best["params"][key]), key


def _finished_trials(db: Path) -> list[tuple]:
    """Read the study's finished trials straight from SQLite (no Optuna caching in the way)."""
    if not db.exists():
        return []
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        try:
            return conn.execute("SELECT number, state, datetime_complete FROM trials WHERE state IN "
                                "('COMPLETE', 'PRUNED') ORDER BY number").fetchall()
        except sqlite3.OperationalError:  # tables not created yet
            return []


def _running_trials(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        try:
            # Running and done drawing ALL its parameters (as many as a finished trial has): a
            # trial killed between two draws is re-run with the drawn ones fixed and the rest drawn
            # anew, which is not the "same parameters" this test checks.
            return conn.execute(
                """SELECT COUNT(*) FROM (SELECT t.trial_id, COUNT(p.param_name) AS drawn FROM trials t
                       JOIN trial_params p ON p.trial_id = t.trial_id WHERE t.state = 'RUNNING' GROUP BY t.trial_id)
                   WHERE drawn >= (SELECT MAX(n) FROM (SELECT COUNT(p.param_name) AS n FROM trials t
                       JOIN trial_params p ON p.trial_id = t.trial_id WHERE t.state = 'COMPLETE' GROUP BY t.trial_id))"""
            ).fetchone()[0]
        except sqlite3.OperationalError:
            return 0


def test_interrupted_study_resumes_without_repeating_finished_trials(synthetic_dataset: Path, space_file: Path,
                                                                      tmp_path: Path, cli_env):
    study_dir = tmp_path / "study"
    db = study_dir / "study.db"
    command = [sys.executable, "-m", "trainer", *common_args(synthetic_dataset, study_dir, space_file, 3)]
    first = subprocess.Popen(command, env=cli_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and first.poll() is None:
            if len(_finished_trials(db)) >= 1 and _running_trials(db) >= 1:
                break  # a trial done, the next under way: interrupt it now
            time.sleep(0.1)
        assert first.poll() is None, "the study ended before it could be interrupted"
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    before = _finished_trials(db)
    assert 1 <= len(before) < 3
    params_before = {t.number: t.params for t in load_study(study_dir).get_trials() if t.number in {b[0] for b in before}}

    second = subprocess.run(command, env=cli_env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-2000:]
    assert f"resuming study trailcam-convnet: {len(before)} finished trial(s) kept" in second.stdout
    assert "re-running interrupted trial(s)" in second.stdout

    after = _finished_trials(db)
    assert len(after) == 3  # --trials counts finished trials across both runs
    assert after[:len(before)] == before  # the finished ones were not run again (same completion times)
    trials = load_study(study_dir).get_trials()
    for number, params in params_before.items():
        assert trials[number].params == params
    newly_run = [line for line in second.stdout.splitlines() if line.startswith("trailcam tune: trial ")]
    assert len(newly_run) == 3 - len(before)
    retried = [t for t in trials if "retry_of" in t.user_attrs]
    assert len(retried) == 1 and trials[retried[0].user_attrs["retry_of"]].state.name == "FAIL"
    assert retried[0].params == trials[retried[0].user_attrs["retry_of"]].params


def test_timeout_stops_starting_new_trials(synthetic_dataset: Path, space_file: Path, tmp_path: Path):
    study_dir = tmp_path / "timed"
    assert trainer_main([*common_args(synthetic_dataset, study_dir, space_file, 50), "--timeout", "0.5"]) == 0
    trials = load_study(study_dir).get_trials()
    assert len(trials) == 1  # the running trial finishes; no new one starts after the deadline
    assert (study_dir / "results.csv").is_file()


def test_same_study_folder_cannot_run_twice_at_once(synthetic_dataset: Path, space_file: Path, tmp_path: Path, capsys):
    import fcntl

    study_dir = tmp_path / "busy"
    study_dir.mkdir()
    with open(study_dir / ".lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        handle.write("pid 12345")
        handle.flush()
        assert trainer_main(common_args(synthetic_dataset, study_dir, space_file, 2)) == 2
    assert "in use by pid 12345" in capsys.readouterr().err


def test_bad_tune_arguments_exit_2(synthetic_dataset: Path, space_file: Path, study: Path, tmp_path: Path, capsys):
    assert trainer_main(["tune", "--data", str(tmp_path / "nowhere"), "--study-dir", str(tmp_path / "s")]) == 2
    assert "--data" in capsys.readouterr().err
    assert trainer_main([*common_args(synthetic_dataset, tmp_path / "s", space_file, 0)]) == 2
    assert "--trials" in capsys.readouterr().err
    assert trainer_main([*common_args(synthetic_dataset, tmp_path / "s", space_file, 2), "--timeout", "0"]) == 2
    assert "--timeout" in capsys.readouterr().err
    other = tmp_path / "other.toml"
    other.write_text('[params.epochs]\ntype = "int"\nlow = 2\nhigh = 9\n')
    # Resuming a study with another search space would mix incomparable trials.
    assert trainer_main([*common_args(synthetic_dataset, study, other, 6)]) == 2
    assert "different search space" in capsys.readouterr().err
    missing = tmp_path / "missing.json"
    assert trainer_main([*common_args(synthetic_dataset, tmp_path / "s", space_file, 2), "--enqueue", str(missing)]) == 2
    assert "--enqueue" in capsys.readouterr().err
