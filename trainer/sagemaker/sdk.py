"""Submission, status and download through SageMaker Python SDK 3.x (imported lazily).

`sagemaker.train.ModelTrainer` runs one training job; `sagemaker.train.tuner.HyperparameterTuner`
runs the tuning job; ranges are `sagemaker.core.parameter` objects from the same `SearchSpace`
that --dry-run prints. Everything here talks to AWS; nothing else in trailcam does.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from trainer.sagemaker.metrics import metric_definitions, objective_metric_name
from trainer.sagemaker.spec import CHECKPOINT_LOCAL_PATH, ENTRY_SCRIPT, JobSpec, parse_s3_uri
from trainer.search_space import SearchSpace

REPO_ROOT = Path(__file__).resolve().parents[2]
# What the TensorFlow training container lacks for the entry point (TF itself is there).
CONTAINER_REQUIREMENTS = (
    "ai-edge-litert>=1.2",
    "pillow>=10.3",
    "matplotlib>=3.7",
)


class SdkMissing(RuntimeError):
    """The `.[sagemaker]` extra is not installed."""


def _require_sdk() -> None:
    try:
        import sagemaker.train  # noqa: F401
    except ImportError as exc:
        raise SdkMissing(
            "the SageMaker Python SDK 3.x is not installed: pip install 'trailcam[sagemaker]' "
            f"(or use --dry-run, which needs no SDK) [{exc}]"
        ) from None


def stage_source(dest: Path) -> Path:
    """Copy only what the container runs (trainer/, edge/) plus a requirements.txt into dest."""
    dest.mkdir(parents=True, exist_ok=True)
    for package in ("trainer", "edge"):
        src = REPO_ROOT / package
        if src.is_dir():
            shutil.copytree(src, dest / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
                            dirs_exist_ok=True)
    (dest / "requirements.txt").write_text("\n".join(CONTAINER_REQUIREMENTS) + "\n")
    return dest


def session(region: str, bucket: str):
    """A SageMaker session on the default credential chain, pinned to region and bucket."""
    _require_sdk()
    import boto3
    from sagemaker.core.helper.session_helper import Session

    return Session(boto_session=boto3.Session(region_name=region), default_bucket=bucket)


def model_trainer(spec: JobSpec, sagemaker_session: Any, source_dir: Path, extra_hyperparameters: dict | None = None):
    """The ModelTrainer for `spec`: TF training image, this package as source, spot + checkpoints."""
    _require_sdk()
    from sagemaker.core.shapes import MetricDefinition, Tag
    from sagemaker.train import ModelTrainer
    from sagemaker.train.configs import CheckpointConfig, Compute, OutputDataConfig, SourceCode, StoppingCondition

    stopping = {"max_runtime_in_seconds": spec.max_run_s}
    if spec.spot:
        stopping["max_wait_time_in_seconds"] = spec.max_wait_s
    trainer = ModelTrainer(
        sagemaker_session=sagemaker_session,
        role=spec.role_arn,
        base_job_name=spec.base_job_name,
        training_image=spec.image_uri,
        source_code=SourceCode(source_dir=str(source_dir), entry_script=ENTRY_SCRIPT, requirements="requirements.txt"),
        compute=Compute(instance_type=spec.instance_type, instance_count=spec.instance_count,
                        volume_size_in_gb=spec.volume_size_gb, enable_managed_spot_training=spec.spot),
        stopping_condition=StoppingCondition(**stopping),
        output_data_config=OutputDataConfig(s3_output_path=spec.output_s3),
        checkpoint_config=CheckpointConfig(s3_uri=spec.checkpoint_s3, local_path=CHECKPOINT_LOCAL_PATH),
        hyperparameters={**spec.all_hyperparameters(), **(extra_hyperparameters or {})},
        tags=[Tag(key=k, value=v) for k, v in {"project": "trailcam", **spec.tags}.items()],
    )
    return trainer.with_metric_definitions(
        [MetricDefinition(name=m["Name"], regex=m["Regex"]) for m in metric_definitions()]
    )


def input_data(spec: JobSpec) -> list:
    from sagemaker.train.configs import InputData

    return [InputData(channel_name=name, data_source=uri) for name, uri in spec.channels.items()]


def hyperparameter_tuner(spec: JobSpec, trainer: Any, space: SearchSpace, max_jobs: int, max_parallel_jobs: int,
                         strategy: str = "Bayesian", early_stopping: str = "Off", max_runtime_s: int | None = None):
    """The HyperparameterTuner over `trainer` with the search space's ranges."""
    _require_sdk()
    from sagemaker.train.tuner import HyperparameterTuner

    return HyperparameterTuner(
        model_trainer=trainer,
        objective_metric_name=objective_metric_name(),
        hyperparameter_ranges=space.sdk_parameter_ranges(),
        metric_definitions=metric_definitions(),
        strategy=strategy,
        objective_type="Maximize",
        max_jobs=max_jobs,
        max_parallel_jobs=max_parallel_jobs,
        max_runtime_in_seconds=max_runtime_s,
        early_stopping_type=early_stopping,
        base_tuning_job_name=spec.base_job_name[:20],
    )


