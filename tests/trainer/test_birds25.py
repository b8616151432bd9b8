"""A real-image run on ../shared/data/birds25 (25 species x 5 photos, 224x224): skipped when absent."""

from __future__ import annotations

import json


def test_real_photos_check_train_export_evaluate(birds25_dir, run_trainer, tmp_path):
    from trainer.evaluate import evaluate
    from trainer.export import export_bundle
    from trainer.train import train
    from trainer.train_config import TrainConfig

    check = run_trainer("data", "check", birds25_dir, "--json", "--strict")
    assert check.returncode == 0, check.stdout[-2000:]
    report = json.loads(check.stdout)
    assert report["layout"] == "single" and report["classes"] == 25 and report["splits"] == {"all": 125}
    assert report["wrong_size"] == [] and report["unreadable"] == []

    config = TrainConfig(data_dir=birds25_dir, out_dir=tmp_path / "run", arch="convnet", image_size=96,
                         filters=(16, 16), dense_units=32, optimizer="adam", learning_rate=1e-3, batch_size=16,
                         epochs=1, seed=4)
    result = train(config)
    assert result.epochs_completed == 1
    assert result.class_names == sorted(p.name for p in birds25_dir.iterdir() if p.is_dir())
    counts = json.loads((result.run_dir / "data.json").read_text())["counts"]
    assert counts == {"train": 75, "valid": 25, "test": 25}  # stratified: 3/1/1 photos per species

    bundle = export_bundle(result.run_dir, tmp_path / "bundle", "none")
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["num_classes"] == 25 and manifest["metrics"]["eval_images"] == 25
    assert manifest["metrics"]["agreement"] >= 0.995
    assert (bundle / "labels.txt").read_text().splitlines() == result.class_names

    lite = evaluate(bundle, birds25_dir, "test", tmp_path / "eval")
    assert lite["images"] == 25 and len(lite["per_class"]) == 25
    assert all(m["support"] == 1 for m in lite["per_class"].values())
    assert 0.0 <= lite["top1"] <= lite["top5"] <= 1.0
