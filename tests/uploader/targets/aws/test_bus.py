"""The AWS messages reach real RabbitMQ with the topics and bodies QE binds to."""

import boto3
import pytest

from standins.amqp import publish_message
from tests.uploader.targets.aws.conftest import make_config, make_image
from uploader.model import Clients
from uploader.targets.aws import publish_aws

pytestmark = pytest.mark.slow


def test_region_failure_and_summary_messages_land_on_rabbitmq(aws, amqp_config, bus, raw_image):
    regions = ["us-east-1", "xx-nowhere-9", "eu-west-1"]
    outcome = publish_aws(make_image(raw_image.path), config=make_config(regions=regions),
                         clients=Clients(aws=boto3.Session()), emit=publish_message)
    assert outcome.failed == ["xx-nowhere-9"]
    published = bus.wait_for("fedimg.image.published.v1.aws.*", count=2)
    amis = {m.body["region"]: m.body["ami"] for m in published}
    assert sorted(amis) == ["eu-west-1", "us-east-1"]
    assert all(m.headers.get("fedora_messaging_schema") == "fedimg.image.published.v1.aws"
               for m in published)
    assert published[0].topic.endswith(".nightly.Cloud_Base.Rawhide.x86_64")
    (failed,) = bus.wait_for("fedimg.image.failed.v1.aws.xx-nowhere-9.*")
    assert failed.body["retryable"] is True and failed.body["error_kind"] == "aws"
    (summary,) = bus.wait_for("fedimg.image.completed.v1.aws.*")
    assert summary.body["regions"] == amis
    assert summary.body["failed_regions"] == ["xx-nowhere-9"]
    assert summary.body["koji_task_id"] == 139876543
    # the summary is the last of them: consumers may treat it as "done"
    topics = bus.topics()
    assert topics.index(summary.topic) == len(topics) - 1
