"""`JobSpec`: one validated description of a SageMaker job, shared by --dry-run and the SDK.

Both the request printed by `--dry-run` and the SDK objects built for a real submission come
from the same `JobSpec`, so what you inspect is what you send.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from trainer.search_space import SearchSpaceError, coerce_hyperparameter, tunable_fields

CHANNELS = ("train", "valid", "test")
REQUIRED_CHANNELS = ("train", "valid")
ENTRY_SCRIPT = "trainer/entrypoint.py"
CHECKPOINT_LOCAL_PATH = "/opt/ml/checkpoints"
DEFAULT_TF_VERSION = "2.21"
DEFAULT_PY_VERSION = "py312"
PLACEHOLDER_ROLE = "arn:aws:iam::123456789012:role/YOUR-SAGEMAKER-EXECUTION-ROLE"
# Hyperparameters the entry point reads besides TrainConfig fields.
ENTRYPOINT_HYPERPARAMETERS = ("quantize", "eval_split", "calibration_images")

_S3_URI = re.compile(r"^s3://([a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])(/.*)?$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z\-]*:iam::\d{12}:role/[\w+=,.@\-/]+$")
_INSTANCE = re.compile(r"^ml\.[a-z0-9]+\.[a-z0-9]+$")


class SpecError(ValueError):
    """A job argument is invalid; the message names the option and the problem (exit 2)."""


def parse_s3_uri(option: str, uri: str) -> tuple[str, str]:
    """(bucket, key prefix) of an s3:// URI, or SpecError naming `option`."""
    match = _S3_URI.match(uri or "")
    if not match:
        raise SpecError(f"{option}: expected an s3://bucket/prefix URI, got {uri!r}")
    return match.group(1), (match.group(2) or "/").lstrip("/")


def job_name(base: str, max_len: int, now: float | None = None) -> str:
    """`<base>-<yymmdd-HHMMSS>`, trimmed to SageMaker's name length (32 for tuning jobs)."""
    stamp = time.strftime("%y%m%d-%H%M%S", time.gmtime(now if now is not None else time.time()))
    base = re.sub(r"[^a-zA-Z0-9-]+", "-", base).strip("-") or "trailcam"
    base = base[: max_len - len(stamp) - 1].rstrip("-")
    return f"{base}-{stamp}"


@dataclass
class JobSpec:
    """Everything a SageMaker training or tuning job needs (strings as AWS wants them)."""

    role_arn: str
    region: str
    channels: dict[str, str]
    output_s3: str
    checkpoint_s3: str
    source_s3: str  # where the staged source tarball lives (legacy script-mode submit dir)
    image_uri: str
    arch: str = "convnet"
    instance_type: str = "ml.m5.xlarge"
    instance_count: int = 1
    volume_size_gb: int = 30
    spot: bool = True
    max_run_s: int = 3600
    max_wait_s: int = 7200
    base_job_name: str = "trailcam"
    hyperparameters: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def validate(self) -> JobSpec:
        if not _ROLE_ARN.match(self.role_arn):
            raise SpecError(f"--role: expected an IAM role ARN (arn:aws:iam::<account>:role/<name>), got {self.role_arn!r}")
        missing = [c for c in REQUIRED_CHANNELS if c not in self.channels]
        if missing:
            raise SpecError(
                f"--data: channel(s) {', '.join(missing)} missing; give --data s3://bucket/prefix "
                "(with train/ valid/ test/ below it) or --train/--valid/--test URIs"
            )
        for name, uri in self.channels.items():
            if name not in CHANNELS:
                raise SpecError(f"channel {name!r}: unknown; channels are {', '.join(CHANNELS)}")
            parse_s3_uri(f"--{name}", uri)
        parse_s3_uri("--output", self.output_s3)
        parse_s3_uri("--checkpoints", self.checkpoint_s3)
        check_instance_type(self.instance_type)
        if self.instance_count < 1:
            raise SpecError(f"--instance-count: must be at least 1, got {self.instance_count}")
        if not 1 <= self.volume_size_gb <= 16384:
            raise SpecError(f"--volume-size: must be 1..16384 GB, got {self.volume_size_gb}")
        if self.max_run_s < 1:
            raise SpecError(f"--max-run: must be a positive number of seconds, got {self.max_run_s}")
        if self.spot and self.max_wait_s < self.max_run_s:
            raise SpecError(
                f"--max-wait ({self.max_wait_s}s) must be >= --max-run ({self.max_run_s}s) for managed spot "
                "training: it bounds the run time plus the time spent waiting for spot capacity"
            )
        for key, value in self.hyperparameters.items():
            check_hyperparameter(key, value)
        return self

    @property
    def distributed(self) -> bool:
        return self.instance_count > 1

    def all_hyperparameters(self) -> dict[str, str]:
        """What the container receives: the user's settings plus the run settings we own."""
        hps = {"arch": self.arch, **self.hyperparameters}
        if self.distributed:
            # The entry point builds TF_CONFIG from SM_HOSTS and trains under
            # tf.distribute.MultiWorkerMirroredStrategy.
            hps["distribution"] = "multiworker"
        hps["checkpoint_dir"] = CHECKPOINT_LOCAL_PATH
        return hps


