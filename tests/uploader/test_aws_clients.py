"""uploader.aws_clients: one client policy for both AWS-facing targets, one botocore -> tree
conversion, and the bounded retry for waits botocore does not cover."""

from __future__ import annotations

import dataclasses

import boto3
import botocore.exceptions
import pytest

from shared.config import AwsConfig
from shared.errors import AwsError, AwsTimeout, AwsTransient, BadInput, FedimgError, TransientError
from uploader import aws_clients
from uploader.aws_clients import ClientFactory, aws_error


def client_error(code: str, status: int = 400) -> botocore.exceptions.ClientError:
    return botocore.exceptions.ClientError(
        {"Error": {"Code": code, "Message": code},
         "ResponseMetadata": {"HTTPStatusCode": status}}, "Op")


@pytest.mark.parametrize("exc, cls, expected", [
    (client_error("RequestLimitExceeded", 503), AwsTransient, ("aws", True)),
    (client_error("InternalError", 500), AwsTransient, ("aws", True)),
    (client_error("SlowDown", 400), AwsTransient, ("aws", True)),
    (client_error("UnauthorizedOperation", 403), AwsError, ("aws", False)),
    (client_error("InvalidAMIID.NotFound"), AwsError, ("aws", False)),
    (botocore.exceptions.ReadTimeoutError(endpoint_url="http://x"), AwsTimeout,
     ("timeout", True)),
    (botocore.exceptions.ConnectTimeoutError(endpoint_url="http://x"), AwsTimeout,
     ("timeout", True)),
    (botocore.exceptions.EndpointConnectionError(endpoint_url="http://x"), AwsTransient,
     ("aws", True)),
    (botocore.exceptions.NoCredentialsError(), AwsError, ("aws", False)),
    (botocore.exceptions.WaiterError("ImageAvailable", "Max attempts exceeded", {}), AwsTimeout,
     ("timeout", True)),
    (botocore.exceptions.WaiterError("ImageAvailable", "Waiter encountered a terminal failure "
                                     "state", {}), AwsError, ("aws", False)),
    (botocore.exceptions.WaiterError("ImageAvailable", "Waiter encountered a terminal failure "
                                     "state", {"Error": {"Code": "Throttling"}}), AwsTransient,
     ("aws", True)),
    (ValueError("bug"), FedimgError, ("internal", False)),
])
def test_aws_error_turns_botocore_failures_into_tree_classes(exc, cls, expected):
    error = aws_error(exc)
    assert type(error) is cls
    assert (error.kind, error.retryable) == expected
    assert error.__cause__ is exc
    assert str(error).startswith(f"{type(exc).__name__}: ")


@pytest.mark.parametrize("exc", [BadInput("no"), TransientError("later")])
def test_aws_error_passes_tree_errors_through(exc):
    assert aws_error(exc) is exc


def test_retry_on_codes_retries_the_not_yet_window_then_gives_up():
    calls, sleeps = [], []

    def flaky():
        calls.append(1)
        if len(calls) < 4:
            raise client_error("ResourceNotFoundException", 404)
        return "ok"

    assert aws_clients.retry_on_codes(flaky, codes={"ResourceNotFoundException"}, deadline=60,
                                      sleep=sleeps.append) == "ok"
    assert len(calls) == 4 and sleeps == [0.5, 1.0, 2.0]

    def never():
        raise client_error("ResourceNotFoundException", 404)

    with pytest.raises(botocore.exceptions.ClientError):
        aws_clients.retry_on_codes(never, codes={"ResourceNotFoundException"}, deadline=0.0,
                                   sleep=sleeps.append)

    def other():
        calls.append(1)
        raise client_error("ValidationException")

    before = len(calls)
    with pytest.raises(botocore.exceptions.ClientError):
        aws_clients.retry_on_codes(other, codes={"ResourceNotFoundException"}, deadline=60,
                                   sleep=sleeps.append)
    assert len(calls) == before + 1


def test_retry_on_codes_caps_the_wait_at_max_delay():
    sleeps = []

    def flaky():
        if len(sleeps) < 6:
            raise client_error("SlowDown", 503)
        return "ok"

    assert aws_clients.retry_on_codes(flaky, codes={"SlowDown"}, deadline=3600,
                                      max_delay=4.0, sleep=sleeps.append) == "ok"
    assert sleeps == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_every_client_follows_the_aws_config(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    aws = dataclasses.replace(AwsConfig(), max_attempts=3, connect_timeout=7, read_timeout=11,
                              upload_workers=30)
    factory = ClientFactory(boto3.Session(aws_access_key_id="x", aws_secret_access_key="y"), aws)
    s3, ec2, ebs = factory.s3(), factory.ec2("us-east-1"), factory.ebs("us-east-1")
    for client in (s3, ec2, ebs):
        cfg = client.meta.config
        # botocore's max_attempts counts the retries after the first call
        assert cfg.retries == {"mode": "standard", "total_max_attempts": 3 + 1}
        assert (cfg.connect_timeout, cfg.read_timeout) == (7, 11)
    assert s3.meta.region_name == "eu-west-1"  # S3 uses boto3's default region
    assert ebs.meta.config.max_pool_connections == 32  # one per upload worker, and spare
    assert factory.s3() is s3 and factory.ec2("us-east-1") is ec2
    assert factory.ec2("eu-west-1") is not ec2


def test_a_region_past_its_deadline_sends_nothing_more(monkeypatch):
    # nothing listens on port 9: if the request were sent, this would be a connection error
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    factory = ClientFactory(boto3.Session(aws_access_key_id="x", aws_secret_access_key="y"),
                            dataclasses.replace(AwsConfig(), max_attempts=0))
    factory.limit("eu-west-1", aws_clients.Deadline(0, "eu-west-1 (aws.region_deadline)"))
    with pytest.raises(AwsTimeout, match=r"eu-west-1 \(aws.region_deadline\): not done within 0 s"):
        factory.ec2("eu-west-1").describe_images(Owners=["self"])
    # another region of the same factory is not limited: its request goes out (and fails)
    with pytest.raises(botocore.exceptions.EndpointConnectionError):
        factory.client("ec2", "us-east-1").describe_images(Owners=["self"])
    assert factory.deadline("us-east-1") is None
    assert not aws_clients.Deadline(60, "x").passed()
