"""Tuning benchmark: what median pruning saves in a local Optuna study.

    python -m benchmarks.tune_bench [--trials 8] [--repeats 1] [--image-size 32]

Side by side in one run, on the same generated data set, search space and sampler seed: a
study with the median pruner (trailcam's default) against the same study without pruning.
Reported per setting (medians over --repeats): wall time, epochs trained in total, and the
best validation accuracy found; then the ratios pruned / unpruned. The search space is the
convnet's with epochs 2–6 and a learning rate wide enough (1e-4–0.5) that some trials diverge,
which is what pruning is for.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

SPACE = """
[params.epochs]
type = "int"
low = 2
high = 6
[params.learning_rate]
type = "float"
low = 0.0001
high = 0.5
scaling = "Logarithmic"
"""


def run_once(data: Path, root: Path, pruner: str, trials: int, image_size: int, seed: int) -> dict:
    from trainer.tune import TuneSettings, run_study

    space = root / "space.toml"
    space.write_text(SPACE)
    settings = TuneSettings(data_dir=str(data), study_dir=str(root / f"study-{pruner}"), trials=trials, seed=seed,
                            search_space_file=str(space), pruner=pruner, prune_startup_trials=2,
                            prune_warmup_epochs=1, base={"image_size": image_size, "batch_size": 16})
    started = time.perf_counter()
    with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):  # the trials' epoch lines
        outcome = run_study(settings)
    wall = time.perf_counter() - started
    rows = outcome["rows"]
    epochs = sum(int(r["epochs_run"] or 0) for r in rows)
    best = max((r["val_accuracy"] for r in rows if r["state"] == "complete"), default=0.0)
    pruned = sum(r["state"] == "pruned" for r in rows)
    return {"wall_s": wall, "epochs": epochs, "best": best, "pruned": pruned}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--image-size", type=int, default=32)
    # parse_known_args: `python -m benchmarks tune_bench` passes the runner's own arguments through
    args, _ = parser.parse_known_args()

    from trainer.synth import SynthSpec, generate_dataset

    results: dict[str, list[dict]] = {"median": [], "none": []}
    with tempfile.TemporaryDirectory(prefix="tune-bench-") as tmp:
        data = generate_dataset(Path(tmp) / "data", SynthSpec(num_classes=4, train_per_class=40, valid_per_class=12,
                                                               test_per_class=4, image_size=64, seed=11))
        for repeat in range(args.repeats):
            for pruner in ("median", "none"):  # interleaved, so drift in machine load hits both
                root = Path(tmp) / f"r{repeat}"
                root.mkdir(exist_ok=True)
                results[pruner].append(run_once(data, root, pruner, args.trials, args.image_size, seed=100 + repeat))

    def med(pruner: str, key: str) -> float:
        return statistics.median(r[key] for r in results[pruner])

    print(f"machine: {cpu_model()}, {os.cpu_count()} CPUs; "
          f"{args.trials} trials, {args.repeats} repeat(s), medians")
    print(f"{'pruner':<8} {'wall s':>8} {'epochs':>7} {'pruned':>7} {'best val_acc':>13}")
    for pruner in ("median", "none"):
        print(f"{pruner:<8} {med(pruner, 'wall_s'):>8.1f} {med(pruner, 'epochs'):>7.0f} {med(pruner, 'pruned'):>7.0f} "
              f"{med(pruner, 'best'):>13.4f}")
    print(f"{'ratio':<8} {med('median', 'wall_s') / med('none', 'wall_s'):>8.2f} "
          f"{med('median', 'epochs') / max(1.0, med('none', 'epochs')):>7.2f} {'':>7} "
          f"{med('median', 'best') / max(1e-9, med('none', 'best')):>13.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
