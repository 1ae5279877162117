import re

import pytest

from tests.uploader.targets.aws.conftest import NIGHTLY, make_image
from uploader.targets.aws import naming

AMI_NAME_OK = re.compile(r"^[A-Za-z0-9()\[\] ./'@_-]{3,128}$")


def test_ami_name_is_deterministic_and_ec2_safe(tmp_path):
    img = make_image(tmp_path / "x.raw")
    name = naming.ami_name(img.source, "gp3")
    assert name == f"{NIGHTLY}-hvm-gp3"
    assert naming.ami_name(make_image(tmp_path / "other.raw").source, "gp3") == name
    assert AMI_NAME_OK.match(name)


@pytest.mark.parametrize("raw", ["Fedora-Cloud-Base-41-1.4.x86_64" + "x" * 200,
                                 "Fedora+Cloud,Base#41~1.x86_64"])
def test_ami_name_long_or_odd_names_stay_valid_and_distinct(tmp_path, raw):
    a = naming.ami_name(make_image(tmp_path / "a", name=raw).source, "gp3")
    b = naming.ami_name(make_image(tmp_path / "b", name=raw + "y").source, "gp3")
    assert AMI_NAME_OK.match(a) and AMI_NAME_OK.match(b)
    assert a != b


def test_source_tag_names_the_trusted_source(tmp_path):
    def source_tag(img):
        return {t["Key"]: t["Value"] for t in naming.image_tags(img.source, "n")}["fedimg:source"]

    assert source_tag(make_image(tmp_path, koji_task_id=5)) == "koji-task:5"
    img = make_image(tmp_path, koji_task_id=None, koji_build_id=45)
    assert source_tag(img) == "koji-build:45"
    img = make_image(tmp_path, koji_task_id=None, compose_id="Fedora-Rawhide-20261125.n.0")
    assert source_tag(img) == "compose:Fedora-Rawhide-20261125.n.0"


def test_tags_carry_identity_and_source(tmp_path):
    img = make_image(tmp_path / "x.raw")
    tags = {t["Key"]: t["Value"] for t in naming.image_tags(img.source, "n")}
    assert tags["fedimg:release"] == "Rawhide"
    assert tags["fedimg:subvariant"] == "Cloud_Base"
    assert tags["fedimg:arch"] == "x86_64"
    assert tags["fedimg:channel"] == "nightly"
    assert tags["fedimg:source"] == "koji-task:139876543"
    assert tags["fedimg:name"] == NIGHTLY
    assert tags[naming.TAG_AMI_NAME] == "n"


def test_tokens_fit_ec2_limits_and_change_with_their_inputs():
    t = naming.copy_token("ami-0123456789abcdef0", "eu-west-1")
    assert len(t) <= 64 and t == naming.copy_token("ami-0123456789abcdef0", "eu-west-1")
    assert t != naming.copy_token("ami-0123456789abcdef0", "eu-west-2")
    assert t != naming.copy_token("ami-0123456789abcdef0", "eu-west-1", ["ami-dead"])
    s = naming.snapshot_token("n", "ab" * 32, [])
    assert len(s) <= 64 and s != naming.snapshot_token("n", "ab" * 32, ["snap-1"])
