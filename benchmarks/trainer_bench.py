"""Trainer benchmark: input pipeline, training throughput, export time and size, in one run.

    python -m benchmarks.trainer_bench [--repeats 5] [--data DIR]

Side by side on the same images (../shared/data/birds25 when present, else a generated set of
224x224 JPEGs):

1. Input pipeline, images/s: the trainer's tf.data pipeline (parallel decode + resize +
   prefetch; and from its in-memory cache, epoch 2 onwards) against the proposal's loader,
   Keras 2's ImageDataGenerator(rescale=1/255).flow_from_directory (tf-keras). The pipeline
   hands the model uint8 batches (the model's Input casts them); a third row adds that cast
   to float32 in the pipeline, so the cost it moved into the training step is shown. Medians of
   --repeats rounds in which the loaders take turns, after one warm-up pass each (so all read
   from the OS page cache); each timed pass covers at least 2,000 images.
2. Training throughput of the proposal's convnet (224x224, 64/32 filters, Dense 32) with
   `trainer train`'s own pipeline: images/s per epoch, epoch 1 (graph tracing) apart.
3. Export: time and .tflite size per quantisation mode (median of 2 exports each; the
   verification is part of the time; agreement is reported, not enforced).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("TRAILCAM_SHARED", REPO_ROOT.parent / "shared"))
BATCH = 32
SIZE = 224


def machine() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        model = platform.processor() or platform.machine()
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}"


def image_tree(data: Path | None, scratch: Path) -> tuple[Path, str]:
    """(a folder of class folders, a description): birds25 when present, else a generated set."""
    if data is not None:
        return data, str(data)
    birds = SHARED / "data" / "birds25"
    if birds.is_dir():
        return birds, "birds25 (125 real 224x224 photos, 25 species)"
    from trainer.synth import SynthSpec, generate_dataset

    root = generate_dataset(scratch / "synthetic", SynthSpec(num_classes=4, train_per_class=80, valid_per_class=10,
                                                              test_per_class=10, image_size=SIZE, seed=3))
    return root / "train", "synthetic (320 generated 224x224 JPEGs, 4 classes)"


def interleaved_rates(candidates: Sequence[tuple[str, Callable[[], int]]], repeats: int) -> list[tuple[str, float]]:
    """images/s per candidate: one warm-up pass each, then `repeats` rounds taking turns, medians.

    Taking turns spreads any load from other processes over all candidates alike.
    """
    counts = {name: run() for name, run in candidates}
    times: dict[str, list[float]] = {name: [] for name, _ in candidates}
    for _ in range(repeats):
        for name, run in candidates:
            started = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - started)
    return [(name, counts[name] / statistics.median(times[name])) for name, _ in candidates]


def bench_pipelines(tree: Path, repeats: int) -> list[tuple[str, float]]:
    from tf_keras.preprocessing.image import ImageDataGenerator

    from trainer.data import Item, _class_folders, _files_of, is_image_name
    from trainer.pipeline import make_dataset

    folders = _class_folders(tree)
    items = [Item(p, label) for label, folder in enumerate(folders) for p in _files_of(folder) if is_image_name(p)]

    # Enough passes per timing that a pass's fixed start-up cost (a new iterator, its threads)
    # does not dominate on a small image set: at least ~2,000 images per timed run.
    passes = max(1, -(-2000 // len(items)))

    def tf_pass(dataset, as_float: bool = False) -> Callable[[], int]:
        import tensorflow as tf

        if as_float:
            dataset = dataset.map(lambda x, y: (tf.cast(x, tf.float32), y), num_parallel_calls=tf.data.AUTOTUNE)
        repeated = dataset.repeat(passes)

        def run() -> int:
            return sum(int(x.shape[0]) for x, _ in repeated)
        return run

    generator = ImageDataGenerator(rescale=1.0 / 255.0).flow_from_directory(
        str(tree), target_size=(SIZE, SIZE), batch_size=BATCH, class_mode="categorical", shuffle=True)

    def idg_pass() -> int:
        count = 0
        for _ in range(passes):
            count += sum(len(generator[i][0]) for i in range(len(generator)))
            generator.on_epoch_end()
        return count

    return interleaved_rates([
        ("ImageDataGenerator.flow_from_directory (proposal)", idg_pass),
        ("tf.data pipeline (decode every pass)", tf_pass(make_dataset(items, SIZE, BATCH, training=True, cache=False))),
        ("tf.data pipeline (decode every pass, + float32 cast)",
         tf_pass(make_dataset(items, SIZE, BATCH, training=True, cache=False), as_float=True)),
        ("tf.data pipeline (cached, epoch 2+)", tf_pass(make_dataset(items, SIZE, BATCH, training=True, cache=True))),
    ], repeats)


def bench_training_and_export(tree: Path, scratch: Path, repeats: int) -> tuple[dict, list[tuple]]:
    import keras

    from trainer.export import QUANTIZATIONS, export_bundle, read_manifest
    from trainer.train import train
    from trainer.train_config import TrainConfig

    epoch_seconds: list[float] = []

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            epoch_seconds.append(time.perf_counter() - self.started)

    epochs = max(6, repeats)
    # The proposal's convnet and batch size; Adam (the proposal's second optimiser) so that a
    # few epochs give peaked predictions, which is what quantisation agreement is about.
    config = TrainConfig(data_dir=tree, out_dir=scratch / "run", arch="convnet", image_size=SIZE, epochs=epochs,
                         batch_size=BATCH, optimizer="adam", learning_rate=1e-3, early_stopping_patience=epochs,
                         keep_checkpoints=1, seed=1)
    result = train(config, extra_callbacks=[EpochTimer()])
    import json

    n_train = json.loads((result.run_dir / "data.json").read_text())["counts"]["train"]
    training = {
        "images": n_train,
        "epoch1": n_train / epoch_seconds[0],
        "later": n_train / statistics.median(epoch_seconds[1:]),
        "params": keras.models.load_model(result.model_path).count_params(),
    }
    rows = []
    for mode in QUANTIZATIONS:
        times = []
        for attempt in range(2):
            started = time.perf_counter()
            bundle = export_bundle(result.run_dir, scratch / f"bundle-{mode}-{attempt}", mode, min_agreement=0.0,
                                   calibration_images=100, overwrite=True)
            times.append(time.perf_counter() - started)
        metrics = read_manifest(bundle)["metrics"]
        rows.append((mode, statistics.median(times), (bundle / "model.tflite").stat().st_size, metrics["agreement"],
                     metrics["eval_images"]))
    return training, rows


def render(data_desc: str, pipelines: list[tuple[str, float]], training: dict, exports: list[tuple],
           load: tuple[float, float] = (0.0, 0.0)) -> str:
    idg = pipelines[0][1]
    lines = [f"machine: {machine()}", f"images:  {data_desc}",
             f"load:    1-minute load average {load[0]:.1f} before the pipeline rounds, {load[1]:.1f} after", "",
             f"| input pipeline ({SIZE}x{SIZE}, batch {BATCH}) | images/s | vs ImageDataGenerator |", "|---|---:|---:|"]
    for name, rate in pipelines:
        lines.append(f"| {name} | {rate:,.0f} | {rate / idg:.2f}x |")
    lines += ["", f"| training: proposal convnet ({training['params']:,} parameters, adam), {training['images']} images/epoch | images/s |",
              "|---|---:|",
              f"| epoch 1 (includes graph tracing) | {training['epoch1']:,.1f} |",
              f"| later epochs (median) | {training['later']:,.1f} |",
              "", "| export --quantize | time (s) | .tflite size | vs none | top-1 agreement with Keras |", "|---|---:|---:|---:|---:|"]
    none_size = next(size for mode, _, size, _, _ in exports if mode == "none")
    for mode, seconds, size, agreement, n in exports:
        lines.append(f"| {mode} | {seconds:.1f} | {size / 1e6:.2f} MB | {size / none_size:.2f}x | {agreement:.3f} ({n} images) |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.trainer_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed passes per pipeline (median)")
    parser.add_argument("--data", type=Path, help="a folder of class folders (default birds25, else generated)")
    args = parser.parse_args(list(argv) if argv is not None else [])
    import logging

    logging.getLogger("trainer").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="trainer-bench-") as tmp:
        scratch = Path(tmp)
        tree, desc = image_tree(args.data, scratch)
        before = os.getloadavg()[0]  # the cores are shared: the ratios mean more with the load beside them
        pipelines = bench_pipelines(tree, args.repeats)
        load = (before, os.getloadavg()[0])
        training, exports = bench_training_and_export(tree, scratch, args.repeats)
    print(render(desc, pipelines, training, exports, load), flush=True)
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
