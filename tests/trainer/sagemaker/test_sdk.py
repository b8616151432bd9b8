"""The SageMaker Python SDK 3.x objects built for a real submission carry what --dry-run shows.

Built offline: a boto3 session with dummy credentials and the SDK's role validation switched
off (SAGEMAKER_VALIDATE_ROLE=false), so constructing ModelTrainer/HyperparameterTuner and the
tuning config makes no AWS call."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("sagemaker.train", reason="the .[sagemaker] extra (SageMaker Python SDK 3.x) is not installed")

from trainer.sagemaker import sdk  # noqa: E402
from trainer.sagemaker.requests import training_job_request, tuning_job_request  # noqa: E402
from trainer.sagemaker.spec import JobSpec, channels_from_args, default_locations, training_image  # noqa: E402
from trainer.search_space import default_search_space  # noqa: E402

ROLE = "arn:aws:iam::111122223333:role/trailcam-sagemaker"


@pytest.fixture
def spec(monkeypatch) -> JobSpec:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "dummy-not-used")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "dummy-not-used")
    # The SDK checks the role with iam:SimulatePrincipalPolicy on construction; offline we
    # use its documented switch to skip that call (the ARN is still parsed and used).
    monkeypatch.setenv("SAGEMAKER_VALIDATE_ROLE", "false")
    channels = channels_from_args("s3://birds-bucket/birds", None, None, None)
    output, checkpoints, source = default_locations(channels, None, None, "trailcam-convnet-test")
    return JobSpec(role_arn=ROLE, region="us-east-1", channels=channels, output_s3=output, checkpoint_s3=checkpoints,
                   source_s3=source, image_uri=training_image("us-east-1", "ml.m5.xlarge"),
                   hyperparameters={"batch_size": "32"}).validate()


def test_model_trainer_matches_the_dry_run_training_request(spec: JobSpec, tmp_path: Path):
    source = sdk.stage_source(tmp_path / "source")
    assert (source / "trainer" / "entrypoint.py").is_file() and (source / "requirements.txt").is_file()
    assert not list(source.rglob("__pycache__"))
    trainer = sdk.model_trainer(spec, sdk.session(spec.region, "birds-bucket"), source)
    request = training_job_request(spec, "trailcam-convnet-test")

    assert trainer.training_image == request["AlgorithmSpecification"]["TrainingImage"]
    assert trainer.compute.instance_type == request["ResourceConfig"]["InstanceType"]
    assert trainer.compute.instance_count == request["ResourceConfig"]["InstanceCount"]
    assert trainer.compute.enable_managed_spot_training is request["EnableManagedSpotTraining"] is True
    assert trainer.stopping_condition.max_runtime_in_seconds == request["StoppingCondition"]["MaxRuntimeInSeconds"]
    assert trainer.stopping_condition.max_wait_time_in_seconds == request["StoppingCondition"]["MaxWaitTimeInSeconds"]
    assert trainer.checkpoint_config.s3_uri == request["CheckpointConfig"]["S3Uri"]
    assert trainer.checkpoint_config.local_path == "/opt/ml/checkpoints"
    assert trainer.output_data_config.s3_output_path == request["OutputDataConfig"]["S3OutputPath"]
    assert trainer.source_code.entry_script == request["HyperParameters"]["sagemaker_program"]
    sdk_hps = {k: str(v) for k, v in trainer.hyperparameters.items()}
    assert sdk_hps.items() <= request["HyperParameters"].items()
    sdk_metrics = [{"Name": m.name, "Regex": m.regex} for m in trainer._metric_definitions]
    assert sdk_metrics == request["AlgorithmSpecification"]["MetricDefinitions"]
    channels = [c.channel_name for c in sdk.input_data(spec)]
    assert channels == [c["ChannelName"] for c in request["InputDataConfig"]]


def test_hyperparameter_tuner_config_equals_the_dry_run_tuning_config(spec: JobSpec, tmp_path: Path):
    from sagemaker.core.utils.utils import serialize

    space = default_search_space("convnet")
    trainer = sdk.model_trainer(spec, sdk.session(spec.region, "birds-bucket"), sdk.stage_source(tmp_path / "src"))
    tuner = sdk.hyperparameter_tuner(spec, trainer, space, max_jobs=20, max_parallel_jobs=2)
    sdk_config = serialize(tuner._build_tuning_job_config())
    ours = tuning_job_request(spec, "trailcam-convnet-test", space)["HyperParameterTuningJobConfig"]

    def by_name(ranges):
        return {kind: sorted(items, key=lambda r: r["Name"]) for kind, items in ranges.items() if items}

    assert by_name(sdk_config["ParameterRanges"]) == by_name(ours["ParameterRanges"])
    assert sdk_config["HyperParameterTuningJobObjective"] == ours["HyperParameterTuningJobObjective"]
    assert sdk_config["ResourceLimits"] == ours["ResourceLimits"]
    assert sdk_config["Strategy"] == ours["Strategy"] == "Bayesian"
    assert tuner.metric_definitions == tuning_job_request(spec, "x", space)["TrainingJobDefinition"][
        "AlgorithmSpecification"]["MetricDefinitions"]
