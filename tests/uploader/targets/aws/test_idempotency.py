"""Restarts, redeliveries and crashes: the next run finds what the last one made and finishes,
with one AMI per image and region and nothing public before it is available."""

import os
import pathlib
import signal
import subprocess
import sys

import pytest

from tests.uploader.targets.aws.conftest import make_config, make_image
from tests.uploader.targets.aws.test_publish import NAME, amis, is_public, uploaded_snapshots
from uploader.targets.aws import ami, blocks, naming, publish_aws, snapshot
from uploader.targets.aws.clients import ClientFactory

pytestmark = pytest.mark.slow
REPO_ROOT = pathlib.Path(__file__).resolve().parents[4]
REGIONS = ["us-east-1", "eu-west-1", "ap-northeast-1"]


def test_crash_after_register_finishes_without_a_second_ami(aws, run, raw_image):
    cfg = make_config(regions=REGIONS)
    image = make_image(raw_image.path)
    factory = ClientFactory(run.session, cfg.aws)
    # the lower-level steps a run had done when it died: snapshot + register, nothing else
    base = ami.ensure_base_image(factory, "us-east-1", image.source, NAME, lambda: snapshot
                                 .ensure_snapshot(factory, "us-east-1", image.raw_path, NAME,
                                                  naming.image_tags(image.source, NAME), None))
    assert is_public(aws, "us-east-1", base) == (False, False)
    before = len(run.wire.sent)
    outcome = publish_aws(image, config=cfg, clients=run.clients, emit=run.messages.append)
    assert outcome.ok
    rerun = [s.action for s in run.wire.sent[before:]]
    assert "RegisterImage" not in rerun and "StartSnapshot" not in rerun
    (found,) = amis(aws, "us-east-1")
    assert found["ImageId"] == base["ImageId"]
    for region in REGIONS:
        assert len(amis(aws, region)) == 1
        assert is_public(aws, region, amis(aws, region)[0]) == (True, True)


def test_interrupted_upload_is_deleted_and_redone(aws, run, raw_image):
    image = make_image(raw_image.path)
    cfg = make_config(regions=["us-east-1"])
    tags = naming.image_tags(image.source, NAME) + [
        {"Key": naming.TAG_UPLOAD, "Value": naming.UPLOAD_STARTED}]
    ebs = aws.client("ebs")
    dead = ebs.start_snapshot(VolumeSize=1, Tags=tags)["SnapshotId"]
    block = b"\1" * 524288
    ebs.put_snapshot_block(SnapshotId=dead, BlockIndex=0, BlockData=block, DataLength=524288,
                           Checksum=blocks.b64(blocks.block_digest(block)),
                           ChecksumAlgorithm="SHA256")
    outcome = publish_aws(image, config=cfg, clients=run.clients, emit=run.messages.append)
    assert outcome.ok
    (delete,) = run.wire.calls("DeleteSnapshot")
    assert delete.params["SnapshotId"] == dead
    (snap,) = uploaded_snapshots(aws)
    assert snap["SnapshotId"] != dead
    assert {t["Key"]: t["Value"] for t in snap["Tags"]}[naming.TAG_UPLOAD] == "complete"
    (start,) = run.wire.calls("StartSnapshot")  # a fresh token, not the dead snapshot's
    assert start.params["ClientToken"] == naming.snapshot_token(NAME, "ab" * 32, [dead])
    (reg,) = run.wire.calls("RegisterImage")
    assert reg.params["BlockDeviceMapping.1.Ebs.SnapshotId"] == snap["SnapshotId"]


def test_disabled_copy_is_left_alone_and_its_region_fails(aws, run, raw_image):
    image = make_image(raw_image.path)
    cfg = make_config(regions=["us-east-1", "eu-west-1"])
    publish_aws(image, config=cfg, clients=run.clients, emit=run.messages.append)
    (old,) = amis(aws, "eu-west-1")
    aws.client("ec2", "eu-west-1").disable_image(ImageId=old["ImageId"])
    again = []
    outcome = publish_aws(image, config=cfg, clients=run.clients, emit=again.append)
    assert outcome.failed == ["eu-west-1"] and outcome.published == ["us-east-1"]
    (failure,) = [m for m in again if m.body.get("destination") == "eu-west-1"]
    assert failure.body["retryable"] is False and "disabled" in failure.body["error"]
    (still,) = amis(aws, "eu-west-1")
    assert still["ImageId"] == old["ImageId"] and still["State"] == "disabled"


def test_failed_ami_is_deregistered_and_a_new_copy_gets_a_new_token(aws):
    # moto cannot make a copy fail, so this one fault is staged with botocore's Stubber
    from botocore.stub import Stubber

    ec2 = aws.client("ec2", "eu-west-1")
    stub = Stubber(ec2)
    stub.add_response("describe_images", {"Images": [
        {"ImageId": "ami-0dead", "State": "failed", "CreationDate": "2026-11-25T00:00:00Z"},
        {"ImageId": "ami-0live", "State": "pending", "CreationDate": "2026-11-25T00:01:00Z"},
    ]}, {"Owners": ["self"], "Filters": [{"Name": "name", "Values": [NAME]}]})
    stub.add_response("deregister_image", {}, {"ImageId": "ami-0dead"})
    dead = []
    with stub:
        found = ami.find_image(ec2, NAME, dead)
    stub.assert_no_pending_responses()
    assert found["ImageId"] == "ami-0live" and dead == ["ami-0dead"]
    assert naming.copy_token("ami-0base", "eu-west-1", dead) != naming.copy_token(
        "ami-0base", "eu-west-1")


def crash(raw, operation, n):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "tests.uploader.targets.aws.crash_run", str(raw), ",".join(REGIONS),
         operation, str(n)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
    return proc.stdout


@pytest.mark.parametrize("operation, n", [
    ("PutSnapshotBlock", 3),       # mid-upload
    ("CompleteSnapshot", 1),       # completed but not yet marked complete
    ("RegisterImage", 1),          # AMI registered, nothing public yet
    ("CopyImage", 1),              # one copy in flight
    ("ModifyImageAttribute", 1),   # one region public, others not
])
def test_sigkill_at_any_point_then_restart_finishes(aws, run, raw_image, operation, n):
    out = crash(raw_image.path, operation, n)
    assert "FINISHED" not in out
    if operation == "RegisterImage":  # region work not started: nothing may be public yet
        for region in REGIONS:
            for found in amis(aws, region):
                assert is_public(aws, region, found) == (False, False)
    outcome = publish_aws(make_image(raw_image.path), config=make_config(regions=REGIONS),
                          clients=run.clients, emit=run.messages.append)
    assert outcome.ok, run.messages
    for region in REGIONS:
        (found,) = amis(aws, region)
        assert found["State"] == "available"
        assert is_public(aws, region, found) == (True, True)
    assert len(uploaded_snapshots(aws)) == 1
    assert run.messages[-1].body["regions"] == {r: amis(aws, r)[0]["ImageId"] for r in REGIONS}
