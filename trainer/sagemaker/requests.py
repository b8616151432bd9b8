"""The CreateTrainingJob and CreateHyperParameterTuningJob requests, as boto3 dictionaries.

This is what `trainer sagemaker train|tune --dry-run` prints and what the tests validate
against botocore's SageMaker service model. The entry point is started the way the TensorFlow
training container's script mode expects: `sagemaker_program` names `trainer/entrypoint.py`
inside the staged source tarball `sagemaker_submit_directory`. (For a plain training job the
SDK's ModelTrainer stages the same source through its own `code`/`sm_drivers` channels; the
data channels, hyperparameters, metrics, spot settings and checkpoints are the same.)
"""

from __future__ import annotations

from typing import Any

from trainer.sagemaker.metrics import metric_definitions, objective_metric_name
from trainer.sagemaker.spec import CHECKPOINT_LOCAL_PATH, ENTRY_SCRIPT, JobSpec
from trainer.search_space import SearchSpace


def _channels(spec: JobSpec) -> list[dict[str, Any]]:
    return [
        {
            "ChannelName": name,
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": uri,
                    "S3DataDistributionType": "FullyReplicated",
                }
            },
            "InputMode": "File",
        }
        for name, uri in spec.channels.items()
    ]


def _stopping(spec: JobSpec) -> dict[str, int]:
    stopping = {"MaxRuntimeInSeconds": spec.max_run_s}
    if spec.spot:
        stopping["MaxWaitTimeInSeconds"] = spec.max_wait_s
    return stopping


def _script_mode_hyperparameters(spec: JobSpec) -> dict[str, str]:
    return {
        "sagemaker_program": ENTRY_SCRIPT,
        "sagemaker_submit_directory": spec.source_s3,
        "sagemaker_region": spec.region,
        "sagemaker_container_log_level": "20",
    }


def _job_setup(spec: JobSpec) -> dict[str, Any]:
    """What a training job and a tuning job's training definition share: data, output,
    instances, time limits, spot and checkpoints."""
    return {
        "InputDataConfig": _channels(spec),
        "OutputDataConfig": {"S3OutputPath": spec.output_s3},
        "ResourceConfig": {
            "InstanceType": spec.instance_type,
            "InstanceCount": spec.instance_count,
            "VolumeSizeInGB": spec.volume_size_gb,
        },
        "StoppingCondition": _stopping(spec),
        "EnableManagedSpotTraining": spec.spot,
        "CheckpointConfig": {"S3Uri": spec.checkpoint_s3, "LocalPath": CHECKPOINT_LOCAL_PATH},
    }


def _tags(spec: JobSpec) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in {"project": "trailcam", **spec.tags}.items()]


def training_job_request(spec: JobSpec, name: str) -> dict[str, Any]:
    """CreateTrainingJob input for one run of the entry point."""
    hps = {**spec.all_hyperparameters(), **_script_mode_hyperparameters(spec)}
    return {
        "TrainingJobName": name,
        "RoleArn": spec.role_arn,
        "AlgorithmSpecification": {
            "TrainingImage": spec.image_uri,
            "TrainingInputMode": "File",
            "MetricDefinitions": metric_definitions(),
            "EnableSageMakerMetricsTimeSeries": True,
        },
        "HyperParameters": {k: str(v) for k, v in hps.items()},
        **_job_setup(spec),
        "Tags": _tags(spec),
    }


def tuning_job_request(
    spec: JobSpec,
    name: str,
    space: SearchSpace,
    max_jobs: int = 20,
    max_parallel_jobs: int = 2,
    strategy: str = "Bayesian",
    early_stopping: str = "Off",
    max_runtime_s: int | None = None,
) -> dict[str, Any]:
    """CreateHyperParameterTuningJob input: the space's ranges over the training definition.

    Tuned names are removed from the static hyperparameters (SageMaker rejects a name that
    is both), and the search space's fixed values are added to them.
    """
    tuned = set(space.params)
    static = {**spec.all_hyperparameters(), **{k: _str(v) for k, v in space.fixed.items()}}
    static = {k: str(v) for k, v in static.items() if k not in tuned}
    static.update(_script_mode_hyperparameters(spec))
    limits: dict[str, int] = {"MaxNumberOfTrainingJobs": max_jobs, "MaxParallelTrainingJobs": max_parallel_jobs}
    if max_runtime_s:
        limits["MaxRuntimeInSeconds"] = max_runtime_s
    definition: dict[str, Any] = {
        "StaticHyperParameters": static,
        "AlgorithmSpecification": {
            "TrainingImage": spec.image_uri,
            "TrainingInputMode": "File",
            "MetricDefinitions": metric_definitions(),
        },
        "RoleArn": spec.role_arn,
        **_job_setup(spec),
    }
    return {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": {
            "Strategy": strategy,
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": objective_metric_name()},
            "ResourceLimits": limits,
            "ParameterRanges": space.sagemaker_parameter_ranges(),
            "TrainingJobEarlyStoppingType": early_stopping,
        },
        "TrainingJobDefinition": definition,
        "Tags": _tags(spec),
    }


def _str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
