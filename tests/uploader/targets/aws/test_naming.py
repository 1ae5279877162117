import re

import botocore.exceptions
import pytest

from tests.uploader.targets.aws.conftest import NIGHTLY, make_image
from uploader.errors import BadInput, TransientError
from uploader.targets.aws import clients, naming

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
    assert naming.source_tag(make_image(tmp_path, koji_task_id=5).source) == "koji-task:5"
    img = make_image(tmp_path, koji_task_id=None, koji_build_id=45)
    assert naming.source_tag(img.source) == "koji-build:45"
    img = make_image(tmp_path, koji_task_id=None, compose_id="Fedora-Rawhide-20261125.n.0")
    assert naming.source_tag(img.source) == "compose:Fedora-Rawhide-20261125.n.0"


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


def client_error(code: str, status: int = 400) -> botocore.exceptions.ClientError:
    return botocore.exceptions.ClientError(
        {"Error": {"Code": code, "Message": code},
         "ResponseMetadata": {"HTTPStatusCode": status}}, "Op")


@pytest.mark.parametrize("exc, expected", [
    (client_error("RequestLimitExceeded", 503), ("aws", True)),
    (client_error("InternalError", 500), ("aws", True)),
    (client_error("UnauthorizedOperation", 403), ("aws", False)),
    (client_error("InvalidAMIID.NotFound"), ("aws", False)),
    (botocore.exceptions.ReadTimeoutError(endpoint_url="http://x"), ("timeout", True)),
    (botocore.exceptions.EndpointConnectionError(endpoint_url="http://x"), ("aws", True)),
    (botocore.exceptions.WaiterError("ImageAvailable", "Max attempts exceeded", {}),
     ("timeout", True)),
    (botocore.exceptions.WaiterError("ImageAvailable", "Waiter encountered a terminal failure "
                                     "state", {}), ("aws", False)),
    (BadInput("no"), ("source", False)),
    (TransientError("later"), ("source", True)),
    (ValueError("bug"), ("internal", False)),
])
def test_classify_gives_kind_and_retryable(exc, expected):
    assert clients.classify(exc) == expected


def test_retry_on_codes_retries_the_not_yet_window_then_gives_up():
    calls, sleeps = [], []

    def flaky():
        calls.append(1)
        if len(calls) < 4:
            raise client_error("ResourceNotFoundException", 404)
        return "ok"

    assert clients.retry_on_codes(flaky, codes={"ResourceNotFoundException"}, deadline=60,
                                  sleep=sleeps.append) == "ok"
    assert len(calls) == 4 and sleeps == [0.5, 1.0, 2.0]

    def never():
        raise client_error("ResourceNotFoundException", 404)

    with pytest.raises(botocore.exceptions.ClientError):
        clients.retry_on_codes(never, codes={"ResourceNotFoundException"}, deadline=0.0,
                               sleep=sleeps.append)

    def other():
        calls.append(1)
        raise client_error("ValidationException")

    before = len(calls)
    with pytest.raises(botocore.exceptions.ClientError):
        clients.retry_on_codes(other, codes={"ResourceNotFoundException"}, deadline=60,
                               sleep=sleeps.append)
    assert len(calls) == before + 1
