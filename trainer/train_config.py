"""The one description of a training run, shared by `trainer train`, the tuner and SageMaker.

Kept free of TensorFlow imports so that CLIs and request builders can use it cheaply.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ARCHITECTURES = (
    "convnet",
    "resnet152",
    "mobilenetv3-large",
    "mobilenetv3-small",
    "efficientnetv2-b0",
)
OPTIMIZERS = ("sgd", "adam")
# Smallest input each architecture accepts (Keras's limits for the backbones without their top).
MIN_IMAGE_SIZE = {
    "convnet": 12,
    "resnet152": 32,
    "mobilenetv3-large": 32,
    "mobilenetv3-small": 32,
    "efficientnetv2-b0": 32,
}


@dataclass
class TrainConfig:
    """Everything that determines a training run. Serialised as run_dir/config.json."""

    data_dir: Path
    out_dir: Path
    arch: str = "convnet"
    image_size: int = 224
    # data
    val_fraction: float = 0.15  # used only when the data has no valid/ split
    test_fraction: float = 0.10  # used only when the data has no test/ split
    augment: bool = True
    cache: bool = True
    # model
    filters: tuple[int, int] = (64, 32)  # the proposal's convnet
    dense_units: int = 32  # tuned 10..50 in the proposal
    dropout: float = 0.2  # the proposal's notebook: Dropout(0.2)
    weights: str = "imagenet"  # imagenet | none | path to a local .h5 / .weights.h5
    head_units: int = 1000  # resnet152: Dense(1000) as in the proposal
    # optimisation
    optimizer: str = "sgd"
    learning_rate: float = 0.01
    momentum: float = 0.9
    batch_size: int = 32
    epochs: int = 10
    early_stopping_monitor: str = "loss"  # the proposal stopped on training loss
    early_stopping_patience: int = 3
    fine_tune_layers: int = 0  # transfer models: unfreeze the top N base layers after the head
    fine_tune_epochs: int = 0
    fine_tune_learning_rate: float = 1e-4
    # run control
    seed: int = 42
    resume: bool = False
    checkpoint_dir: Path | None = None  # default run_dir/checkpoints; SageMaker: /opt/ml/checkpoints
    keep_checkpoints: int = 3  # per-epoch checkpoints kept (oldest deleted); 0 keeps all
    overwrite: bool = False  # allow training into a folder that already holds a run
    # start from this run folder or bundle (trainer/init_from.py): its weights, its classes first
    init_from: Path | None = None
    # scientific/common names per class (trainer/taxonomy.py): RUN/taxonomy.json, then the bundle manifest
    taxonomy: Path | None = None
    mixed_precision: str = "auto"  # auto (on when a GPU is visible) | on | off
    distribution: str = "auto"  # auto | none | mirrored | multiworker
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        for key, value in data.items():
            if isinstance(value, Path):
                data[key] = str(value)
        return json.dumps(data, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        data = json.loads(text)
        for key in ("data_dir", "out_dir"):
            data[key] = Path(data[key])
        for key in ("checkpoint_dir", "init_from", "taxonomy"):
            if data.get(key):
                data[key] = Path(data[key])
        data["filters"] = tuple(data.get("filters", (64, 32)))
        return cls(**data)
