"""The feedback loop end to end: daemon → reviews → training set → fine-tuned model → daemon again.

Real parts throughout: the daemon process (`python -m edge run`) with the trainer's fixture
bundle, real photographs (birds25 cardinals the synthetic model has never heard of) besides
synthetic frames, ReviewStore reviews, `edge export training-set`, `trainer data check`,
`trainer train --init-from`, `trainer export`, and a SIGHUP that swaps the bundle the running
daemon's config points at.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

from tests.edge.conftest import DaemonProcess, count_rows, jpeg_bytes, write_toml
from tests.fixtures.waiting import wait_for

NEW = "NORTHERN_CARDINAL"
OK = "SELECT count(*) FROM frames WHERE status = 'ok'"
START = datetime(2026, 5, 1, 6, 0)


def _rows(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def test_reviews_train_a_model_the_running_daemon_picks_up(tmp_path: Path, bundle_int8, camera_frames, birds25_dir,
                                                          cli_env):
    from edge.cli.commands import main as edge_main
    from edge.store.reviews import ReviewStore
    from trainer.cli import main as trainer_main

    camera, db, bundle = tmp_path / "cam", tmp_path / "t.db", tmp_path / "bundle"
    camera.mkdir()
    shutil.copytree(bundle_int8, bundle)
    first_id = json.loads((bundle / "manifest.json").read_text())["model_id"]
    config = write_toml(tmp_path / "edge.toml", camera, bundle, db)
    cardinals = sorted((birds25_dir / "NORTHERN CARDINAL").glob("*.jpg"))
    # Each frame 10 minutes after the last: every frame is a visit (event) of its own.
    shots = [(f"syn-{i:02d}.jpg", path, name) for i, (path, name) in enumerate(camera_frames)]
    shots += [(f"card-{i}.jpg", path, NEW) for i, path in enumerate(cardinals)]

    daemon = DaemonProcess(["--config", str(config)], cli_env, tmp_path / "run.log")
    try:
        wait_for(lambda: "backlog of" in daemon.output(), 60, what="daemon started")
        for i, (name, path, _truth) in enumerate(shots):
            (camera / name).write_bytes(jpeg_bytes(path, START + i * timedelta(minutes=10)))
        wait_for(lambda: count_rows(db, OK) >= len(shots), 60, what="first frames")

        # Reviews: the cardinals are corrected to a class the model lacks; synthetic frames the
        # machine got right are confirmed, wrong ones corrected; one right one rejected (a hard negative).
        truth = {name: t for name, _, t in shots}
        frames = _rows(db, "SELECT path, event_id, species FROM frames WHERE status = 'ok' AND event_id IS NOT NULL")
        store = ReviewStore(db, station_tz="Europe/Berlin")
        rejected = None
        try:
            for path, event_id, species in frames:
                right = truth[Path(path).name]
                if right == species and rejected is None and right != NEW:
                    store.review_event(event_id, "reject", reviewer="tester")
                    rejected = Path(path).name
                elif right == species:
                    store.review_event(event_id, "confirm", reviewer="tester")
                else:
                    store.review_event(event_id, "correct", reviewer="tester", species=right)
        finally:
            store.close()
        assert rejected is not None

        # The station exports its reviewed crops; the trainer accepts the folder as it is.
        data = tmp_path / "training-set"
        assert edge_main(["export", "training-set", "--out", str(data), "--config", str(config), "--reviewed-only"]) == 0
        manifest = json.loads((data / "manifest.json").read_text())
        assert manifest["crop_size"] == [64, 64] and manifest["missing"] == []
        assert manifest["counts"][NEW] == len(cardinals) and manifest["counts"]["_negatives"] == 1
        assert all(c["source"] == "review" and c["reviewer"] == "tester" for c in manifest["crops"])
        assert "unknown" not in manifest["counts"]
        assert trainer_main(["data", "check", str(data), "--expect-size", "64", "--strict"]) == 0

        run, new_bundle = tmp_path / "run", tmp_path / "bundle-2"
        assert trainer_main(["train", "--data", str(data), "--out", str(run), "--init-from", str(bundle),
                             "--epochs", "25", "--patience", "25", "--batch-size", "8", "--optimizer", "adam",
                             "--learning-rate", "0.003", "--val-fraction", "0.2", "--test-fraction", "0",
                             "--no-augment", "--mixed-precision", "off", "--seed", "5"]) == 0
        assert json.loads((run / "class_names.json").read_text())[-1] == NEW
        assert trainer_main(["export", str(run), "--out", str(new_bundle), "--quantize", "none"]) == 0
        second_id = json.loads((new_bundle / "manifest.json").read_text())["model_id"]
        assert second_id != first_id

        # Deploy: the folder the config names now holds the new bundle; SIGHUP reloads it.
        os.replace(bundle, tmp_path / "bundle-old")
        os.replace(new_bundle, bundle)
        daemon.signal(signal.SIGHUP)
        wait_for(lambda: f"model reloaded: {second_id}" in daemon.output(), 60, what="reload logged")
        later = START + timedelta(days=1)
        for i, path in enumerate(cardinals):  # the same birds photographed again: new files, new hashes
            (camera / f"again-{i}.jpg").write_bytes(jpeg_bytes(path, later + i * timedelta(minutes=10)))
        wait_for(lambda: count_rows(db, OK) >= len(shots) + len(cardinals), 60, what="frames after the reload")
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(60) == 0, daemon.output()
    finally:
        daemon.kill()

    again = _rows(db, """SELECT f.model_id, p.label FROM frames f JOIN predictions p ON p.frame_id = f.id AND p.rank = 1
                         WHERE f.path LIKE '%again-%'""")
    assert len(again) == len(cardinals)
    assert {model for model, _ in again} == {second_id}  # classified by the new model
    assert sum(label == NEW for _, label in again) >= len(cardinals) // 2 + 1  # the new class appears
    assert {m for (m,) in _rows(db, "SELECT DISTINCT model_id FROM frames WHERE path NOT LIKE '%again-%'")} == {first_id}
