"""The whole pipeline end to end on real parts (see conftest.py for what runs where).

1. A weekly build: fedimg-build -> Koji -> announcement -> the uploader service -> AMIs in three
   regions + two download files -> datanommer/datagrepper -> fedimg-report; the report is checked
   against what moto and the download directory really hold. Then the same Koji message is
   delivered twice more: still one AMI per region, the same files, no duplicate report entry.
2. The uploader process is SIGKILLed in the middle of the EBS upload; a new process finishes the
   job from the message RabbitMQ redelivers.
3. RabbitMQ (a private node: the shared one serves other runs) restarts while the uploader waits;
   nothing is lost, and the same uploader process carries on.
"""

from __future__ import annotations

import collections
import datetime
import json
import pathlib
import signal
from typing import Any

import pytest

from shared.files import sha256_file
from standins import REPO_ROOT
from standins.amqp import REGISTERED_MARKER
from standins.pipeline_config import JOB, REGIONS
from standins.processes import wait_until
from tests.e2e.conftest import PREFIX, Pipeline, consumed_line
from tests.e2e.private_rabbitmq import PrivateRabbitMQ

pytestmark = pytest.mark.slow

FLOW_TIMEOUT = 240.0  # seconds for the uploader to handle one announcement (2 busy cores)


def amis_by_region(aws: Any) -> dict[str, list[dict[str, Any]]]:
    return {r: aws.client("ec2", r).describe_images(Owners=["self"])["Images"] for r in REGIONS}


def download_files(root: pathlib.Path) -> dict[str, pathlib.Path]:
    return {str(p.relative_to(root)): p for p in sorted(root.rglob("*")) if p.is_file()}


def wait_consumed(proc: Any, message: Any, times: int = 1,
                  timeout: float = FLOW_TIMEOUT) -> None:
    """Until the uploader process logged ``times`` successful consumptions of ``message``."""
    line = consumed_line(message)

    def done() -> bool:
        assert proc.alive(), f"uploader died:\n{proc.tail()}"
        out = proc.output()
        assert f"message id {message.id} be dropped" not in out, proc.tail()
        assert f"message {message.id} (" not in out or "returning it to the queue" not in out, \
            f"the uploader is retrying {message.id}:\n{proc.tail()}"
        return proc.output().count(line) >= times

    try:
        wait_until(done, timeout, f"the uploader to consume {message.id} {times}x", 0.1)
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n--- uploader ---\n{proc.tail(60)}") from None


