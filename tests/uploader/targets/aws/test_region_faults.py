"""Regions under faults moto cannot make by itself, played by standins.fault_proxy in front of it:
a region that accepts connections and never answers, and EC2 throttling 30 % of the requests.

Each test prints how long the run took to its failure message (or to the end); the only bound
asserted is the one the configuration promises: a region's failure is announced within
aws.region_deadline plus one aws.progress_interval of the start of its work.
"""

import time

import boto3
import pytest

from shared.messages import AwsImagePublishedV1, AwsRegionPublishedV1, UploadFailedV1
from tests.uploader.targets.aws.conftest import make_config, make_image
from tests.uploader.targets.aws.test_publish import amis, is_public, uploaded_snapshots
from uploader.model import Clients
from uploader.targets.aws import publish_aws

pytestmark = pytest.mark.slow

REGIONS = ["us-east-1", "eu-west-1", "ap-northeast-1"]
DEAD = "eu-west-1"


class Timed(list):
    """An emit that keeps (time.monotonic(), message)."""

    def __call__(self, message):
        self.append((time.monotonic(), message))

    def of(self, cls):
        return [(t, m) for t, m in self if isinstance(m, cls)]


def test_black_holed_region_fails_at_its_deadline_and_the_redelivery_redoes_only_it(
        aws, fault_proxy, raw_image):
    # Production timeouts and retries (60 s per attempt, 8 attempts): without the deadline, one
    # call into the black hole alone would hold the region for minutes.
    cfg = make_config(regions=REGIONS, region_deadline=6, progress_interval=1,
                      max_attempts=8, connect_timeout=10, read_timeout=60)
    fault_proxy.blackhole(DEAD)
    emit = Timed()
    start = time.monotonic()
    outcome = publish_aws(make_image(raw_image.path), config=cfg,
                          clients=Clients(aws=boto3.Session()), emit=emit)
    returned = time.monotonic()

    assert outcome.failed == [DEAD] and outcome.retryable == [DEAD]
    assert sorted(outcome.published) == ["ap-northeast-1", "us-east-1"]
    ((failed_at, failure),) = emit.of(UploadFailedV1)
    failure.validate()
    assert failure.body["destination"] == DEAD and failure.body["retryable"] is True
    assert failure.body["error_kind"] == "timeout"
    assert "aws.region_deadline" in failure.body["error"]
    assert fault_proxy.count("blackholed", region=DEAD) >= 1
    region_start = fault_proxy.first_seen(DEAD).at  # its work began before its 1st request
    took = failed_at - region_start
    print(f"\nblack hole {DEAD}: failure message {took:.2f} s after its first request "
          f"(deadline {cfg.aws.region_deadline} s + poll {cfg.aws.progress_interval} s), "
          f"{failed_at - start:.2f} s after publish_aws started; publish_aws returned after "
          f"{returned - start:.2f} s")
    assert took <= cfg.aws.region_deadline + cfg.aws.progress_interval
    # the others were done and announced, and are public
    assert sorted(m.body["region"] for _, m in emit.of(AwsRegionPublishedV1)) == [
        "ap-northeast-1", "us-east-1"]
    for region in ("us-east-1", "ap-northeast-1"):
        (found,) = amis(aws, region)
        assert is_public(aws, region, found) == (True, True)
    summary = emit[-1][1]
    assert isinstance(summary, AwsImagePublishedV1)
    assert summary.body["failed_regions"] == [DEAD]

    # the redelivery, with the region answering again: only the dead region gets new work
    fault_proxy.release(DEAD)
    mark = len(fault_proxy.seen)
    again = Timed()
    outcome = publish_aws(make_image(raw_image.path), config=cfg,
                          clients=Clients(aws=boto3.Session()), emit=again)
    assert outcome.ok and sorted(outcome.published) == sorted(REGIONS)
    redone = [(s.region, s.action) for s in fault_proxy.seen[mark:]]
    assert [r for r, a in redone if a == "CopyImage"] == [DEAD]
    assert not {a for _, a in redone} & {"RegisterImage", "POST /snapshots", "DeregisterImage",
                                         "DeleteSnapshot"}
    for region in REGIONS:
        (found,) = amis(aws, region)
        assert found["State"] == "available"
        assert is_public(aws, region, found) == (True, True)
    assert len(uploaded_snapshots(aws)) == 1
    assert set(again[-1][1].body["regions"]) == set(REGIONS)


def test_thirty_percent_ec2_throttling_still_ends_public_in_every_region(
        aws, fault_proxy, raw_image):
    cfg = make_config(regions=REGIONS, max_attempts=8, progress_interval=1)
    fault_proxy.throttle(0.3, service="ec2", seed=14)
    emit = Timed()
    start = time.monotonic()
    outcome = publish_aws(make_image(raw_image.path), config=cfg,
                          clients=Clients(aws=boto3.Session()), emit=emit)
    took = time.monotonic() - start
    throttled = fault_proxy.count("throttled")
    ec2 = fault_proxy.count(service="ec2")
    failures = emit.of(UploadFailedV1)
    first_failure = f"{failures[0][0] - start:.2f} s" if failures else "none"
    print(f"\nthrottling: {throttled} of {ec2} EC2 requests throttled; first failure message: "
          f"{first_failure}; all regions done after {took:.2f} s")
    assert throttled > 0  # the fault really happened
    assert not failures, [m.body for _, m in failures]
    assert outcome.ok and sorted(outcome.published) == sorted(REGIONS)
    for region in REGIONS:
        (found,) = amis(aws, region)
        assert found["State"] == "available"
        assert is_public(aws, region, found) == (True, True)
    assert len(uploaded_snapshots(aws)) == 1
