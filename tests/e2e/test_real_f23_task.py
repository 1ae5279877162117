"""The real F23-era Koji task shape, end to end on the local stack.

Fedora-Cloud-Base 23, release a bare date (20160103): the shape of the scratch task pungi's tests
record (task 12387273). Its name says no channel; the uploader must still make it public AMIs in
every configured region, download files and messages that say the channel was inferred, and the
report must show it.
"""

from __future__ import annotations

import pathlib
from typing import Any

import pytest

from standins.pipeline_config import REGIONS
from tests.e2e.conftest import PREFIX, Pipeline
from tests.e2e.test_pipeline import (
    amis_by_region,
    download_files,
    report_now,
    wait_consumed,
    wait_history,
)
from tests.real_corpus import koji_records

pytestmark = pytest.mark.slow


def test_f23_bare_date_scratch_task_becomes_public_amis_downloads_and_report(
        pipeline: Pipeline, datagrepper_empty: Any, aws: Any, bus: Any, run_consumer: Any,
        tmp_path: pathlib.Path) -> None:
    (real,) = koji_records("task-12387273-pungi-tests")
    x86 = next(r for r in real["getTaskResult"].values() if r["arch"] == "x86_64")
    name, version, release = x86["name"], x86["version"], x86["release"]
    image = f"{name}-{version}-{release}.x86_64"
    pipeline.datagrepper_url = datagrepper_empty.url
    pipeline.write_configs()
    task_id = pipeline.hub.add_image_task(
        name, version, release, ["x86_64"], {"x86_64": {f"{image}.raw.xz": pipeline.image}},
        scratch=True, opts={"release": release})

    with run_consumer("uploader.consumer:Uploader", pipeline.uploader_config(),
                      env=pipeline.env()) as uploader:
        announcement = pipeline.announce(task_id)
        wait_consumed(uploader, announcement)
        (completed,) = bus.wait_for(
            f"{PREFIX}.fedimg.image.completed.v1.aws.nightly.Cloud_Base.23.x86_64", 1, 30)

    amis = amis_by_region(aws)
    for region in REGIONS:
        (ami,) = amis[region]
        assert image in ami["Name"] and ami["State"] == "available"
        launch = aws.client("ec2", region).describe_image_attribute(
            ImageId=ami["ImageId"], Attribute="launchPermission")["LaunchPermissions"]
        assert {"Group": "all"} in launch, f"the AMI in {region} is not public"
    assert completed.body["regions"] == {r: amis[r][0]["ImageId"] for r in REGIONS}
    assert completed.body["channel_inferred"] == "scratch Koji task"
    files = sorted(pathlib.Path(f).name for f in download_files(pipeline.downloads))
    assert files == ["CHECKSUM", f"{image}.qcow2", f"{image}.raw.tar.xz"]
    downloads = bus.wait_for(f"{PREFIX}.fedimg.image.published.v1.downloads.*", 2, 30)
    assert {m.body["channel_inferred"] for m in downloads} == {"scratch Koji task"}

    wait_history(datagrepper_empty, len(bus.messages()))
    report = report_now(pipeline, datagrepper_empty.url, tmp_path / "site")
    (entry,) = report["images"]
    assert (entry["name"], entry["release"], entry["subvariant"], entry["channel"]) == (
        image, "23", "Cloud_Base", "nightly")
    assert entry["aws"] == {r: {"ami": amis[r][0]["ImageId"]} for r in REGIONS}
    assert sorted(d["format"] for d in entry["downloads"]) == ["qcow2", "raw.tar.xz"]
