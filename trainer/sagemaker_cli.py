"""`trainer sagemaker train | tune | status | fetch`: the proposal's cloud workflow, one command each.

`--dry-run` prints the exact CreateTrainingJob / CreateHyperParameterTuningJob request (JSON on
stdout), checked against botocore's SageMaker service model, with no AWS credentials and no SDK.
Bad arguments exit 2 with the option named; AWS failures exit 1 with AWS's message.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from trainer.train_config import ARCHITECTURES

EXIT_USAGE = 2


def _add_job_arguments(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("data (S3)")
    data.add_argument("--data", help="s3://bucket/prefix holding train/ valid/ test/ (one folder per class below each)")
    data.add_argument("--train", help="S3 URI of the train channel (overrides --data)")
    data.add_argument("--valid", help="S3 URI of the valid channel (overrides --data)")
    data.add_argument("--test", help="S3 URI of the test channel (optional; overrides --data)")
    data.add_argument("--output", help="S3 URI for model.tar.gz/output.tar.gz (default s3://<data bucket>/trailcam/output)")
    data.add_argument("--checkpoints", help="S3 URI prefix for spot checkpoints (default s3://<data bucket>/trailcam/checkpoints)")
    job = parser.add_argument_group("job")
    job.add_argument("--arch", default="convnet", choices=ARCHITECTURES, help="model architecture")
    job.add_argument("--role", default=os.environ.get("SAGEMAKER_ROLE_ARN"),
                     help="IAM execution role ARN (default $SAGEMAKER_ROLE_ARN)")
    job.add_argument("--region", default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"),
                     help="AWS region (default $AWS_REGION / $AWS_DEFAULT_REGION)")
    job.add_argument("--instance-type", default="ml.m5.xlarge", help="e.g. ml.m5.xlarge (CPU), ml.g4dn.xlarge (GPU)")
    job.add_argument("--instance-count", type=int, default=1,
                     help=">1 trains with tf.distribute.MultiWorkerMirroredStrategy across the instances")
    job.add_argument("--volume-size", type=int, default=30, help="EBS volume per instance, GB")
    job.add_argument("--no-spot", dest="spot", action="store_false", help="on-demand instead of managed spot training")
    job.add_argument("--max-run", type=int, default=3600, help="seconds of training before SageMaker stops the job")
    job.add_argument("--max-wait", type=int, default=7200,
                     help="spot only: seconds of training plus waiting for capacity (>= --max-run)")
    job.add_argument("--tf-version", default=None, help="TensorFlow training image version (default 2.21)")
    job.add_argument("--image-uri", help="training image to use instead of the AWS TensorFlow image")
    job.add_argument("--hp", action="append", metavar="KEY=VALUE",
                     help="a hyperparameter (TrainConfig field or quantize/eval_split), repeatable; e.g. --hp epochs=10")
    job.add_argument("--job-name", help="job name (default trailcam-<arch>-<timestamp>)")
    job.add_argument("--dry-run", action="store_true", help="print the request and exit; needs no AWS access")
    job.add_argument("--wait", action="store_true", help="wait for the job to finish (and stream logs for training)")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `sagemaker` subcommand group to the trainer CLI."""
    group = subparsers.add_parser("sagemaker", help="train, tune and fetch models on Amazon SageMaker",
                                  description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = group.add_subparsers(dest="sagemaker_command", required=True, metavar="{train,tune,status,fetch}")

    train = sub.add_parser("train", help="one training job (managed spot, checkpoints, TFLite bundle in the artefact)")
    _add_job_arguments(train)
    train.set_defaults(func=cmd_train)

    tune = sub.add_parser("tune", help="a hyperparameter tuning job over the architecture's search space")
    _add_job_arguments(tune)
    tune.add_argument("--search-space", type=Path, help="TOML/JSON file overriding the default ranges")
    tune.add_argument("--max-jobs", type=int, default=20, help="training jobs in total (the proposal ran 20)")
    tune.add_argument("--max-parallel-jobs", type=int, default=2, help="training jobs at a time")
    tune.add_argument("--strategy", default="Bayesian", choices=("Bayesian", "Random", "Hyperband", "Grid"),
                      help="SageMaker's search strategy")
    tune.add_argument("--early-stopping", default="Off", choices=("Off", "Auto"),
                      help="Auto lets SageMaker stop trials that trail the median (like the local pruner)")
    tune.add_argument("--max-tuning-runtime", type=int, default=None, help="seconds for the whole tuning job")
    tune.set_defaults(func=cmd_tune)

    status = sub.add_parser("status", help="state of a training or tuning job")
    status.add_argument("name", help="training or tuning job name")
    status.add_argument("--region", default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"),
                        help="AWS region (default $AWS_REGION / $AWS_DEFAULT_REGION)")
    status.set_defaults(func=cmd_status)

    fetch = sub.add_parser("fetch", help="download a finished job's model and unpack the TFLite bundle for the edge")
    fetch.add_argument("name", nargs="?", help="training job, or tuning job (its best training job is fetched)")
    fetch.add_argument("--out", type=Path, required=True, help="bundle folder to write (what `edge --model` reads)")
    fetch.add_argument("--region", default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"),
                       help="AWS region (default $AWS_REGION / $AWS_DEFAULT_REGION)")
    fetch.add_argument("--from-file", type=Path, help="unpack an already downloaded model.tar.gz instead")
    fetch.add_argument("--overwrite", action="store_true", help="replace an existing bundle folder")
    fetch.set_defaults(func=cmd_fetch)


def _error(message: str, code: int = EXIT_USAGE) -> int:
    print(f"trainer sagemaker: error: {message}", file=sys.stderr)
    return code


def _build_spec(args: argparse.Namespace, name: str):
    from trainer.sagemaker import spec as S

    region = args.region
    if not region:
        if not args.dry_run:
            raise S.SpecError("--region: no region given and none in $AWS_REGION/$AWS_DEFAULT_REGION")
        region = "us-east-1"
    role = args.role
    if not role:
        if not args.dry_run:
            raise S.SpecError("--role: give the SageMaker execution role ARN (or set $SAGEMAKER_ROLE_ARN)")
        role = S.PLACEHOLDER_ROLE
        print(f"# no --role given: the request shows the placeholder {role}", file=sys.stderr)
    channels = S.channels_from_args(args.data, args.train, args.valid, args.test)
    if not channels:
        raise S.SpecError("--data: give --data s3://bucket/prefix (train/ valid/ test/ below it) or --train and --valid")
    output, checkpoints, source = S.default_locations(channels, args.output, args.checkpoints, name)
    S.check_instance_type(args.instance_type)
    image = args.image_uri or S.training_image(region, args.instance_type, args.tf_version or S.DEFAULT_TF_VERSION)
    if args.instance_count > 1:
        print("# warning: --instance-count > 1 trains with MultiWorkerMirroredStrategy, which Keras 3.15 / "
              "TensorFlow 2.21 currently fail on in model.fit (see README, Training in the cloud); "
              "prefer one larger or multi-GPU instance", file=sys.stderr)
    return S.JobSpec(
        role_arn=role, region=region, channels=channels, output_s3=output, checkpoint_s3=checkpoints,
        source_s3=source, image_uri=image, arch=args.arch, instance_type=args.instance_type,
        instance_count=args.instance_count, volume_size_gb=args.volume_size, spot=args.spot,
        max_run_s=args.max_run, max_wait_s=args.max_wait, base_job_name=f"trailcam-{args.arch}",
        hyperparameters=S.parse_hp_args(args.hp),
    ).validate()


def _print_request(operation: str, request: dict[str, Any]) -> int:
    try:
        from trainer.sagemaker.validate import RequestInvalid, validate_request
    except ImportError:  # pragma: no cover - botocore ships with the sagemaker and dev extras
        print("# botocore not installed: request not validated", file=sys.stderr)
    else:
        try:
            validate_request(operation, request)
        except RequestInvalid as exc:
            return _error(str(exc))
        except ImportError:
            print("# botocore not installed: request not validated", file=sys.stderr)
    print(f"# {operation} request (dry run: nothing was sent; validated against botocore's SageMaker model)",
          file=sys.stderr)
    print(json.dumps(request, indent=2, sort_keys=False))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from trainer.sagemaker.spec import SpecError, job_name

    name = args.job_name or job_name(f"trailcam-{args.arch}", 63)
    try:
        spec = _build_spec(args, name)
    except SpecError as exc:
        return _error(str(exc))
    if args.dry_run:
        from trainer.sagemaker.requests import training_job_request

        return _print_request("CreateTrainingJob", training_job_request(spec, name))
    from trainer.sagemaker import sdk

    try:
        started = sdk.submit_training(spec, wait=args.wait)
    except sdk.SdkMissing as exc:
        return _error(str(exc))
    except Exception as exc:  # noqa: BLE001 - AWS/SDK errors: one clear line
        return _error(f"{type(exc).__name__}: {exc}", 1)
    print(f"training job {started} started; watch it with: trainer sagemaker status {started}")
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from trainer.sagemaker.spec import SpecError, job_name
    from trainer.search_space import SearchSpaceError, load_search_space

    name = args.job_name or job_name(f"trailcam-{args.arch}", 32)
    try:
        if len(name) > 32:
            raise SpecError(f"--job-name: tuning job names are at most 32 characters, got {len(name)}")
        if not 1 <= args.max_parallel_jobs <= args.max_jobs:
            raise SpecError(f"--max-parallel-jobs: must be 1..--max-jobs ({args.max_jobs}), got {args.max_parallel_jobs}")
        space = load_search_space(args.arch, args.search_space)
        spec = _build_spec(args, name)
    except (SpecError, SearchSpaceError) as exc:
        return _error(str(exc))
    if args.dry_run:
        from trainer.sagemaker.requests import tuning_job_request

        request = tuning_job_request(spec, name, space, args.max_jobs, args.max_parallel_jobs, args.strategy,
                                     args.early_stopping, args.max_tuning_runtime)
        return _print_request("CreateHyperParameterTuningJob", request)
    from trainer.sagemaker import sdk

    try:
        sdk.submit_tuning(spec, name, space, args.max_jobs, args.max_parallel_jobs, args.strategy,
                          args.early_stopping, args.max_tuning_runtime, wait=args.wait)
    except sdk.SdkMissing as exc:
        return _error(str(exc))
    except Exception as exc:  # noqa: BLE001
        return _error(f"{type(exc).__name__}: {exc}", 1)
    print(f"tuning job {name} started; watch it with: trainer sagemaker status {name}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    if not args.region:
        return _error("--region: no region given and none in $AWS_REGION/$AWS_DEFAULT_REGION")
    from trainer.sagemaker import sdk

    try:
        info = sdk.describe(args.name, args.region)
    except Exception as exc:  # noqa: BLE001
        return _error(f"{type(exc).__name__}: {exc}", 1)
    print(json.dumps(info, indent=2, default=str))
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    import tempfile

    from trainer.sagemaker.artifacts import ArtifactError, unpack_bundle

    if args.from_file is None and not args.name:
        return _error("fetch: give a job name or --from-file model.tar.gz")
    if args.from_file is not None and not args.from_file.is_file():
        return _error(f"--from-file: {args.from_file} not found")
    if args.out.exists() and any(args.out.iterdir()) and not args.overwrite:
        return _error(f"--out: {args.out} exists and is not empty; pass --overwrite to replace it")
    with tempfile.TemporaryDirectory(prefix="trailcam-fetch-") as tmp:
        tar_path = args.from_file
        if tar_path is None:
            if not args.region:
                return _error("--region: no region given and none in $AWS_REGION/$AWS_DEFAULT_REGION")
            from trainer.sagemaker import sdk

            try:
                tar_path = sdk.download_model(args.name, args.region, Path(tmp) / "model.tar.gz")
            except Exception as exc:  # noqa: BLE001
                return _error(f"{type(exc).__name__}: {exc}", 1)
        try:
            bundle = unpack_bundle(tar_path, args.out, overwrite=args.overwrite)
        except (ArtifactError, OSError, ValueError) as exc:
            return _error(str(exc), 1)
    print(f"bundle ready for the edge: {bundle}")
    return 0
