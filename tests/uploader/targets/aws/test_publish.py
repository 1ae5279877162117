"""publish_aws against a moto server over HTTP: regions, permissions, messages, request contents.

moto keeps only Name/Description of register_image and ignores ClientTokens, so every contract
moto cannot hold is asserted on the requests botocore actually sent (wire.py beside this file).
"""

import base64
import datetime
import hashlib

import pytest

from shared.errors import TargetFailed
from shared.messages import AwsImagePublishedV1, AwsRegionPublishedV1, UploadFailedV1
from tests.uploader.targets.aws.conftest import NIGHTLY, make_config, make_image, non_zero_blocks
from uploader.aws_clients import ClientFactory
from uploader.targets.aws import blocks, naming, publish_aws
from uploader.targets.aws.publish import resolve_regions

pytestmark = pytest.mark.slow
NAME = f"{NIGHTLY}-hvm-gp3"


def amis(aws, region, name=NAME):
    ec2 = aws.direct_client("ec2", region)
    return ec2.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": [name]}])[
        "Images"]


def is_public(aws, region, image):
    ec2 = aws.direct_client("ec2", region)
    perms = ec2.describe_image_attribute(ImageId=image["ImageId"], Attribute="launchPermission")
    snap = image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    vol = ec2.describe_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission")
    return ({"Group": "all"} in perms["LaunchPermissions"],
            {"Group": "all"} in vol["CreateVolumePermissions"])


def uploaded_snapshots(aws, region="us-east-1"):
    ec2 = aws.direct_client("ec2", region)
    snaps = ec2.describe_snapshots(OwnerIds=["self"], Filters=[
        {"Name": f"tag:{naming.TAG_AMI_NAME}", "Values": [NAME]}])["Snapshots"]
    return [s for s in snaps if any(t["Key"] == naming.TAG_UPLOAD for t in s.get("Tags", []))]


def test_public_ami_in_every_region_with_tags_and_messages(aws, run, raw_image):
    regions = ["us-east-1", "eu-west-1", "ap-southeast-2"]
    image = make_image(raw_image.path)
    outcome = publish_aws(image, config=make_config(regions=regions), clients=run.clients,
                          emit=run.messages.append)
    assert outcome.ok and sorted(outcome.published) == sorted(regions)

    ami_ids = {}
    for region in regions:
        found = amis(aws, region)
        assert len(found) == 1, region
        ami = found[0]
        assert ami["State"] == "available"
        assert is_public(aws, region, ami) == (True, True), region
        tags = {t["Key"]: t["Value"] for t in ami.get("Tags", [])}
        assert tags["fedimg:source"] == "koji-task:139876543"
        assert tags["fedimg:release"] == "Rawhide" and tags["fedimg:channel"] == "nightly"
        ami_ids[region] = ami["ImageId"]

    # messages: one per region (valid against the schema), then one summary with the map
    region_msgs = [m for m in run.messages if isinstance(m, AwsRegionPublishedV1)]
    for m in run.messages:
        m.validate()
    assert {m.body["region"]: m.body["ami"] for m in region_msgs} == ami_ids
    assert all(m.body["public"] and m.body["ami_name"] == NAME for m in region_msgs)
    assert region_msgs[0].topic.startswith("fedimg.image.published.v1.aws.")
    summary = run.messages[-1]
    assert isinstance(summary, AwsImagePublishedV1)
    assert summary.body["regions"] == ami_ids and summary.body["failed_regions"] == []
    assert len(run.messages) == len(regions) + 1

    # the register_image request as sent (moto drops all of this)
    (reg,) = run.wire.calls("RegisterImage")
    (snap,) = uploaded_snapshots(aws)
    p = reg.params
    assert p["Name"] == NAME and reg.region == "us-east-1"
    assert p["Architecture"] == "x86_64" and p["VirtualizationType"] == "hvm"
    assert p["RootDeviceName"] == "/dev/sda1"
    assert p["BlockDeviceMapping.1.DeviceName"] == "/dev/sda1"
    assert p["BlockDeviceMapping.1.Ebs.SnapshotId"] == snap["SnapshotId"]
    assert p["BlockDeviceMapping.1.Ebs.VolumeType"] == "gp3"
    assert p["BlockDeviceMapping.1.Ebs.DeleteOnTermination"] == "true"
    assert p["EnaSupport"] == "true" and p["SriovNetSupport"] == "simple"
    assert p["BootMode"] == "uefi-preferred" and p["ImdsSupport"] == "v2.0"
    assert p["TagSpecification.1.ResourceType"] == "image"

    # copies: one per non-base region, in that region, with the derived ClientToken
    copies = run.wire.calls("CopyImage")
    assert sorted(c.region for c in copies) == ["ap-southeast-2", "eu-west-1"]
    for c in copies:
        assert c.params["SourceImageId"] == ami_ids["us-east-1"]
        assert c.params["SourceRegion"] == "us-east-1"
        assert c.params["ClientToken"] == naming.copy_token(ami_ids["us-east-1"], c.region)
        assert len(c.params["ClientToken"]) <= 64 and c.params["CopyImageTags"] == "true"

    # nightly: deprecation requested (moto lacks the API) at creation + 14 days
    deps = run.wire.calls("EnableImageDeprecation")
    assert sorted(d.region for d in deps) == sorted(regions)
    for d in deps:
        ami = amis(aws, d.region)[0]
        created = datetime.datetime.fromisoformat(ami["CreationDate"].replace("Z", "+00:00"))
        at = datetime.datetime.fromisoformat(d.params["DeprecateAt"].replace("Z", "+00:00"))
        assert datetime.timedelta(days=14) - datetime.timedelta(minutes=1) <= at - created \
            <= datetime.timedelta(days=14)

    # permissions only granted to AMIs (and their snapshots) we saw available first
    perm_calls = run.wire.calls("ModifyImageAttribute")
    assert {c.params["ImageId"] for c in perm_calls} == set(ami_ids.values())
    assert all(c.params["LaunchPermission.Add.1.Group"] == "all" for c in perm_calls)