def test_weekly_build_reaches_aws_downloads_report_and_redelivery_changes_nothing(
        pipeline: Pipeline, datagrepper_empty: Any, aws: Any, bus: Any, run_consumer: Any,
        tmp_path: pathlib.Path) -> None:
    pipeline.datagrepper_url = datagrepper_empty.url
    pipeline.write_configs()
    date = datetime.datetime.now(datetime.UTC).date()
    release = f"weekly.{date:%Y%m%d}"
    name = f"Fedora-Cloud-Base-Rawhide-{release}.x86_64"

    with run_consumer("uploader.consumer:Uploader", pipeline.uploader_config(),
                      env=pipeline.env()) as uploader:
        # 1. the trigger starts the weekly build (TLS client-cert login) and says so on the bus
        pipeline.run("trigger.cli", "--date", str(date), JOB)
        task_id = pipeline.weekly_task()
        (started,) = bus.wait_for(f"{PREFIX}.fedimg.build.started.v1.weekly.Rawhide", 1, 30)
        assert started.body["task_id"] == task_id and started.body["release"] == release

        # 2. Koji finishes it and announces it; the uploader publishes everywhere
        announcement = pipeline.finish_and_announce(task_id)
        wait_consumed(uploader, announcement)
        (completed,) = bus.wait_for(f"{PREFIX}.fedimg.image.completed.v1.aws.*", 1, 30)

        amis = amis_by_region(aws)
        files = download_files(pipeline.downloads)
        for region in REGIONS:
            (ami,) = amis[region]
            assert name in ami["Name"], ami["Name"]
            assert ami["State"] == "available"
        image_files = sorted(f for f in files if not f.endswith("CHECKSUM"))
        assert [pathlib.Path(f).name for f in image_files] == [
            f"{name}.qcow2", f"{name}.raw.tar.xz"]
        assert bus.wait_for(f"{PREFIX}.fedimg.image.published.v1.downloads.*", 2, 30)

        # 3. datanommer stored every message; the report is rebuilt from datagrepper alone
        wait_history(datagrepper_empty, len(bus.messages()))
        report = report_now(pipeline, datagrepper_empty.url, tmp_path / "site")
        check_report(report, name, task_id, amis, files)
        assert completed.body["regions"] == {r: amis[r][0]["ImageId"] for r in REGIONS}
        assert completed.body["failed_regions"] == []

        # 4. the same Koji message delivered twice more: nothing new anywhere
        for _ in range(2):
            pipeline.announce(task_id, announcement)
        wait_consumed(uploader, announcement, times=3)
        # same msg_id and sent-at: datanommer keeps the announcement once, the rest is new
        wait_history(datagrepper_empty, len(bus.messages()) - 2)
        assert amis_by_region(aws) == amis, "a repeated announcement changed the AMIs"
        again = download_files(pipeline.downloads)
        assert sorted(again) == sorted(files)
        assert {k: sha256_file(p) for k, p in again.items()} == {
            k: sha256_file(p) for k, p in files.items()}
        check_report(report_now(pipeline, datagrepper_empty.url, tmp_path / "site"), name,
                     task_id, amis, files)


def wait_history(datagrepper: Any, count: int) -> None:
    wait_until(lambda: datagrepper.count() >= count, 30,
               f"datanommer to store {count} message(s)")


def report_now(pipeline: Pipeline, datagrepper_url: str, site: pathlib.Path) -> dict[str, Any]:
    pipeline.run("reporter.cli", "--datagrepper", datagrepper_url, "--output", str(site),
                 "--full")
    return json.loads((site / "images.json").read_text())


def check_report(report: dict[str, Any], name: str, task_id: int,
                 amis: dict[str, list[dict[str, Any]]], files: dict[str, pathlib.Path]) -> None:
    """images.json says exactly what moto and the download directory hold, once."""
    assert report["schema"] == "fedimg.report/1"
    names = collections.Counter(i["name"] for i in report["images"])
    assert names == {name: 1}, names
    (image,) = report["images"]
    assert (image["release"], image["subvariant"], image["arch"], image["channel"]) == (
        "Rawhide", "Cloud_Base", "x86_64", "weekly")
    assert image["koji_task_id"] == task_id
    assert image["aws"] == {r: {"ami": amis[r][0]["ImageId"]} for r in REGIONS}
    downloads = image["downloads"]
    assert sorted(d["format"] for d in downloads) == ["qcow2", "raw.tar.xz"]
    base = "https://dl.e2e.example/pub/alt/cloud/"
    for d in downloads:
        assert d["url"].startswith(base), d["url"]
        path = files[d["url"][len(base):]]
        assert d["size"] == path.stat().st_size
        assert d["sha256"] == sha256_file(path)
    assert image["failures"] == []


