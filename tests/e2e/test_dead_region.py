"""A region that stops answering, seen from the bus: the real uploader service on RabbitMQ, AWS
through standins.fault_proxy in front of moto, one region a black hole.

Its failure is announced within aws.region_deadline plus one aws.progress_interval of its first
request while the other regions are published; the message goes back to the queue; once the
region answers again, a redelivery finishes it, copying to that region only.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from standins.pipeline_config import REGIONS, write_fedimg_config
from standins.processes import wait_until
from tests.e2e.conftest import PREFIX, Pipeline, consumed_line
from tests.e2e.test_pipeline import FLOW_TIMEOUT

pytestmark = pytest.mark.slow

DEADLINE = 8
POLL = 1
DEAD = REGIONS[-1]


def test_black_holed_region_is_announced_on_time_then_finished_by_a_redelivery(
        pipeline: Pipeline, aws: Any, fault_proxy: Any, bus: Any, run_consumer: Any) -> None:
    write_fedimg_config(pipeline.fedimg_config, pipeline.endpoints, pipeline.arches,
                        aws={"region_deadline": DEADLINE, "progress_interval": POLL})
    fault_proxy.blackhole(DEAD)
    task_id = pipeline.new_task("weekly.20261102")
    config = pipeline.uploader_config(targets=["aws"])
    with run_consumer("uploader.consumer:Uploader", config, env=pipeline.env()) as uploader:
        assert pipeline.env()["AWS_ENDPOINT_URL"] == fault_proxy.url
        start = time.time()
        announcement = pipeline.announce(task_id)
        (failed,) = bus.wait_for(f"{PREFIX}.fedimg.image.failed.v1.aws.{DEAD}.*", 1,
                                 FLOW_TIMEOUT)
        arrived = time.time()  # an upper bound: the recorder polls the bus
        first = fault_proxy.first_seen(DEAD)
        print(f"\n{DEAD} black-holed: failure message on the bus {arrived - first.wall:.2f} s "
              f"after its first request (deadline {DEADLINE} s + poll {POLL} s), "
              f"{arrived - start:.2f} s after the announcement")
        assert arrived - first.wall <= DEADLINE + POLL
        assert failed.body["retryable"] is True and failed.body["error_kind"] == "timeout"
        live = sorted(set(REGIONS) - {DEAD})
        published = bus.wait_for(f"{PREFIX}.fedimg.image.published.v1.aws.*", len(live), 30)
        assert sorted(m.body["region"] for m in published) == live
        wait_until(lambda: "returning it to the queue" in uploader.output(), 60,
                   "the uploader to Nack the message")

        fault_proxy.release(DEAD)
        wait_until(lambda: consumed_line(announcement) in uploader.output(), FLOW_TIMEOUT,
                   "a redelivery to finish the message")
        print(f"acked {time.time() - start:.2f} s after the announcement")

    # all the redeliveries together made the dead region's copy and nothing else again
    def forwarded(action: str, region: str | None = None) -> int:
        return fault_proxy.count("forwarded", action=action, region=region)

    assert forwarded("POST /snapshots") == 1 and forwarded("RegisterImage") == 1
    assert {r: forwarded("CopyImage", r) for r in REGIONS} == {
        REGIONS[0]: 0, **{r: 1 for r in REGIONS[1:]}}
    for region in REGIONS:
        ec2 = aws.direct_client("ec2", region)
        (ami,) = ec2.describe_images(Owners=["self"])["Images"]
        assert ami["State"] == "available"
        perms = ec2.describe_image_attribute(ImageId=ami["ImageId"],
                                             Attribute="launchPermission")
        assert {"Group": "all"} in perms["LaunchPermissions"], region
    completed = bus.wait_for(f"{PREFIX}.fedimg.image.completed.v1.aws.*", 2, 30)
    assert completed[0].body["failed_regions"] == [DEAD]
    assert sorted(completed[-1].body["regions"]) == sorted(REGIONS)
    assert completed[-1].body["failed_regions"] == []