def test_snapshot_upload_sends_exactly_the_data_blocks_with_checksums(aws, run, raw_image):
    publish_aws(make_image(raw_image.path), config=make_config(regions=["us-east-1"]),
                clients=run.clients, emit=run.messages.append)
    expected = non_zero_blocks(raw_image.path)  # independent: read the whole file naively
    puts = run.wire.calls("PutSnapshotBlock")
    sent = {int(p.params["index"]): p for p in puts}
    assert sorted(sent) == sorted(expected) and len(puts) == len(expected)
    for index, put in sent.items():
        assert put.body_sha256 == expected[index]  # the body on the wire is the block
        assert put.params["x-amz-checksum"] == base64.b64encode(expected[index]).decode()
        assert put.params["x-amz-checksum-algorithm"] == "SHA256"
        assert put.params["x-amz-data-length"] == str(blocks.BLOCK_SIZE)
        assert put.body_len == blocks.BLOCK_SIZE
    (start,) = run.wire.calls("StartSnapshot")
    assert start.params["VolumeSize"] == "1"  # 64 MiB rounds up to 1 GiB
    assert start.params["ClientToken"] == naming.snapshot_token(NAME, "ab" * 32, [])
    assert start.params["Timeout"] == "60"
    (done,) = run.wire.calls("CompleteSnapshot")
    linear = hashlib.sha256(b"".join(d for _, d in sorted(expected.items()))).digest()
    assert done.params["x-amz-checksum"] == base64.b64encode(linear).decode()
    assert done.params["x-amz-checksum-aggregation-method"] == "LINEAR"
    assert done.params["x-amz-checksum-algorithm"] == "SHA256"
    assert done.params["x-amz-changedblockscount"] == str(len(expected))

    # and moto holds the bytes: rebuilding the disk from the snapshot gives the file back
    (snap,) = uploaded_snapshots(aws)
    ebs = aws.client("ebs")
    listed = ebs.list_snapshot_blocks(SnapshotId=snap["SnapshotId"])["Blocks"]
    assert sorted(b["BlockIndex"] for b in listed) == sorted(expected)
    with open(raw_image.path, "rb") as f:
        for b in listed[:5]:
            got = ebs.get_snapshot_block(SnapshotId=snap["SnapshotId"],
                                         BlockIndex=b["BlockIndex"], BlockToken=b["BlockToken"])
            f.seek(b["BlockIndex"] * blocks.BLOCK_SIZE)
            want = f.read(blocks.BLOCK_SIZE).ljust(blocks.BLOCK_SIZE, b"\0")
            assert got["BlockData"].read() == want


def test_aarch64_registers_arm64_uefi(aws, run, disk_image_factory):
    disk = disk_image_factory(size=16 * 2**20, data_mib=1)
    name = "Fedora-Cloud-Base-AmazonEC2-43-1.6.aarch64"
    image = make_image(disk.path, name=name, koji_task_id=None, koji_build_id=45)
    publish_aws(image, config=make_config(regions=["us-east-1"]), clients=run.clients,
                emit=run.messages.append)
    (reg,) = run.wire.calls("RegisterImage")
    assert reg.params["Architecture"] == "arm64" and reg.params["BootMode"] == "uefi"
    assert not run.wire.calls("EnableImageDeprecation")  # candidate, not nightly
    (ami,) = amis(aws, "us-east-1", f"{name}-hvm-gp3")
    tags = {t["Key"]: t["Value"] for t in ami["Tags"]}
    assert tags["fedimg:source"] == "koji-build:45" and tags["fedimg:arch"] == "aarch64"


