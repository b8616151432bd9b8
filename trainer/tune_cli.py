"""`trainer tune`: search hyperparameters locally (Optuna) or on SageMaker.

    trainer tune --data ~/birds --arch convnet --trials 20 --study-dir runs/tune-convnet
    trainer tune --data ~/birds --study-dir runs/tune-convnet          # again: resumes
    trainer train --data ~/birds --params runs/tune-convnet/best.json --out runs/best

`--backend sagemaker` is `trainer sagemaker tune` (same search space); its options live there.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from trainer.train_config import ARCHITECTURES

EXIT_USAGE = 2


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `tune` subcommand to the trainer CLI."""
    parser = subparsers.add_parser("tune", help="search hyperparameters (Optuna locally; SageMaker via `trainer sagemaker tune`)",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", default="local", choices=("local", "sagemaker"),
                        help="local: Optuna here; sagemaker: use `trainer sagemaker tune` instead")
    parser.add_argument("--data", type=Path, help="data folder (train/ valid/ [test/] or one tree to split)")
    parser.add_argument("--arch", default="convnet", choices=ARCHITECTURES, help="model architecture to tune")
    parser.add_argument("--study-dir", type=Path, help="study folder (default runs/tune-<arch>); rerun to resume")
    parser.add_argument("--study-name", help="Optuna study name (default trailcam-<arch>)")
    parser.add_argument("--trials", type=int, default=20, help="finished trials wanted in the study (the proposal ran 20)")
    parser.add_argument("--timeout", type=float, default=None, help="stop starting new trials after this many seconds")
    parser.add_argument("--jobs", type=int, default=1,
                        help="trials in parallel (separate processes sharing the study); 1 on a laptop, one per GPU")
    parser.add_argument("--search-space", type=Path, help="TOML/JSON file overriding the default ranges")
    parser.add_argument("--show-space", action="store_true", help="print the search space and exit")
    parser.add_argument("--pruner", default="median", choices=("median", "none"),
                        help="median: stop trials that trail the median of earlier ones at the same epoch")
    parser.add_argument("--prune-startup-trials", type=int, default=3,
                        help="finished trials before the pruner may stop any")
    parser.add_argument("--prune-warmup-epochs", type=int, default=1, help="epochs every trial runs before it can be pruned")
    parser.add_argument("--seed", type=int, default=42, help="random seed of the sampler and of every trial's training")
    parser.add_argument("--enqueue", type=Path, action="append", metavar="JSON",
                        help="a configuration to try first (best.json or {param: value}), repeatable")
    base = parser.add_argument_group("settings shared by every trial (not tuned)")
    base.add_argument("--image-size", type=int, default=None, help="model input size in pixels when the space does not tune it")
    base.add_argument("--batch-size", type=int, default=None, help="batch size when the space does not tune it")
    base.add_argument("--weights", default=None, help="imagenet | none | FILE (transfer backbones)")
    base.add_argument("--epochs", type=int, default=None, help="fixed epochs when the space does not tune them")
    base.add_argument("--no-augment", dest="augment", action="store_false", default=None,
                      help="no flip/rotation/zoom augmentation")
    parser.set_defaults(func=cmd_tune)


def _error(message: str) -> int:
    print(f"trainer tune: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def cmd_tune(args: argparse.Namespace) -> int:
    from trainer.search_space import SearchSpaceError, load_search_space
    from trainer.tune import TuneError, TuneSettings, format_table, read_enqueue_file, run_study

    if args.show_space:
        try:
            space = load_search_space(args.arch, args.search_space)
        except SearchSpaceError as exc:
            return _error(str(exc))
        print("\n".join(space.describe()))
        return 0
    if args.backend == "sagemaker":
        return _error("--backend sagemaker: run `trainer sagemaker tune --data s3://... --role ...` "
                      "(same search space, --dry-run shows the request)")
    if args.data is None:
        return _error("--data: required for local tuning")
    base = {key: value for key, value in (
        ("image_size", args.image_size), ("batch_size", args.batch_size), ("weights", args.weights),
        ("epochs", args.epochs), ("augment", args.augment),
    ) if value is not None}
    try:
        space = load_search_space(args.arch, args.search_space)
        enqueue = [read_enqueue_file(path, space) for path in args.enqueue or []]
    except (TuneError, SearchSpaceError) as exc:
        return _error(str(exc))
    settings = TuneSettings(
        data_dir=str(args.data), study_dir=str(args.study_dir or Path("runs") / f"tune-{args.arch}"), arch=args.arch,
        trials=args.trials, timeout_s=args.timeout, jobs=args.jobs, seed=args.seed,
        search_space_file=str(args.search_space) if args.search_space else None, study_name=args.study_name,
        pruner=args.pruner, prune_startup_trials=args.prune_startup_trials,
        prune_warmup_epochs=args.prune_warmup_epochs, enqueue=enqueue, base=base,
    )
    try:
        outcome = run_study(settings)
    except (TuneError, SearchSpaceError) as exc:
        return _error(str(exc))
    except KeyboardInterrupt:
        print(f"\ntrainer tune: interrupted; rerun the same command to resume {settings.study_dir}", file=sys.stderr)
        return 130
    print()
    print(format_table(outcome["rows"]))
    print()
    for kind, path in outcome["files"].items():
        print(f"{kind}: {path}")
    if "best" in outcome["files"]:
        print(f"retrain the best: trainer train --data {args.data} --params {outcome['files']['best']} --out runs/best-{args.arch}")
    return 0
