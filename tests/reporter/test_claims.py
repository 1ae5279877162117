"""The AMI check against EC2 (a moto server over HTTP): an AMI of another account and one that is
not public are left off the report, one deregistered after its message stays in images.json
marked deregistered but leaves the site and simplestreams, and ours stay."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import uuid

import pytest
from botocore.config import Config

from reporter.claims import Checked, check, ec2_clients
from reporter.run import run
from shared.config import ReporterConfig
from shared.errors import RunError
from standins.datagrepper_emulator import EmulatorServer, RawHistory, row
from standins.synthetic_history import PREFIX

pytestmark = pytest.mark.slow

REPO = pathlib.Path(__file__).resolve().parents[2]
OWNER = "123456789012"  # moto's default account: the credentials the check runs with
AMAZON = "801119661308"  # the owner of the AMIs moto serves by default
START = 1_700_000_000.0
NOW = START + 86400
NAME = "Fedora-Cloud-Base-AmazonEC2-Rawhide-20231114.n.0.x86_64"


def _ami(ec2, name: str, public: bool = True) -> str:
    image = ec2.register_image(Name=name, RootDeviceName="/dev/xvda", VirtualizationType="hvm",
                               BlockDeviceMappings=[{"DeviceName": "/dev/xvda",
                                                     "Ebs": {"VolumeSize": 5}}])["ImageId"]
    if public:
        ec2.modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"Group": "all"}]})
    return image


def _foreign(ec2) -> str:
    """A public AMI of another account (moto serves Amazon's own in every region)."""
    [image, *_] = ec2.describe_images(Owners=[AMAZON])["Images"]
    assert image["OwnerId"] == AMAZON and image["Public"]
    return image["ImageId"]


def _message(region: str, ami: str, at: float) -> dict:
    body = {"name": NAME, "release": "Rawhide", "subvariant": "Cloud_Base", "arch": "x86_64",
            "channel": "nightly", "compose_id": None, "koji_task_id": 1, "koji_build_id": None,
            "agent": "fedimg", "region": region, "ami": ami, "snapshot_id": None, "public": True,
            "ami_name": NAME}
    return row(str(uuid.uuid4()), at, PREFIX + f"fedimg.image.published.v1.aws.{region}", body)


@pytest.fixture
def claimed(aws):
    """History claiming five AMIs for one image: two ours, a foreign one, a private one, and
    one deregistered after its message."""
    east, west = aws.client("ec2", "us-east-1"), aws.client("ec2", "eu-west-1")
    amis = {
        "us-east-1": _ami(east, "ours"),
        "eu-west-1": _ami(west, "ours too"),
        "us-west-2": _foreign(aws.client("ec2", "us-west-2")),
        "ap-south-1": _ami(aws.client("ec2", "ap-south-1"), "private", public=False),
        "eu-north-1": _ami(aws.client("ec2", "eu-north-1"), "cleaned up"),
    }
    history = RawHistory([_message(r, a, START + 60 * i) for i, (r, a) in enumerate(amis.items())])
    aws.client("ec2", "eu-north-1").deregister_image(ImageId=amis["eu-north-1"])
    return history, amis


def test_the_check_leaves_foreign_private_and_deregistered_amis_off_the_site(claimed, tmp_path):
    history, amis = claimed
    cfg = ReporterConfig(since="2023-11-01", overlap=60, retries=1, window_days=400,
                         check_amis=True, aws_owner=OWNER)
    with EmulatorServer(history) as server:
        unchecked = run(tmp_path / "unchecked", server.url, cfg, now=NOW, check_amis=False)
        result = run(tmp_path / "site", server.url, cfg, now=NOW)
    assert unchecked.ami_check is None
    everything = (tmp_path / "unchecked" / "index.html").read_text()
    assert all(a in everything for a in amis.values())  # unchecked, every claim is believed

    assert result.ami_check == {"checked": 5, "left_off": 2, "deregistered": 1, "deprecated": 0}
    report = json.loads((tmp_path / "site" / "images.json").read_text())
    assert report["history"]["ami_check"] == result.ami_check
    [img] = report["images"]
    assert img["aws"] == {
        "us-east-1": {"ami": amis["us-east-1"]},
        "eu-west-1": {"ami": amis["eu-west-1"]},
        "eu-north-1": {"ami": amis["eu-north-1"], "state": "deregistered"},
    }
    offered = "".join(p.read_text() for p in (tmp_path / "site").rglob("*")
                      if p.suffix == ".html" or p.suffix == ".json" and "streams" in p.parts)
    assert amis["us-east-1"] in offered and amis["eu-west-1"] in offered
    for region in ("us-west-2", "ap-south-1", "eu-north-1"):
        assert amis[region] not in offered, region


def test_the_cli_flag_and_its_summary_line(claimed, tmp_path):
    history, amis = claimed
    with EmulatorServer(history) as server:
        cfg = tmp_path / "fedimg.toml"
        cfg.write_text(f'[reporter]\ndatagrepper = "{server.url}"\nsince = "2023-11-01"\n'
                       f'aws_owner = "{OWNER}"\n')
        proc = subprocess.run(
            [sys.executable, "-m", "reporter.cli", "--config", str(cfg), "--output",
             str(tmp_path / "site"), "--check-amis"], capture_output=True, text=True,
            timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "AMIs checked with EC2: 5, 2 left off, 1 deregistered" in proc.stdout
    # one warning line per AMI left off, naming it
    for region in ("us-west-2", "ap-south-1", "eu-north-1"):
        [line] = [x for x in proc.stderr.splitlines() if amis[region] in x]
        assert "WARNING" in line


def test_ec2_failing_fails_the_run(aws, tmp_path, monkeypatch):
    history = RawHistory([_message("us-east-1", "ami-0123456789abcdef0", START)])
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    cfg = ReporterConfig(since="2023-11-01", retries=1, window_days=400, check_amis=True,
                         aws_owner=OWNER)
    quick = ec2_clients(Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=1))
    with EmulatorServer(history) as server, pytest.raises(RunError, match="us-east-1"):
        run(tmp_path / "site", server.url, cfg, now=NOW, ec2=quick)
    assert not (tmp_path / "site").exists()


def test_deprecation_times_are_shown_in_the_json():
    """moto does not implement deprecation: EC2's answer shape is given here as data."""
    class OneRegion:
        def get_paginator(self, _):
            return self

        def paginate(self, **params):
            ids = params["Filters"][0]["Values"]
            images = [{"ImageId": i, "OwnerId": OWNER, "Public": True, "State": "available",
                       "DeprecationTime": "2024-05-01T00:00:00.000Z"} for i in ids]
            return [{"Images": images if "Owners" in params else []}]

    images = [{"name": NAME, "aws": {"us-east-1": {"ami": "ami-0abc"}}}]
    done = check(images, OWNER, lambda region: OneRegion())
    assert done == Checked(checked=1, deprecated=1)
    assert images[0]["aws"] == {"us-east-1": {"ami": "ami-0abc",
                                              "deprecated": "2024-05-01T00:00:00Z"}}