def test_running_twice_changes_nothing(aws, run, raw_image):
    cfg = make_config(regions=["us-east-1", "eu-west-1", "eu-central-1"])
    image = make_image(raw_image.path)
    publish_aws(image, config=cfg, clients=run.clients, emit=run.messages.append)
    first = {r: amis(aws, r)[0]["ImageId"] for r in cfg.aws.regions}
    before = len(run.wire.sent)
    again = []
    outcome = publish_aws(image, config=cfg, clients=run.clients, emit=again.append)
    assert outcome.ok
    second_run = {s.action for s in run.wire.sent[before:]}
    assert not second_run & {"StartSnapshot", "PutSnapshotBlock", "RegisterImage", "CopyImage",
                             "DeleteSnapshot", "DeregisterImage"}
    for region in cfg.aws.regions:
        (ami,) = amis(aws, region)
        assert ami["ImageId"] == first[region]
    assert len(uploaded_snapshots(aws)) == 1
    # the messages are sent again (a redelivery may be the first time anyone hears of them)
    assert again[-1].body["regions"] == first


def test_failing_region_does_not_stop_the_others(aws, run, raw_image):
    # moto answers HTTP 500 for a region it does not know: a real server-side failure
    regions = ["us-east-1", "xx-nowhere-9", "eu-west-1"]
    outcome = publish_aws(make_image(raw_image.path), config=make_config(regions=regions),
                          clients=run.clients, emit=run.messages.append)
    assert outcome.failed == ["xx-nowhere-9"]
    assert sorted(outcome.published) == ["eu-west-1", "us-east-1"]
    (failure,) = [m for m in run.messages if isinstance(m, UploadFailedV1)]
    failure.validate()
    assert failure.body["target"] == "aws" and failure.body["destination"] == "xx-nowhere-9"
    assert failure.body["error_kind"] == "aws" and failure.body["retryable"] is True
    assert failure.topic.startswith("fedimg.image.failed.v1.aws.xx-nowhere-9.")
    summary = run.messages[-1]
    assert summary.body["failed_regions"] == ["xx-nowhere-9"]
    assert sorted(summary.body["regions"]) == ["eu-west-1", "us-east-1"]


def test_private_when_not_public(aws, run, raw_image):
    publish_aws(make_image(raw_image.path), config=make_config(public=False),
                clients=run.clients, emit=run.messages.append)
    assert not run.wire.calls("ModifyImageAttribute")
    assert not run.wire.calls("ModifySnapshotAttribute")
    for region in ("us-east-1", "eu-west-1"):
        assert is_public(aws, region, amis(aws, region)[0]) == (False, False)
    assert all(m.body["public"] is False for m in run.messages
               if isinstance(m, AwsRegionPublishedV1))


def test_unusable_image_fails_whole_target_before_touching_aws(aws, run, disk_image_factory):
    disk = disk_image_factory(size=8 * 2**20, data_mib=1)
    image = make_image(disk.path, name="Fedora-Cloud-Base-Generic-43-1.6.ppc64le")
    with pytest.raises(TargetFailed) as err:
        publish_aws(image, config=make_config(), clients=run.clients, emit=run.messages.append)
    assert err.value.kind == "source" and err.value.retryable is False
    failures = [m for m in run.messages if isinstance(m, UploadFailedV1)]
    assert sorted(m.body["destination"] for m in failures) == ["eu-west-1", "us-east-1"]
    assert run.messages[-1].body == {**run.messages[-1].body, "regions": {},
                                     "failed_regions": ["us-east-1", "eu-west-1"]}
    assert not run.wire.calls("StartSnapshot") and not run.wire.calls("RegisterImage")


def test_star_means_every_enabled_region(aws, run):
    cfg = make_config(regions=["*"])
    regions = resolve_regions(ClientFactory(run.session, cfg.aws), cfg.aws)
    answer = aws.client("ec2").describe_regions(AllRegions=True)["Regions"]
    enabled = sorted(r["RegionName"] for r in answer if r["OptInStatus"] != "not-opted-in")
    assert regions == enabled and "us-east-1" in regions
    assert len(regions) < len(answer)  # opt-in regions not enabled are left out
    (call,) = run.wire.calls("DescribeRegions")
    assert call.params.get("AllRegions") == "false"
