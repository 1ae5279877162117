"""shared.source.Source: the compose -> build -> task precedence, written once, and the exact
spellings it produces (message fields and AWS tags are public and idempotency keys)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.images import identify
from shared.messages import ImageAcceptedV1, UploadFailedV1
from shared.source import Source
from uploader.model import ImageSource
from uploader.targets.aws import naming

COMPOSE = "Fedora-Rawhide-20261125.n.0"
NAME = "Fedora-Cloud-Base-Generic-Rawhide-20261125.n.0.x86_64"

ids = st.one_of(st.none(), st.integers(min_value=0, max_value=10**9))
compose_ids = st.one_of(st.none(), st.just(""), st.text(min_size=1, max_size=40))


@pytest.mark.parametrize("source, label, tag", [
    (Source(compose_id=COMPOSE, koji_build_id=45, koji_task_id=123),
     f"compose {COMPOSE}", f"compose:{COMPOSE}"),
    (Source(koji_build_id=45, koji_task_id=123), "Koji build 45", "koji-build:45"),
    (Source(koji_task_id=123), "Koji task 123", "koji-task:123"),
    (Source(koji_build_id=0), "Koji build 0", "koji-build:0"),  # 0 is an id, not "missing"
    (Source(compose_id="", koji_task_id=7), "Koji task 7", "koji-task:7"),
    (Source(), "an unknown source", "unknown"),
])
def test_precedence_label_and_tag(source, label, tag):
    assert (source.label, source.tag) == (label, tag)


@given(compose_ids, ids, ids)
def test_label_and_tag_always_name_the_same_source(compose_id, build_id, task_id):
    source = Source(compose_id=compose_id, koji_build_id=build_id, koji_task_id=task_id)
    chosen = (compose_id if compose_id else build_id if build_id is not None else task_id)
    if chosen is None:
        assert (source.label, source.tag) == ("an unknown source", "unknown")
    else:
        assert source.label.endswith(f" {chosen}") and source.tag.endswith(f":{chosen}")
    assert Source.from_body(source.fields()) == source


def test_fields_keep_the_published_order_and_all_three_keys():
    source = Source(koji_build_id=45, koji_task_id=123)
    assert json.dumps(source.fields()) == \
        '{"compose_id": null, "koji_task_id": 123, "koji_build_id": 45}'


def _image_source(**ids) -> ImageSource:
    return ImageSource(identity=identify(NAME), filename=f"{NAME}.raw.xz",
                       url=f"https://kojipkgs.example.org/{NAME}.raw.xz", image_type="raw-xz",
                       sha256="ab" * 32, **ids)


def test_message_bodies_are_unchanged_byte_for_byte():
    body = _image_source(compose_id=COMPOSE, koji_task_id=123).body(
        target="aws", destination="eu-west-1", error_kind="aws", error="x", retryable=True)
    assert json.dumps(body) == (
        '{"name": "' + NAME + '", "release": "Rawhide", "subvariant": "Cloud_Base", '
        '"arch": "x86_64", "channel": "nightly", "channel_inferred": null, '
            '"compose_id": "' + COMPOSE + '", '
        '"koji_task_id": 123, "koji_build_id": null, "agent": "fedimg", "target": "aws", '
        '"destination": "eu-west-1", "error_kind": "aws", "error": "x", "retryable": true}')
    UploadFailedV1.from_body(body).validate()


def test_aws_tags_are_unchanged_byte_for_byte():
    tags = naming.image_tags(_image_source(koji_build_id=45, koji_task_id=123), "ami-name")
    assert tags == [
        {"Key": "Name", "Value": "ami-name"},
        {"Key": "fedimg:ami-name", "Value": "ami-name"},
        {"Key": "fedimg:name", "Value": NAME},
        {"Key": "fedimg:release", "Value": "Rawhide"},
        {"Key": "fedimg:subvariant", "Value": "Cloud_Base"},
        {"Key": "fedimg:arch", "Value": "x86_64"},
        {"Key": "fedimg:channel", "Value": "nightly"},
        {"Key": "fedimg:source", "Value": "koji-build:45"},
        {"Key": "fedimg:sha256", "Value": "ab" * 32},
    ]
    assert naming.description(_image_source(koji_task_id=9)).endswith(", Koji task 9")


def test_image_source_and_messages_use_the_same_source():
    image = _image_source(compose_id=COMPOSE, koji_build_id=45, koji_task_id=123)
    assert image.origin == Source(compose_id=COMPOSE, koji_build_id=45, koji_task_id=123)
    assert image.source_label == f"compose {COMPOSE}"
    message = ImageAcceptedV1.from_body(image.body(
        targets=["aws"], source_url=image.url, size=1, sha256=image.sha256))
    assert message.origin == image.origin
    assert f"from compose {COMPOSE} for aws" in message.summary
