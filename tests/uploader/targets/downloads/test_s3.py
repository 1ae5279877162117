"""The downloads target against an S3 destination (moto server over HTTP), with messages on the
real RabbitMQ."""

from __future__ import annotations

import hashlib
import pathlib
import subprocess

import boto3
import pytest

from shared.config import AwsConfig
from standins.amqp import publish_message
from uploader.aws_clients import ClientFactory
from uploader.model import Clients
from uploader.targets.downloads import publish_downloads
from uploader.targets.downloads.checksum import Entry, parse
from uploader.targets.downloads.destinations import S3Destination

from .conftest import BASE_URL, NAME, Recorder, config_for

pytestmark = pytest.mark.slow

BUCKET = "fedimg-downloads"
PREFIX = "pub/alt/cloud"
PUBLISHED = "fedimg.image.published.v1.downloads"


@pytest.fixture
def bucket(aws):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    return s3


def _objects(s3) -> dict[str, dict]:
    listing = s3.list_objects_v2(Bucket=BUCKET, Prefix=PREFIX + "/")
    return {o["Key"]: o for o in listing.get("Contents", [])}


def _run(case, emit, **downloads):
    return publish_downloads(case.image, config=config_for(f"s3://{BUCKET}/{PREFIX}", **downloads),
                             clients=Clients(aws=boto3.Session()), emit=emit)


def test_s3_objects_checksum_and_messages_on_rabbitmq(case, bucket, amqp_config, bus, tmp_path):
    outcome = _run(case, publish_message)

    assert outcome.ok and outcome.published == ["qcow2", "raw.tar.xz"]
    base = f"{PREFIX}/Rawhide/nightly"
    objects = _objects(bucket)
    assert sorted(objects) == [f"{base}/CHECKSUM", f"{base}/{NAME}.qcow2",
                               f"{base}/{NAME}.raw.tar.xz"]

    messages = bus.wait_for(f"{PUBLISHED}.*", count=2)
    by_format = {m.body["format"]: m for m in messages}
    assert sorted(by_format) == ["qcow2", "raw.tar.xz"]
    download = tmp_path / "mirror"
    download.mkdir()
    for key in objects:
        bucket.download_file(BUCKET, key, str(download / key.rsplit("/", 1)[1]))
    for fmt, msg in by_format.items():
        filename = f"{NAME}.{fmt}"
        key = f"{base}/{filename}"
        head = bucket.head_object(Bucket=BUCKET, Key=key)
        data = (download / filename).read_bytes()
        assert objects[key]["Size"] == head["ContentLength"] == msg.body["size"] == len(data)
        assert hashlib.sha256(data).hexdigest() == msg.body["sha256"] == \
            head["Metadata"]["sha256"]
        assert msg.body["url"] == f"{BASE_URL}/Rawhide/nightly/{filename}"
        assert msg.topic == f"{PUBLISHED}.{fmt.replace('.', '_')}.nightly.Cloud_Base.Rawhide.x86_64"
    assert sorted(parse((download / "CHECKSUM").read_text())) == [
        f"{NAME}.qcow2", f"{NAME}.raw.tar.xz"]
    check = subprocess.run(["sha256sum", "--strict", "-c", "CHECKSUM"], cwd=download,
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    # The tar.xz is the real thing after the round trip through S3 too.
    listing = subprocess.run(["tar", "-tvf", str(download / f"{NAME}.raw.tar.xz")],
                             capture_output=True, text=True, check=True).stdout
    assert f"{NAME}.raw" in listing


def test_s3_second_run_changes_nothing_and_emits_nothing(case, bucket):
    first = Recorder()
    assert _run(case, first).ok and len(first.messages) == 2
    before = {k: (o["ETag"], o["LastModified"]) for k, o in _objects(bucket).items()}

    again = Recorder()
    outcome = _run(case, again)

    assert outcome.ok and again.messages == []
    assert {k: (o["ETag"], o["LastModified"]) for k, o in _objects(bucket).items()} == before


def test_s3_object_without_matching_checksum_metadata_is_uploaded_again(case, bucket):
    first = Recorder()
    _run(case, first)
    key = f"{PREFIX}/Rawhide/nightly/{NAME}.raw.tar.xz"
    bucket.put_object(Bucket=BUCKET, Key=key, Body=b"truncated")  # same key, wrong content

    again = Recorder()
    assert _run(case, again).ok
    assert [m.body["format"] for m in again.messages] == ["raw.tar.xz"]
    assert bucket.head_object(Bucket=BUCKET, Key=key)["ContentLength"] == \
        again.messages[0].body["size"]


def test_s3_checksum_merge_survives_a_concurrent_writer(bucket, aws):
    """Another uploader replaces the CHECKSUM between our read and our write: our conditional
    write is refused and we merge again, keeping both sets of entries."""
    dest = S3Destination(ClientFactory(boto3.Session(), AwsConfig()).s3(), BUCKET, PREFIX)
    rel = "41/candidate"
    for name in ("ours.qcow2", "theirs.qcow2"):
        bucket.put_object(Bucket=BUCKET, Key=f"{PREFIX}/{rel}/{name}", Body=b"x")
    bucket.put_object(Bucket=BUCKET, Key=f"{PREFIX}/{rel}/CHECKSUM", Body=b"")
    interfered = []

    def sneak_in(params, **_):
        if not interfered and params.get("Key", "").endswith("CHECKSUM"):
            interfered.append(True)
            bucket.put_object(Bucket=BUCKET, Key=f"{PREFIX}/{rel}/CHECKSUM",
                              Body=f"SHA256 (theirs.qcow2) = {'b' * 64}\n".encode())

    dest.client.meta.events.register("before-parameter-build.s3.PutObject", sneak_in)
    dest.update_checksum(rel, [Entry("ours.qcow2", "a" * 64, 1)])

    assert interfered
    body = bucket.get_object(Bucket=BUCKET, Key=f"{PREFIX}/{rel}/CHECKSUM")["Body"].read()
    assert sorted(parse(body.decode())) == ["ours.qcow2", "theirs.qcow2"]


def test_missing_bucket_fails_both_formats_retryably(case, aws, tmp_path: pathlib.Path):
    emit = Recorder()
    outcome = _run(case, emit)  # the bucket was never created

    assert outcome.failed == ["qcow2", "raw.tar.xz"]
    bodies = emit.bodies("fedimg.image.failed.v1")
    assert [(b["destination"], b["error_kind"], b["retryable"]) for b in bodies] == [
        ("qcow2", "destination", True), ("raw.tar.xz", "destination", True)]
    assert "NoSuchBucket" in bodies[0]["error"]
