"""SIGKILL of the uploader service at eleven points of an AWS upload, then a restart.

RabbitMQ redelivers the unacked message to the new process, which must finish the job from what
it finds in AWS: exactly one public AMI per region, no orphan snapshot anywhere, and the summary
message naming every region.

How each point is reached (test-only; nothing in fedimg knows about it):

- during the fetch: the Koji stand-in holds the image download halfway (``corrupt(url,
  "stall")``) and the test kills the process from outside;
- every other point: the ``crash_hook`` fixture's sitecustomize.py makes the process SIGKILL
  itself the n-th time a botocore event fires or a message is about to be (or was) published,
  as FEDIMG_E2E_KILL_AT says.
"""

from __future__ import annotations

import signal
import time
from typing import Any

import pytest

from standins import REPO_ROOT
from standins.pipeline_config import REGIONS
from standins.processes import wait_until
from tests.e2e.conftest import PREFIX, Pipeline, consumed_line
from tests.e2e.test_pipeline import FLOW_TIMEOUT, wait_consumed
from uploader.targets.aws import naming

pytestmark = pytest.mark.slow

RELEASE = "weekly.20261101"
NAME = f"Fedora-Cloud-Base-Rawhide-{RELEASE}.x86_64"
IMAGE = f"Fedora-Cloud-Base-Rawhide-{RELEASE}.x86_64.raw.xz"

POINTS = {
    "during the fetch": None,
    "fetched, nothing in AWS yet": "before-call.ebs.StartSnapshot#1",
    "during the blocks": "after-call.ebs.PutSnapshotBlock#3",
    "after CompleteSnapshot": "after-call.ebs.CompleteSnapshot#1",
    "snapshot done, before RegisterImage": "before-call.ec2.RegisterImage#1",
    "after RegisterImage": "after-call.ec2.RegisterImage#1",
    "during the copies": "after-call.ec2.CopyImage#1",
    "one region public": "after-call.ec2.ModifyImageAttribute#1",
    "before a region's message": "publish:fedimg.image.published.v1.aws#1",
    "before the summary message": "publish:fedimg.image.completed.v1.aws#1",
    "summary sent, before the ack": "published:fedimg.image.completed.v1.aws#1",
}


def aws_state(aws: Any, baseline: dict[str, set[str]]) -> dict[str, dict[str, Any]]:
    """Per region: our AMIs and the snapshots made since `baseline` (moto's own sample AMIs
    come with snapshots of the same account), as moto holds them."""
    state = {}
    for region in REGIONS:
        ec2 = aws.direct_client("ec2", region)
        snaps = ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
        state[region] = {
            "amis": ec2.describe_images(Owners=["self"])["Images"],
            "snapshots": [s for s in snaps if s["SnapshotId"] not in baseline[region]],
            "ec2": ec2,
        }
    return state


def snapshot_ids(aws: Any) -> dict[str, set[str]]:
    return {r: {s["SnapshotId"] for s in aws.direct_client("ec2", r).describe_snapshots(
        OwnerIds=["self"])["Snapshots"]} for r in REGIONS}


def is_public(ec2: Any, ami: dict[str, Any]) -> tuple[bool, bool]:
    launch = ec2.describe_image_attribute(ImageId=ami["ImageId"], Attribute="launchPermission")
    snap = ami["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    volume = ec2.describe_snapshot_attribute(SnapshotId=snap,
                                             Attribute="createVolumePermission")
    return ({"Group": "all"} in launch["LaunchPermissions"],
            {"Group": "all"} in volume["CreateVolumePermissions"])


def summary(state: dict[str, dict[str, Any]]) -> str:
    return "; ".join(f"{r}: {len(s['amis'])} AMI(s), {len(s['snapshots'])} snapshot(s)"
                     for r, s in state.items())


def image_relpath(pipeline: Pipeline, task_id: int) -> str:
    (child,) = [t for t, v in pipeline.hub.tasks.items() if v["parent"] == task_id]
    return f"{pipeline.hub.task_dir(child)}/{IMAGE}"


