"""Issue 7's "done when": fedimg-upload --koji-task against the Koji stand-in and a moto server.

A real subprocess: the CLI asks the stand-in hub about the task, fetches and verifies the .raw.xz,
uploads the snapshot over the EBS direct API to the moto server, registers and copies the AMI,
and publishes the messages to real RabbitMQ. Running it again must change nothing in AWS.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.uploader.conftest import REPO_ROOT, config_dict, toml_text

pytestmark = pytest.mark.slow

NAME = "Fedora-Cloud-Base-Rawhide-20261125.n.0"
REGIONS = ["us-east-1", "us-east-2", "eu-west-1"]


def _upload(koji_hub, tmp_path, task_id):
    cfg = tmp_path / "fedimg.toml"
    raw = config_dict(koji_hub, tmp_path / "work",
                      uploader={"targets": ["aws"]},
                      aws={"base_region": "us-east-1", "regions": REGIONS, "public": True})
    cfg.write_text(toml_text(raw))
    # AWS_ENDPOINT_URL and FEDORA_MESSAGING_CONF come from the aws and amqp_config fixtures
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    return subprocess.run(
        [sys.executable, "-m", "uploader.cli", "--config", str(cfg), "--koji-task", str(task_id)],
        capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path,
    )


def _fedimg_amis(aws, region):
    ec2 = aws.client("ec2", region)
    return ec2.describe_images(Owners=["self"],
                               Filters=[{"Name": "tag:fedimg:name", "Values": [f"{NAME}.x86_64"]}]
                               )["Images"]


def _fedimg_snapshots(aws):
    ec2 = aws.client("ec2", "us-east-1")
    return sorted(s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
                  if any(t["Value"] == f"{NAME}.x86_64" for t in s.get("Tags", [])))


def test_koji_task_becomes_a_public_ami_in_every_region_once(
        koji_hub, raw_xz_image, aws, amqp_config, bus, tmp_path):
    task_id = koji_hub.add_image_task(
        release="20261125.n.0", arches=["x86_64"],
        files={"x86_64": {f"{NAME}.x86_64.raw.xz": raw_xz_image.path}})

    first = _upload(koji_hub, tmp_path, task_id)
    assert first.returncode == 0, first.stderr

    amis = {}
    for region in REGIONS:
        images = _fedimg_amis(aws, region)
        assert len(images) == 1, (region, images)
        image = images[0]
        ec2 = aws.client("ec2", region)
        perms = ec2.describe_image_attribute(ImageId=image["ImageId"],
                                             Attribute="launchPermission")["LaunchPermissions"]
        assert {"Group": "all"} in perms, (region, perms)
        snapshot = image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
        volume_perms = ec2.describe_snapshot_attribute(
            SnapshotId=snapshot, Attribute="createVolumePermission")["CreateVolumePermissions"]
        assert {"Group": "all"} in volume_perms, (region, volume_perms)
        tags = {t["Key"]: t["Value"] for t in image.get("Tags", [])}
        assert tags["fedimg:channel"] == "nightly" and tags["fedimg:release"] == "Rawhide"
        assert str(task_id) in tags["fedimg:source"]
        amis[region] = image["ImageId"]

    (accepted,) = bus.wait_for("fedimg.image.accepted.v1.*")
    assert accepted.body["koji_task_id"] == task_id and accepted.body["targets"] == ["aws"]
    published = bus.wait_for("fedimg.image.published.v1.aws.*", count=len(REGIONS))
    assert {m.body["region"]: m.body["ami"] for m in published} == amis
    (summary,) = bus.wait_for("fedimg.image.completed.v1.aws.*")
    assert summary.body["regions"] == amis and summary.body["failed_regions"] == []

    snapshots_before = _fedimg_snapshots(aws)
    second = _upload(koji_hub, tmp_path, task_id)
    assert second.returncode == 0, second.stderr
    for region in REGIONS:
        assert [i["ImageId"] for i in _fedimg_amis(aws, region)] == [amis[region]]
    # moto registers an "Auto-created snapshot" beside ours, so compare sets, not a count
    assert _fedimg_snapshots(aws) == snapshots_before