def test_uploader_sigkilled_mid_upload_finishes_from_the_redelivered_message(
        pipeline: Pipeline, aws: Any, bus: Any, run_consumer: Any,
        crash_hook: pathlib.Path) -> None:
    task_id = pipeline.new_task("weekly.20261101")
    name = "Fedora-Cloud-Base-Rawhide-weekly.20261101.x86_64"
    config = pipeline.uploader_config()
    crashing = pipeline.env(PYTHONPATH=f"{crash_hook}:{REPO_ROOT}",
                            FEDIMG_E2E_KILL_AT="after-call.ebs.PutSnapshotBlock#3")
    with run_consumer("uploader.consumer:Uploader", config, env=crashing) as first:
        announcement = pipeline.announce(task_id)
        wait_until(lambda: not first.alive(), FLOW_TIMEOUT, "the uploader to be killed")
        assert first.proc.returncode == -signal.SIGKILL, first.tail()
        assert consumed_line(announcement) not in first.output()
    # killed mid-upload: the snapshot was being written, no AMI exists, nothing announced
    assert all(not found for found in amis_by_region(aws).values())
    assert not [m for m in bus.messages() if ".fedimg.image.completed." in m.topic]

    with run_consumer("uploader.consumer:Uploader", config, env=pipeline.env()) as second:
        wait_consumed(second, announcement)  # RabbitMQ redelivered the unacked message
    amis = amis_by_region(aws)
    for region in REGIONS:
        (ami,) = amis[region]
        assert name in ami["Name"] and ami["State"] == "available"
    (completed,) = [m for m in bus.messages() if ".fedimg.image.completed.v1.aws." in m.topic]
    assert completed.body["regions"] == {r: amis[r][0]["ImageId"] for r in REGIONS}
    files = sorted(pathlib.Path(f).name for f in download_files(pipeline.downloads))
    assert files == ["CHECKSUM", f"{name}.qcow2", f"{name}.raw.tar.xz"]


def test_rabbitmq_restart_while_the_uploader_waits_loses_nothing(
        pipeline_parts: None, koji_hub_tls: Any, aws: Any, tmp_path: pathlib.Path,
        weekly_image: pathlib.Path, run_consumer: Any) -> None:
    import pika

    rabbit = PrivateRabbitMQ(tmp_path / "rabbitmq")
    try:
        rabbit.start()
        p = Pipeline(hub=koji_hub_tls, root=tmp_path, exchange="fedimg-e2e",
                     amqp_url=f"{rabbit.amqp_url}?connection_attempts=3&retry_delay=1",
                     datagrepper_url="http://127.0.0.1:9/unused", image=weekly_image)
        p.write_configs()
        # A durable queue recording every result: persistent messages must survive the restart.
        conn = pika.BlockingConnection(pika.URLParameters(rabbit.amqp_url))
        ch = conn.channel()
        ch.exchange_declare(p.exchange, exchange_type="topic", durable=True)
        ch.queue_declare("results", durable=True)
        ch.queue_bind("results", p.exchange, routing_key=f"{PREFIX}.fedimg.#")
        conn.close()

        with run_consumer("uploader.consumer:Uploader", p.uploader_config(),
                          env=p.env()) as uploader:
            first = p.announce(p.new_task("weekly.20261102"))
            wait_consumed(uploader, first)
            rabbit.restart()  # the uploader is idle, waiting for its next message
            wait_until(lambda: uploader.output().count(REGISTERED_MARKER) >= 2, 120,
                       "the uploader to re-register its consumer after the restart")
            assert uploader.alive()
            second = p.announce(p.new_task("weekly.20261103"))
            wait_consumed(uploader, second)

        conn = pika.BlockingConnection(pika.URLParameters(rabbit.amqp_url))
        topics = []
        while True:
            method, _props, _body = conn.channel().basic_get("results", auto_ack=True)
            if method is None:
                break
            topics.append(method.routing_key)
        conn.close()
    finally:
        rabbit.close()
    # the first job's results were published before the restart and are still there
    assert len([t for t in topics if ".completed.v1.aws." in t]) == 2, topics
    assert len([t for t in topics if ".published.v1.downloads." in t]) == 4, topics
    assert len([t for t in topics if ".published.v1.aws." in t]) == 2 * len(REGIONS), topics
    amis = amis_by_region(aws)
    for region in REGIONS:
        names = sorted(a["Name"] for a in amis[region])
        assert len(names) == 2 and "weekly.20261102" in names[0] and \
            "weekly.20261103" in names[1], names
