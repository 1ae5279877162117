"""The moto server fixtures: boto3 reaches it through AWS_ENDPOINT_URL, state resets per test."""

from __future__ import annotations

import base64
import hashlib
import os
import pathlib

import pytest

from standins.moto import MotoAWS, MotoServer, boto_config

BLOCK = 524288  # EBS direct API block size


@pytest.mark.slow
def test_environment_points_boto3_at_moto(aws: MotoAWS) -> None:
    import boto3

    assert os.environ["AWS_ENDPOINT_URL"] == aws.endpoint_url
    assert "AWS_PROFILE" not in os.environ
    # a plain client, built the way production code builds it, talks to moto
    ec2 = boto3.client("ec2", region_name="eu-west-1")
    assert ec2.meta.endpoint_url == aws.endpoint_url
    assert aws.client("ec2").meta.endpoint_url == aws.endpoint_url


@pytest.mark.slow
def test_describe_regions(aws: MotoAWS) -> None:
    regions = aws.client("ec2").describe_regions(AllRegions=True)["Regions"]
    names = {r["RegionName"] for r in regions}
    assert {"us-east-1", "us-east-2", "eu-west-1"} <= names


@pytest.mark.slow
def test_ebs_direct_api_round_trip(aws: MotoAWS) -> None:
    ebs = aws.client("ebs")
    snap = ebs.start_snapshot(VolumeSize=1, Description="fedimg harness", Timeout=60)
    snapshot_id = snap["SnapshotId"]
    data = (b"fedimg" * (BLOCK // 6 + 1))[:BLOCK]
    digest = hashlib.sha256(data).digest()
    ebs.put_snapshot_block(
        SnapshotId=snapshot_id,
        BlockIndex=0,
        BlockData=data,
        DataLength=BLOCK,
        Checksum=base64.b64encode(digest).decode(),
        ChecksumAlgorithm="SHA256",
    )
    done = ebs.complete_snapshot(
        SnapshotId=snapshot_id,
        ChangedBlocksCount=1,
        Checksum=base64.b64encode(hashlib.sha256(digest).digest()).decode(),
        ChecksumAlgorithm="SHA256",
        ChecksumAggregationMethod="LINEAR",
    )
    assert done["Status"] == "completed"
    blocks = ebs.list_snapshot_blocks(SnapshotId=snapshot_id)["Blocks"]
    assert [b["BlockIndex"] for b in blocks] == [0]
    got = ebs.get_snapshot_block(
        SnapshotId=snapshot_id, BlockIndex=0, BlockToken=blocks[0]["BlockToken"]
    )
    assert got["BlockData"].read() == data


@pytest.mark.slow
def test_s3_upload(aws: MotoAWS, tmp_path: pathlib.Path) -> None:
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="fedimg-harness")
    src = tmp_path / "disk.raw"
    src.write_bytes(b"\0" * 1024 + b"fedimg")
    s3.upload_file(str(src), "fedimg-harness", "images/disk.raw")
    body = s3.get_object(Bucket="fedimg-harness", Key="images/disk.raw")["Body"].read()
    assert body == src.read_bytes()


@pytest.fixture
def leftover(moto_server: MotoServer) -> list[str]:
    """State an earlier test could have left on the session's moto server: a bucket, a key pair.

    Made straight on the server (explicit endpoint), before the ``aws`` fixture runs; returns
    the bucket names the server holds afterwards.
    """
    import boto3

    session = boto3.session.Session(aws_access_key_id="testing",
                                    aws_secret_access_key="testing")
    kwargs = {"region_name": "us-east-1", "endpoint_url": moto_server.endpoint_url,
              "config": boto_config()}
    session.client("s3", **kwargs).create_bucket(Bucket="fedimg-leftover")
    session.client("ec2", **kwargs).create_key_pair(KeyName="fedimg-leftover")
    return [b["Name"] for b in session.client("s3", **kwargs).list_buckets()["Buckets"]]


@pytest.mark.slow
def test_each_test_starts_on_an_empty_account(leftover: list[str], aws: MotoAWS) -> None:
    assert "fedimg-leftover" in leftover  # the server really held state before ``aws`` ran
    assert aws.client("s3").list_buckets()["Buckets"] == []
    assert aws.client("ec2").describe_key_pairs()["KeyPairs"] == []


@pytest.mark.slow
def test_reset_mid_test(aws: MotoAWS) -> None:
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="fedimg-gone")
    aws.reset()
    assert s3.list_buckets()["Buckets"] == []