@pytest.mark.parametrize("point", list(POINTS))
def test_sigkill_then_restart_ends_with_one_public_ami_per_region_and_no_orphan(
        pipeline: Pipeline, aws: Any, bus: Any, run_consumer: Any, crash_hook: Any,
        point: str) -> None:
    kill_at = POINTS[point]
    hub = pipeline.hub
    task_id = pipeline.new_task(RELEASE)
    config = pipeline.uploader_config(targets=["aws"])
    if kill_at is None:
        hub.stalled.clear()
        hub.unstalled.clear()
        hub.corrupt(image_relpath(pipeline, task_id), "stall")
        env = pipeline.env()
    else:
        env = pipeline.env(PYTHONPATH=f"{crash_hook}:{REPO_ROOT}", FEDIMG_E2E_KILL_AT=kill_at)

    baseline = snapshot_ids(aws)
    started = time.monotonic()
    with run_consumer("uploader.consumer:Uploader", config, env=env) as first:
        announcement = pipeline.announce(task_id)
        if kill_at is None:
            wait_until(hub.stalled.is_set, FLOW_TIMEOUT, "the download to be held halfway")
            first.kill(signal.SIGKILL)
        wait_until(lambda: not first.alive(), FLOW_TIMEOUT, f"the uploader to die {point}")
        assert first.proc.returncode == -signal.SIGKILL, first.tail()
        assert consumed_line(announcement) not in first.output()
    killed = time.monotonic()
    left = summary(aws_state(aws, baseline))
    if kill_at is None:
        hub.corrupt(image_relpath(pipeline, task_id), None)
        hub.unstalled.set()

    with run_consumer("uploader.consumer:Uploader", config, env=pipeline.env()) as second:
        wait_consumed(second, announcement)  # RabbitMQ redelivered the unacked message
    print(f"\nkilled {point} after {killed - started:.1f} s, leaving {left}; the restart "
          f"finished in {time.monotonic() - killed:.1f} s")

    state = aws_state(aws, baseline)
    # exactly one uploaded snapshot, complete; moto ignores register_image's block device
    # mapping and gives each AMI a snapshot of its own, so that one is not what the AMI lists
    uploaded = [s for s in state[REGIONS[0]]["snapshots"]
                if {"Key": naming.TAG_UPLOAD, "Value": naming.UPLOAD_COMPLETE} in s.get("Tags", [])]
    assert len(uploaded) == 1 and uploaded[0]["State"] == "completed", uploaded
    amis = {}
    for region, held in state.items():
        (ami,) = held["amis"]  # exactly one AMI per region
        assert NAME in ami["Name"] and ami["State"] == "available", ami
        assert is_public(held["ec2"], ami) == (True, True), region
        amis[region] = ami["ImageId"]
        used = {m["Ebs"]["SnapshotId"] for m in ami["BlockDeviceMappings"] if "Ebs" in m}
        used |= {s["SnapshotId"] for s in uploaded}
        orphans = [s["SnapshotId"] for s in held["snapshots"] if s["SnapshotId"] not in used]
        assert not orphans, f"orphan snapshot(s) in {region}: {orphans}"
    completed = [m for m in bus.messages()
                 if m.topic.startswith(f"{PREFIX}.fedimg.image.completed.v1.aws.")]
    assert completed and completed[-1].body["regions"] == amis
    assert completed[-1].body["failed_regions"] == []


def test_sigkill_mid_stream_with_blocks_sent_then_redelivery_makes_one_snapshot(
        pipeline: Pipeline, aws: Any, bus: Any, run_consumer: Any) -> None:
    """The AWS target streams: blocks go to EBS while the image is still downloading. Killed
    there (the download held halfway, a snapshot started and holding blocks), the redelivery
    deletes that snapshot, streams again and ends with exactly one."""
    hub = pipeline.hub
    task_id = pipeline.new_task(RELEASE)
    config = pipeline.uploader_config(targets=["aws"])
    hub.stalled.clear()
    hub.unstalled.clear()
    hub.corrupt(image_relpath(pipeline, task_id), "stall")
    baseline = snapshot_ids(aws)
    ec2 = aws.direct_client("ec2", REGIONS[0])
    ebs = aws.direct_client("ebs", REGIONS[0])

    def started_with_blocks() -> list[str]:
        snaps = [s for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
                 if s["SnapshotId"] not in baseline[REGIONS[0]]
                 and {"Key": naming.TAG_UPLOAD, "Value": naming.UPLOAD_STARTED}
                 in s.get("Tags", [])]
        return [s["SnapshotId"] for s in snaps
                if ebs.list_snapshot_blocks(SnapshotId=s["SnapshotId"]).get("Blocks")]

    with run_consumer("uploader.consumer:Uploader", config, env=pipeline.env()) as first:
        announcement = pipeline.announce(task_id)
        wait_until(hub.stalled.is_set, FLOW_TIMEOUT, "the download to be held halfway")
        wait_until(started_with_blocks, FLOW_TIMEOUT, "blocks sent during the download")
        (interrupted,) = started_with_blocks()
        first.kill(signal.SIGKILL)
        wait_until(lambda: not first.alive(), FLOW_TIMEOUT, "the uploader to die")
        assert consumed_line(announcement) not in first.output()
    assert not [m for m in bus.messages() if ".fedimg.image.accepted." in m.topic]
    hub.corrupt(image_relpath(pipeline, task_id), None)
    hub.unstalled.set()

    with run_consumer("uploader.consumer:Uploader", config, env=pipeline.env()) as second:
        wait_consumed(second, announcement)

    state = aws_state(aws, baseline)
    ours = [s for s in state[REGIONS[0]]["snapshots"] if naming.TAG_UPLOAD in
            {t["Key"] for t in s.get("Tags", [])}]
    assert [s["SnapshotId"] for s in ours] != [interrupted]
    (done,) = ours  # the interrupted one was deleted, one complete snapshot remains
    assert {"Key": naming.TAG_UPLOAD, "Value": naming.UPLOAD_COMPLETE} in done["Tags"]
    assert done["State"] == "completed"
    for region, held in state.items():
        (ami,) = held["amis"]
        assert is_public(held["ec2"], ami) == (True, True), region
    completed = [m for m in bus.messages()
                 if m.topic.startswith(f"{PREFIX}.fedimg.image.completed.v1.aws.")]
    assert completed and completed[-1].body["failed_regions"] == []
