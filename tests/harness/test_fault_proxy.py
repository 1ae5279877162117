"""The fault proxy in front of moto: it forwards, plays a dead region, and throttles EC2."""

from __future__ import annotations

import threading

import boto3
import botocore.config
import botocore.exceptions
import pytest

from standins.fault_proxy import FaultProxy
from standins.moto import MotoAWS

pytestmark = pytest.mark.slow


def client(service: str, region: str, **config):
    # built the way the uploader builds its clients: from the environment, with a Config
    return boto3.Session().client(service, region_name=region,
                                  config=botocore.config.Config(**config))


def test_forwards_and_records_region_service_and_action(aws: MotoAWS,
                                                        fault_proxy: FaultProxy) -> None:
    ec2 = client("ec2", "eu-west-1")
    assert ec2.meta.endpoint_url == fault_proxy.url
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    # what went through the proxy is really in moto, in that region
    direct = aws.direct_client("ec2", "eu-west-1")
    assert vpc in [v["VpcId"] for v in direct.describe_vpcs()["Vpcs"]]
    assert fault_proxy.count("forwarded", region="eu-west-1", service="ec2",
                             action="CreateVpc") == 1
    assert fault_proxy.first_seen("us-east-2") is None


def test_black_hole_accepts_and_never_answers_one_region_only(aws: MotoAWS,
                                                              fault_proxy: FaultProxy) -> None:
    fault_proxy.blackhole("ap-south-1")
    dead = client("ec2", "ap-south-1", connect_timeout=2, read_timeout=1,
                  retries={"mode": "standard", "total_max_attempts": 2})
    with pytest.raises(botocore.exceptions.ReadTimeoutError):
        dead.describe_images(Owners=["self"])
    assert fault_proxy.count("blackholed", region="ap-south-1") == 2  # both attempts held
    assert client("ec2", "us-east-1").describe_images(Owners=["self"])["Images"] == []

    # released: a request held at that moment is hung up on, later ones are answered
    result: list = []
    fault_proxy.blackhole("ap-south-1")
    slow = client("ec2", "ap-south-1", read_timeout=30,
                  retries={"mode": "standard", "total_max_attempts": 3})
    worker = threading.Thread(target=lambda: result.append(slow.describe_regions()))
    worker.start()
    while fault_proxy.count("blackholed", region="ap-south-1") < 3:
        worker.join(0.05)
    fault_proxy.release("ap-south-1")
    worker.join(30)
    assert not worker.is_alive() and result and result[0]["Regions"]


def test_throttles_the_given_share_of_ec2_requests_with_ec2s_own_errors(
        aws: MotoAWS, fault_proxy: FaultProxy) -> None:
    fault_proxy.throttle(0.3, service="ec2", seed=1)
    ec2 = client("ec2", "us-east-1", retries={"mode": "standard", "total_max_attempts": 1})
    codes = []
    for _ in range(100):
        try:
            ec2.describe_images(Owners=["self"])
            codes.append(None)
        except botocore.exceptions.ClientError as e:
            codes.append((e.response["Error"]["Code"],
                          e.response["ResponseMetadata"]["HTTPStatusCode"]))
    throttled = [c for c in codes if c]
    assert fault_proxy.count("throttled") == len(throttled)
    assert 15 <= len(throttled) <= 45  # a seeded 30 %: the stream is fixed, the bound is loose
    assert set(throttled) == {("RequestLimitExceeded", 503), ("ThrottlingException", 400)}
    # only EC2 is throttled
    ebs = client("ebs", "us-east-1", retries={"mode": "standard", "total_max_attempts": 1})
    for _ in range(10):
        ebs.start_snapshot(VolumeSize=1)
    assert fault_proxy.count("throttled", service="ebs") == 0


def test_refuses_an_upstream_that_is_not_plain_http() -> None:
    with pytest.raises(Exception, match="upstream must be http"):
        FaultProxy("https://example.org")
