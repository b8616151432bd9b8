"""`trainer sagemaker train|tune --dry-run`: the requests validate against botocore's SageMaker
model, carry the proposal's workflow (ranges, objective, 20 jobs, spot, checkpoints), and bad
arguments exit 2. Nothing here talks to AWS."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainer.cli import main as trainer_main
from trainer.sagemaker.validate import RequestInvalid, validate_request

ROLE = "arn:aws:iam::111122223333:role/service-role/AmazonSageMaker-ExecutionRole"


@pytest.fixture(autouse=True)
def no_aws(monkeypatch, tmp_path):
    """No credentials, no config: a dry run must not need either."""
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                "AWS_REGION", "AWS_DEFAULT_REGION", "SAGEMAKER_ROLE_ARN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))


def dry_run(capsys, *args: str) -> dict:
    code = trainer_main(["sagemaker", *args, "--dry-run"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "validated against botocore" in err
    return json.loads(out)


def test_training_request_is_valid_and_spot_with_checkpoints(capsys):
    request = dry_run(capsys, "train", "--data", "s3://birds-bucket/birds", "--role", ROLE, "--region", "eu-west-1",
                      "--hp", "epochs=10", "--hp", "learning-rate=0.001")
    validate_request("CreateTrainingJob", request)  # again, explicitly: the test's own check
    assert request["EnableManagedSpotTraining"] is True
    stop = request["StoppingCondition"]
    assert stop == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200}  # the proposal's max_run/max_wait
    assert request["CheckpointConfig"]["LocalPath"] == "/opt/ml/checkpoints"
    assert request["CheckpointConfig"]["S3Uri"].startswith("s3://birds-bucket/trailcam/checkpoints/")
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in request["InputDataConfig"]}
    assert channels == {"train": "s3://birds-bucket/birds/train/", "valid": "s3://birds-bucket/birds/valid/",
                        "test": "s3://birds-bucket/birds/test/"}
    image = request["AlgorithmSpecification"]["TrainingImage"]
    assert ".dkr.ecr.eu-west-1.amazonaws.com/tensorflow-training:" in image and "-cpu-" in image
    hps = request["HyperParameters"]
    assert hps["sagemaker_program"] == "trainer/entrypoint.py"
    assert hps["epochs"] == "10" and hps["learning_rate"] == "0.001" and hps["arch"] == "convnet"
    assert "distribution" not in hps
    names = [m["Name"] for m in request["AlgorithmSpecification"]["MetricDefinitions"]]
    assert names == ["training_loss", "training_accuracy", "validation_loss", "validation_accuracy"]


def test_gpu_instances_get_the_gpu_image_and_several_instances_train_multiworker(capsys):
    request = dry_run(capsys, "train", "--data", "s3://birds-bucket/birds", "--instance-type", "ml.g4dn.xlarge",
                      "--instance-count", "2", "--no-spot")
    assert "-gpu-" in request["AlgorithmSpecification"]["TrainingImage"]
    assert request["ResourceConfig"]["InstanceCount"] == 2
    assert request["HyperParameters"]["distribution"] == "multiworker"
    assert request["EnableManagedSpotTraining"] is False
    assert "MaxWaitTimeInSeconds" not in request["StoppingCondition"]


def test_tuning_request_is_the_proposals_20_job_search(capsys):
    request = dry_run(capsys, "tune", "--data", "s3://birds-bucket/birds", "--role", ROLE, "--region", "us-east-2")
    validate_request("CreateHyperParameterTuningJob", request)
    config = request["HyperParameterTuningJobConfig"]
    assert config["HyperParameterTuningJobObjective"] == {"Type": "Maximize", "MetricName": "validation_accuracy"}
    assert config["ResourceLimits"]["MaxNumberOfTrainingJobs"] == 20
    ranges = config["ParameterRanges"]
    ints = {r["Name"]: (r["MinValue"], r["MaxValue"]) for r in ranges["IntegerParameterRanges"]}
    floats = {r["Name"]: (r["MinValue"], r["MaxValue"], r["ScalingType"]) for r in ranges["ContinuousParameterRanges"]}
    assert ints["epochs"] == ("5", "20") and ints["dense_units"] == ("10", "50")
    assert floats["learning_rate"] == ("0.001", "0.1", "Logarithmic")
    definition = request["TrainingJobDefinition"]
    static = definition["StaticHyperParameters"]
    assert not set(static) & {"epochs", "dense_units", "learning_rate", "optimizer", "dropout"}  # tuned, not static
    metric_names = {m["Name"] for m in definition["AlgorithmSpecification"]["MetricDefinitions"]}
    assert config["HyperParameterTuningJobObjective"]["MetricName"] in metric_names
    assert definition["EnableManagedSpotTraining"] is True
    assert definition["CheckpointConfig"]["LocalPath"] == "/opt/ml/checkpoints"
    assert len(request["HyperParameterTuningJobName"]) <= 32


def test_reverse_log_scale_of_the_proposal_can_be_reproduced(capsys, tmp_path: Path):
    space = tmp_path / "proposal.toml"
    space.write_text('[params.learning_rate]\ntype = "float"\nlow = 0.001\nhigh = 0.1\nscaling = "ReverseLogarithmic"\n'
                     '[fixed]\noptimizer = "adam"\n')
    request = dry_run(capsys, "tune", "--data", "s3://birds-bucket/birds", "--search-space", str(space),
                      "--arch", "convnet")
    floats = request["HyperParameterTuningJobConfig"]["ParameterRanges"]["ContinuousParameterRanges"]
    assert {"Name": "learning_rate", "MinValue": "0.001", "MaxValue": "0.1", "ScalingType": "ReverseLogarithmic"} in floats
    assert request["TrainingJobDefinition"]["StaticHyperParameters"]["optimizer"] == "adam"


@pytest.mark.parametrize("arch", ["mobilenetv3-large", "efficientnetv2-b0", "resnet152"])
def test_transfer_tuning_requests_validate(capsys, arch):
    request = dry_run(capsys, "tune", "--data", "s3://birds-bucket/birds", "--arch", arch,
                      "--instance-type", "ml.g5.xlarge")
    names = {r["Name"] for group in request["HyperParameterTuningJobConfig"]["ParameterRanges"].values() for r in group}
    assert {"learning_rate", "dropout", "fine_tune_layers"} <= names
    assert ("head_units" in names) == (arch == "resnet152")


def test_validator_rejects_what_sagemaker_would_reject(capsys):
    request = dry_run(capsys, "tune", "--data", "s3://birds-bucket/birds")
    bad = json.loads(json.dumps(request))
    bad["HyperParameterTuningJobName"] = "trailcam_convnet"  # underscore: not allowed by the API pattern
    bad["TrainingJobDefinition"]["ResourceConfig"]["InstanceCount"] = "1"  # wrong type
    del bad["TrainingJobDefinition"]["RoleArn"]  # required
    with pytest.raises(RequestInvalid) as info:
        validate_request("CreateHyperParameterTuningJob", bad)
    message = str(info.value)
    assert "HyperParameterTuningJobName" in message and "InstanceCount" in message and "RoleArn" in message


BAD_ARGS = {
    "no_data": (["train"], "--data"),
    "valid_channel_missing": (["train", "--train", "s3://b-1/birds/train/"], "valid"),
    "not_an_s3_uri": (["train", "--data", "/home/me/birds"], "--data"),
    "max_wait_below_max_run": (["train", "--data", "s3://b-1/birds", "--max-run", "7200", "--max-wait", "3600"], "--max-wait"),
    "unknown_hyperparameter": (["train", "--data", "s3://b-1/birds", "--hp", "learning_speed=3"], "learning_speed"),
    "bad_hyperparameter_value": (["train", "--data", "s3://b-1/birds", "--hp", "epochs=ten"], "epochs"),
    "bad_role": (["train", "--data", "s3://b-1/birds", "--role", "admin"], "--role"),
    "bad_instance_type": (["train", "--data", "s3://b-1/birds", "--instance-type", "m5.large"], "--instance-type"),
    "too_many_parallel": (["tune", "--data", "s3://b-1/birds", "--max-jobs", "4", "--max-parallel-jobs", "5"],
                          "--max-parallel-jobs"),
}


@pytest.mark.parametrize("name", sorted(BAD_ARGS))
def test_bad_arguments_exit_2_naming_the_option(capsys, name):
    args, expected = BAD_ARGS[name]
    code = trainer_main(["sagemaker", *args, "--dry-run"])
    _, err = capsys.readouterr()
    assert code == 2
    assert expected in err


def test_real_submission_without_region_or_role_exits_2_before_touching_aws(capsys):
    assert trainer_main(["sagemaker", "train", "--data", "s3://b-1/birds"]) == 2
    assert "--region" in capsys.readouterr().err
    assert trainer_main(["sagemaker", "train", "--data", "s3://b-1/birds", "--region", "us-east-1"]) == 2
    assert "--role" in capsys.readouterr().err