def check_instance_type(instance_type: str) -> None:
    if not _INSTANCE.match(instance_type or ""):
        raise SpecError(f"--instance-type: expected a SageMaker instance type like ml.g4dn.xlarge, got {instance_type!r}")


def check_hyperparameter(key: str, value: Any) -> None:
    """A `--hp key=value` must be a TrainConfig field or an entry-point option, of the right type."""
    if key in ENTRYPOINT_HYPERPARAMETERS or key in ("arch", "checkpoint_dir"):
        return
    if key not in tunable_fields():
        raise SpecError(f"--hp {key}: unknown hyperparameter; known: {', '.join(tunable_fields() + list(ENTRYPOINT_HYPERPARAMETERS))}")
    try:
        coerce_hyperparameter(key, value)
    except SearchSpaceError as exc:
        raise SpecError(f"--hp {exc}") from None


def parse_hp_args(items: list[str] | None) -> dict[str, str]:
    """`["epochs=10", "learning_rate=0.001"]` → dict; dashes in keys become underscores."""
    out: dict[str, str] = {}
    for item in items or []:
        if "=" not in item:
            raise SpecError(f"--hp {item!r}: expected key=value")
        key, value = item.split("=", 1)
        key = key.strip().replace("-", "_")
        if not key:
            raise SpecError(f"--hp {item!r}: empty key")
        out[key] = value.strip()
    return out


def channels_from_args(data: str | None, train: str | None, valid: str | None, test: str | None) -> dict[str, str]:
    """Channels from `--data s3://b/p` (train/ valid/ test/ below it) and/or explicit URIs."""
    channels: dict[str, str] = {}
    if data:
        parse_s3_uri("--data", data)
        root = data.rstrip("/")
        channels = {name: f"{root}/{name}/" for name in CHANNELS}
    for name, uri in (("train", train), ("valid", valid), ("test", test)):
        if uri:
            channels[name] = uri
    return channels


def default_locations(channels: dict[str, str], output: str | None, checkpoints: str | None,
                      job: str) -> tuple[str, str, str]:
    """(output, checkpoints, source) S3 URIs; defaults live beside the data in its bucket."""
    anchor = channels.get("train") or next(iter(channels.values()), None)
    if anchor is None and (output is None or checkpoints is None):
        raise SpecError("--data: no channels given, so no default --output/--checkpoints either")
    bucket = parse_s3_uri("--train", anchor)[0] if anchor else parse_s3_uri("--output", output or "")[0]
    out = (output or f"s3://{bucket}/trailcam/output").rstrip("/")
    ckpt = (checkpoints or f"s3://{bucket}/trailcam/checkpoints").rstrip("/") + f"/{job}"
    source = f"s3://{bucket}/trailcam/source/{job}/sourcedir.tar.gz"
    return out, ckpt, source


def training_image(region: str, instance_type: str, tf_version: str = DEFAULT_TF_VERSION,
                   py_version: str = DEFAULT_PY_VERSION) -> str:
    """The AWS Deep Learning Container for TensorFlow training (CPU or GPU by instance type).

    Uses the SDK's bundled image table when the SDK is installed (offline lookup); otherwise the
    documented account/repository pattern, so --dry-run works without the extra.
    """
    try:
        from sagemaker.core import image_uris

        return image_uris.retrieve(
            "tensorflow", region=region, version=tf_version, py_version=py_version,
            instance_type=instance_type, image_scope="training",
        )
    except ImportError:
        pass
    except ValueError as exc:
        raise SpecError(f"--tf-version {tf_version}: {exc}") from None
    family = instance_type.split(".")[1] if instance_type.count(".") >= 2 else ""
    processor = "gpu" if family[:1] in ("p", "g") else "cpu"
    cuda = "-cu125" if processor == "gpu" else ""
    return (f"763104351884.dkr.ecr.{region}.amazonaws.com/tensorflow-training:"
            f"{tf_version}-{processor}-{py_version}{cuda}")
