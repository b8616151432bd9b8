"""Training and tuning on Amazon SageMaker (the optional `.[sagemaker]` extra).

Modules, one job each:

- `metrics`   metric definitions derived from the trainer's epoch line (no AWS, no TF)
- `spec`      `JobSpec`: everything a job needs, validated from CLI arguments
- `requests`  the CreateTrainingJob / CreateHyperParameterTuningJob requests (`--dry-run`)
- `validate`  checks a request against botocore's own SageMaker service model
- `sdk`       submission, status and artefact download through SageMaker Python SDK 3.x
- `artifacts` unpacking a job's model.tar.gz into the edge's TFLite bundle

Only `sdk` imports `sagemaker`/`boto3`, and only when a job is really submitted or queried,
so `--dry-run`, tests and the rest of the trainer work without AWS credentials.
"""
