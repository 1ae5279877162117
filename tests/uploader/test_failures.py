"""uploader.failures: every UploadFailedV1 is built in one place, with the error's meaning and the
truncation rule."""

from __future__ import annotations

import pathlib
import re

from shared.errors import AwsTransient, ConversionFailed, TargetFailed, VerificationFailed
from shared.images import identify
from uploader.failures import MAX_ERROR_TEXT, announce_failure, failure_text
from uploader.model import ImageSource

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
NAME = "Fedora-Cloud-Base-Generic-41-1.4.x86_64"
SOURCE = ImageSource(identity=identify(NAME), filename=f"{NAME}.raw.xz",
                     url=f"https://kojipkgs.example.org/{NAME}.raw.xz", image_type="raw-xz",
                     koji_task_id=123)


def test_the_message_carries_the_errors_kind_and_retryable():
    sent = []
    message = announce_failure(sent.append, SOURCE, target="aws", destination="eu-west-1",
                               error=AwsTransient("ClientError: SlowDown"),
                               context=f"{NAME}-hvm-gp3 in eu-west-1")
    assert sent == [message]
    body = message.body
    assert (body["target"], body["destination"], body["error_kind"], body["retryable"]) == (
        "aws", "eu-west-1", "aws", True)
    assert body["error"] == f"{NAME}-hvm-gp3 in eu-west-1: ClientError: SlowDown"
    assert (body["name"], body["koji_task_id"], body["compose_id"]) == (NAME, 123, None)
    assert message.topic.startswith("fedimg.image.failed.v1.aws.eu-west-1.")
    message.validate()


def test_a_target_failure_keeps_its_causes_meaning():
    sent = []
    announce_failure(sent.append, SOURCE, target="downloads", destination="qcow2",
                     error=ConversionFailed("qemu-img exited with 1"))
    announce_failure(sent.append, SOURCE, target="intake", destination=SOURCE.filename,
                     error=VerificationFailed("sha256 mismatch"))
    announce_failure(sent.append, SOURCE, target="aws", destination="us-east-1",
                     error=TargetFailed("x", kind="timeout", retryable=True))
    assert [(m.body["error_kind"], m.body["retryable"], m.body["error"]) for m in sent] == [
        ("conversion", False, "qemu-img exited with 1"),
        ("verification", False, "sha256 mismatch"),
        ("timeout", True, "x"),
    ]


def test_long_error_text_is_cut_to_the_limit():
    huge = VerificationFailed("<html>" + "x" * 10_000)
    text = failure_text(huge, context="ctx")
    assert len(text) == MAX_ERROR_TEXT and text.startswith("ctx: <html>xxx")
    assert failure_text(VerificationFailed("short")) == "short"
    sent = []
    announce_failure(sent.append, SOURCE, target="intake", destination="f", error=huge)
    assert sent[0].body["error"] == str(huge)[:MAX_ERROR_TEXT]


def test_no_other_module_builds_a_failure_message():
    builders = []
    for path in sorted(REPO_ROOT.glob("uploader/**/*.py")):
        if re.search(r"UploadFailedV1\s*\.\s*from_body|UploadFailedV1\s*\(", path.read_text()):
            builders.append(str(path.relative_to(REPO_ROOT)))
    assert builders == ["uploader/failures.py"]
