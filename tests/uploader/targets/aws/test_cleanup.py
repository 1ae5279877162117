"""fedimg-aws-cleanup: expired nightly AMIs and their snapshots go, everything else stays."""

import datetime
import os
import pathlib
import subprocess
import sys

import pytest

from tests.uploader.targets.aws.conftest import make_config, make_image
from tests.uploader.targets.aws.test_publish import NAME, amis
from uploader.targets.aws import naming, publish_aws
from uploader.targets.aws.cleanup import cleanup

pytestmark = pytest.mark.slow
REPO_ROOT = pathlib.Path(__file__).resolve().parents[4]
REGIONS = ["us-east-1", "eu-west-1"]
CANDIDATE = "Fedora-Cloud-Base-AmazonEC2-43-1.6.x86_64"


def all_snapshot_ids(aws, region):
    snaps = aws.client("ec2", region).describe_snapshots(OwnerIds=["self"])["Snapshots"]
    return {s["SnapshotId"] for s in snaps}


@pytest.fixture
def published(aws, run, raw_image):
    cfg = make_config(regions=REGIONS)
    publish_aws(make_image(raw_image.path), config=cfg, clients=run.clients, emit=lambda m: None)
    publish_aws(make_image(raw_image.path, name=CANDIDATE), config=cfg, clients=run.clients,
                emit=lambda m: None)
    return cfg


def test_removes_expired_nightlies_with_snapshots_and_keeps_the_rest(aws, run, published):
    nightly = {r: amis(aws, r)[0] for r in REGIONS}
    candidate = {r: amis(aws, r, f"{CANDIDATE}-hvm-gp3")[0]["ImageId"] for r in REGIONS}
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=31)
    lines = []

    # dry run: lists, changes nothing
    listed = cleanup(run.session, published.aws, dry_run=True, now=later, say=lines.append)
    assert {(r.region, r.resource_id) for r in listed if r.kind == "ami"} == {
        (r, nightly[r]["ImageId"]) for r in REGIONS}
    assert all(line.startswith("would remove") for line in lines)
    assert not run.wire.calls("DeregisterImage") and not run.wire.calls("DeleteSnapshot")

    # not old enough yet: nothing
    soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=29)
    assert cleanup(run.session, published.aws, now=soon, say=lines.append) == []

    removed = cleanup(run.session, published.aws, now=later, say=lines.append)
    assert not any(r.error for r in removed)
    for region in REGIONS:
        assert amis(aws, region) == []
        left = all_snapshot_ids(aws, region)
        assert nightly[region]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"] not in left
        assert amis(aws, region, f"{CANDIDATE}-hvm-gp3")[0]["ImageId"] == candidate[region]
    # the uploaded nightly snapshot in the base region went too, the candidate's stayed
    ec2 = aws.client("ec2", "us-east-1")
    uploads = ec2.describe_snapshots(OwnerIds=["self"], Filters=[
        {"Name": "tag-key", "Values": [naming.TAG_UPLOAD]}])["Snapshots"]
    assert [t["Value"] for s in uploads for t in s["Tags"] if t["Key"] == "fedimg:channel"] == [
        "candidate"]
    assert any(line.startswith("removed ami") and NAME in line for line in lines)


def test_cli_dry_run_then_real_run(aws, published, tmp_path):
    cfg = tmp_path / "fedimg.toml"
    cfg.write_text('[aws]\nregions = ["us-east-1", "eu-west-1"]\nmax_attempts = 2\n')
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "uploader.targets.aws.cleanup",
                               "--config", str(cfg), "--older-than", "0", *args],
                              env=env, cwd=REPO_ROOT,
                              capture_output=True, text=True, timeout=60)

    dry = cli("--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.count("would remove ami") == 2 and len(amis(aws, "eu-west-1")) == 1
    real = cli()
    assert real.returncode == 0, real.stderr
    assert real.stdout.count("removed ami") == 2
    assert amis(aws, "us-east-1") == [] and amis(aws, "eu-west-1") == []
    bad = subprocess.run([sys.executable, "-m", "uploader.targets.aws.cleanup", "--config",
                          str(tmp_path / "missing.toml")], env=env, cwd=REPO_ROOT,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "file not found" in bad.stderr
