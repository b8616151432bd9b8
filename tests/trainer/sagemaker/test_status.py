"""`status` and `fetch` read AWS's answers correctly: the SageMaker API is stubbed with botocore's
Stubber (responses checked against the service model), never called."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import botocore.session
import pytest
from botocore.stub import Stubber

from trainer.sagemaker import sdk

ROLE = "arn:aws:iam::111122223333:role/trailcam"


@pytest.fixture
def client():
    session = botocore.session.get_session()
    client = session.create_client("sagemaker", region_name="us-east-1", aws_access_key_id="stub",
                                   aws_secret_access_key="stub")
    with Stubber(client) as stubber:
        client.stubber = stubber
        yield client
        stubber.assert_no_pending_responses()


def training_job(name: str, status: str = "Completed") -> dict:
    now = dt.datetime(2026, 11, 29, 1, 0, tzinfo=dt.UTC)
    return {
        "TrainingJobName": name, "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:111122223333:training-job/{name}",
        "ModelArtifacts": {"S3ModelArtifacts": f"s3://bucket/trailcam/output/{name}/output/model.tar.gz"},
        "TrainingJobStatus": status, "SecondaryStatus": "Completed", "AlgorithmSpecification": {
            "TrainingImage": "img", "TrainingInputMode": "File"},
        "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200},
        "CreationTime": now, "RoleArn": ROLE, "TrainingTimeInSeconds": 2432, "BillableTimeInSeconds": 552,
        "FinalMetricDataList": [{"MetricName": "validation_accuracy", "Value": 0.94, "Timestamp": now}],
    }


def test_status_of_a_training_job_reports_billing_and_metrics(client):
    client.stubber.add_response("describe_training_job", training_job("job-1"), {"TrainingJobName": "job-1"})
    info = sdk.describe("job-1", "us-east-1", client)
    assert info["kind"] == "training" and info["status"] == "Completed"
    assert (info["training_seconds"], info["billable_seconds"]) == (2432, 552)  # what spot saved
    assert info["final_metrics"] == {"validation_accuracy": 0.94}


def test_status_falls_back_to_a_tuning_job_and_fetch_takes_its_best_training_job(client, tmp_path: Path):
    now = dt.datetime(2026, 11, 29, 1, 0, tzinfo=dt.UTC)
    client.stubber.add_client_error("describe_training_job", "ValidationException", "Requested resource not found",
                                    expected_params={"TrainingJobName": "tune-1"})
    client.stubber.add_response("describe_hyper_parameter_tuning_job", {
        "HyperParameterTuningJobName": "tune-1",
        "HyperParameterTuningJobArn": "arn:aws:sagemaker:us-east-1:111122223333:hyper-parameter-tuning-job/tune-1",
        "HyperParameterTuningJobConfig": {"Strategy": "Bayesian", "ResourceLimits": {
            "MaxNumberOfTrainingJobs": 20, "MaxParallelTrainingJobs": 2}},
        "HyperParameterTuningJobStatus": "Completed", "CreationTime": now,
        "TrainingJobStatusCounters": {"Completed": 20}, "ObjectiveStatusCounters": {"Succeeded": 20},
        "BestTrainingJob": {"TrainingJobName": "tune-1-019-a5311a1e", "CreationTime": now,
                            "TrainingJobArn": "arn:aws:sagemaker:us-east-1:111122223333:training-job/tune-1-019-a5311a1e",
                            "TrainingJobStatus": "Completed",
                            "TunedHyperParameters": {"epochs": "20", "learning_rate": "0.001251"},
                            "FinalHyperParameterTuningJobObjectiveMetric": {"MetricName": "validation_accuracy",
                                                                            "Value": 0.34}},
    }, {"HyperParameterTuningJobName": "tune-1"})
    client.stubber.add_response("describe_training_job", training_job("tune-1-019-a5311a1e"),
                                {"TrainingJobName": "tune-1-019-a5311a1e"})

    class FakeS3:  # the download itself: record what would be fetched
        def download_file(self, bucket, key, dest):
            self.got = (bucket, key)
            Path(dest).write_bytes(b"artefact")

    s3 = FakeS3()
    path = sdk.download_model("tune-1", "us-east-1", tmp_path / "model.tar.gz", client=client, s3_client=s3)
    assert path.read_bytes() == b"artefact"
    assert s3.got == ("bucket", "trailcam/output/tune-1-019-a5311a1e/output/model.tar.gz")


def test_fetch_refuses_a_job_that_did_not_complete(client, tmp_path: Path):
    client.stubber.add_response("describe_training_job", training_job("job-2", status="Failed"),
                                {"TrainingJobName": "job-2"})
    with pytest.raises(RuntimeError, match="job-2 is Failed"):
        sdk.download_model("job-2", "us-east-1", tmp_path / "m.tar.gz", client=client, s3_client=object())