def submit_training(spec: JobSpec, wait: bool) -> str:
    """Start one training job; returns its name."""
    bucket = parse_s3_uri("--output", spec.output_s3)[0]
    with tempfile.TemporaryDirectory(prefix="trailcam-source-") as tmp:
        trainer = model_trainer(spec, session(spec.region, bucket), stage_source(Path(tmp) / "source"))
        trainer.train(input_data_config=input_data(spec), wait=wait, logs=wait)
        return trainer._latest_training_job.training_job_name


def submit_tuning(spec: JobSpec, name: str, space: SearchSpace, max_jobs: int, max_parallel_jobs: int,
                  strategy: str, early_stopping: str, max_runtime_s: int | None, wait: bool) -> str:
    """Start the tuning job `name`; returns the name."""
    bucket = parse_s3_uri("--output", spec.output_s3)[0]
    fixed = {k: str(v) for k, v in space.fixed.items()}
    with tempfile.TemporaryDirectory(prefix="trailcam-source-") as tmp:
        trainer = model_trainer(spec, session(spec.region, bucket), stage_source(Path(tmp) / "source"), fixed)
        tuner = hyperparameter_tuner(spec, trainer, space, max_jobs, max_parallel_jobs, strategy, early_stopping,
                                     max_runtime_s)
        tuner.tune(inputs=input_data(spec), job_name=name, wait=wait)
    return name


def describe(name: str, region: str, client: Any = None) -> dict[str, Any]:
    """Status of a training or tuning job (tried in that order) as a plain dict."""
    from botocore.exceptions import ClientError

    if client is None:
        import boto3

        client = boto3.client("sagemaker", region_name=region)
    try:
        job = client.describe_training_job(TrainingJobName=name)
        return {
            "kind": "training", "name": name, "status": job["TrainingJobStatus"],
            "secondary_status": job.get("SecondaryStatus"), "failure_reason": job.get("FailureReason"),
            "model_artifacts": job.get("ModelArtifacts", {}).get("S3ModelArtifacts"),
            "training_seconds": job.get("TrainingTimeInSeconds"), "billable_seconds": job.get("BillableTimeInSeconds"),
            "final_metrics": {m["MetricName"]: m["Value"] for m in job.get("FinalMetricDataList", [])},
        }
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ValidationException":
            raise
    job = client.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    best = job.get("BestTrainingJob") or {}
    return {
        "kind": "tuning", "name": name, "status": job["HyperParameterTuningJobStatus"],
        "counters": job.get("TrainingJobStatusCounters"), "failure_reason": job.get("FailureReason"),
        "best_training_job": best.get("TrainingJobName"),
        "best_objective": (best.get("FinalHyperParameterTuningJobObjectiveMetric") or {}).get("Value"),
        "best_hyperparameters": best.get("TunedHyperParameters"),
    }


def download_model(name: str, region: str, dest: Path, client: Any = None, s3_client: Any = None) -> Path:
    """Download the model.tar.gz of training job `name` (or of a tuning job's best job)."""
    import boto3

    info = describe(name, region, client)
    if info["kind"] == "tuning":
        if not info.get("best_training_job"):
            raise RuntimeError(f"tuning job {name} has no finished best training job yet (status {info['status']})")
        info = describe(info["best_training_job"], region, client)
    if info["status"] != "Completed" or not info.get("model_artifacts"):
        raise RuntimeError(f"training job {info['name']} is {info['status']}; no model artefact to fetch"
                           + (f" ({info['failure_reason']})" if info.get("failure_reason") else ""))
    bucket, key = parse_s3_uri("model artefact", info["model_artifacts"])
    dest.parent.mkdir(parents=True, exist_ok=True)
    (s3_client or boto3.client("s3", region_name=region)).download_file(bucket, key, str(dest))
    return dest
