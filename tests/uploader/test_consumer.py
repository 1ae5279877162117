"""The uploader service for real: `fedora-messaging consume` on RabbitMQ, the Koji stand-in,
real .raw.xz disk images. Hostile messages must fetch nothing and leave the service running.
"""

from __future__ import annotations

import copy
import logging
import pathlib
import uuid

import pika
import pytest
from fedora_messaging.exceptions import Drop
from fedora_messaging.message import Message

from standins.amqp import delete_queues, fedora_messaging_toml, pika_connection
from standins.koji_hub import TASK_STATES, KojiHub
from tests.uploader.conftest import config_dict, toml_text
from uploader.consumer import Uploader

PREFIX = "org.fedoraproject.prod."
TASK_TOPIC = PREFIX + "buildsys.task.state.change"
BUILD_TOPIC = PREFIX + "buildsys.build.state.change"
COMPOSE_TOPIC = PREFIX + "pungi.compose.status.change"
ACCEPTED = "fedimg.image.accepted.v1.*"
FAILED = "fedimg.image.failed.v1.*"
NAME = "Fedora-Cloud-Base-Rawhide-20261125.n.0"
CALLBACK = "uploader.consumer:Uploader"


MALFORMED = [
    (TASK_TOPIC, {"id": 2**63, "new": "CLOSED", "method": "image"}, "'id' must be a Koji id"),
    (TASK_TOPIC, {"id": 2**70, "new": "CLOSED", "method": "image"}, "'id' must be a Koji id"),
    (BUILD_TOPIC, {"build_id": 2**63, "new": 1}, "'build_id' must be a Koji id"),
    (BUILD_TOPIC, {"build_id": 2**70, "new": 1}, "'build_id' must be a Koji id"),
    (TASK_TOPIC, {"id": 5, "new": "CLOSED", "method": ["image"]}, "'method' must be a string"),
    (TASK_TOPIC, {"id": 5, "new": "CLOSED", "method": {"a": 1}}, "'method' must be a string"),
    (COMPOSE_TOPIC, {"compose_id": "Fedora-41-20241024.0", "status": ["FINISHED"]},
     "'status' must be a string"),
    (COMPOSE_TOPIC, {"compose_id": "Fedora-41-20241024.0", "status": {"a": 1}},
     "'status' must be a string"),
]


@pytest.mark.parametrize(("topic", "body", "why"), MALFORMED)
def test_malformed_bodies_are_dropped_at_once_with_one_line(make_config, koji_hub, caplog,
                                                            topic, body, why):
    emitted = []
    uploader = Uploader(config=make_config(uploader={"retry_delay": 30}), emit=emitted.append)
    message = Message(topic=topic, body=body, headers={"x-delivery-count": 0})
    with caplog.at_level(logging.INFO), pytest.raises(Drop):
        uploader(message)
    lines = [r for r in caplog.records if r.name.startswith("uploader")]
    assert [r.levelno for r in lines] == [logging.WARNING]
    assert f"dropping message {message.id}" in lines[0].getMessage()
    assert why in lines[0].getMessage() and not lines[0].exc_info
    assert emitted == [] and koji_hub.calls == []


def test_a_hub_answer_with_a_nul_byte_is_dropped_not_retried(make_config, koji_hub, caplog):
    tid = koji_hub.add_image_task()
    cid = koji_hub.tasks[tid]["children"][0]
    koji_hub.set_task_result(cid, dict(koji_hub.task_result(cid),
                                       files=[f"{NAME}.x86_64\x00.raw.xz"]))
    uploader = Uploader(config=make_config(uploader={"retry_delay": 30}), emit=[].append)
    with caplog.at_level(logging.WARNING), pytest.raises(Drop):
        uploader(Message(topic=TASK_TOPIC, body=koji_hub.task_state_change_body(tid)))
    assert "Koji hub sent an unreadable answer to getTaskResult" in caplog.text
    assert "returning it to the queue" not in caplog.text


@pytest.fixture
def service(amqp_exchange, tmp_path, koji_hub):
    """service(**fedimg_sections) -> fedora-messaging config path for a quorum queue.

    The queue is a quorum queue (x-delivery-limit 10), prefetch 1, bound to the three source
    topics only, exactly like deploy/fedora-messaging/; it is deleted afterwards.
    """
    queues: list[str] = []

    def _make(**sections) -> pathlib.Path:
        queue = f"fedimg-test-uploader-{uuid.uuid4().hex[:8]}"
        queues.append(queue)
        fedimg = tmp_path / "fedimg.toml"
        fedimg.write_text(toml_text(config_dict(koji_hub, tmp_path / "work", **sections)))
        text = fedora_messaging_toml(
            exchange=amqp_exchange, queue=queue,
            routing_keys=["#.buildsys.task.state.change", "#.buildsys.build.state.change",
                          "#.pungi.compose.status.change"],
            consumer_config={"targets": [], "fedimg_config": str(fedimg)},
            extra_loggers=("uploader",),
            queue_arguments={"x-queue-type": "quorum", "x-delivery-limit": 10},
            prefetch_count=1,
        )
        path = tmp_path / f"fedora-messaging-{queue}.toml"
        path.write_text(text)
        return path

    yield _make
    delete_queues(queues)


def _ours(bus):
    """What the uploader published (the recorder also sees the test's own input messages)."""
    return [m for m in bus.messages() if m.topic.startswith("fedimg.")]


def _gets(hub):
    return [p for m, p in hub.requests if m == "GET"]


def _wait_done(proc, msg, how, timeout=60):
    """Wait for fedora-messaging's own line saying what became of message `msg`."""
    text = {
        "ack": f"Successfully consumed message from topic {msg.topic} (message id {msg.id})",
        "drop": f"Consumer requested message id {msg.id} be dropped",
    }[how]
    proc.wait_for_output(text, timeout)


@pytest.mark.slow
def test_service_fetches_verifies_and_announces_then_survives_hostile_messages(
        service, run_consumer, publish, bus, koji_hub, raw_xz_image, tmp_path):
    evil = KojiHub(workdir=tmp_path / "evil")  # another host, for URLs an attacker would plant
    try:
        _run_service_scenario(service, run_consumer, publish, bus, koji_hub, raw_xz_image,
                              tmp_path, evil)
    finally:
        evil.close()


def _run_service_scenario(service, run_consumer, publish, bus, koji_hub, raw_xz_image,
                          tmp_path, evil):
    files = {a: {f"{NAME}.{a}.raw.xz": raw_xz_image.path} for a in ("x86_64", "aarch64")}
    tid = koji_hub.add_image_task(arches=["x86_64", "aarch64"], files=files)
    children = {koji_hub.tasks[c]["arch"]: c for c in koji_hub.tasks[tid]["children"]}
    config = service()
    with run_consumer(CALLBACK, config) as proc:
        # 1. a Koji task message: the right files from the hub, verified, announced
        body = copy.deepcopy(koji_hub.task_state_change_body(tid))  # shares the hub's dicts
        # plant other locations in the body: none of them may be used
        body["files_base_url"] = evil.topurl + "/work"
        body["base_url"] = evil.base_url
        for child in body["info"]["children"]:
            child["result"]["files"] = ["../../evil.raw.xz"]
        msg = publish(TASK_TOPIC, body)
        accepted = bus.wait_for(ACCEPTED, count=2, timeout=60)
        _wait_done(proc, msg, "ack")
        by_arch = {m.body["arch"]: m for m in accepted}
        for arch, child in children.items():
            m = by_arch[arch].body
            fname = f"{NAME}.{arch}.raw.xz"
            assert m["source_url"] == koji_hub.task_url(child, fname)
            assert (m["sha256"], m["size"]) == (raw_xz_image.sha256, raw_xz_image.size)
            assert (m["koji_task_id"], m["name"], m["channel"]) == (tid, f"{NAME}.{arch}",
                                                                    "nightly")
            assert m["targets"] == []
            assert by_arch[arch].topic == (f"fedimg.image.accepted.v1.nightly.Cloud_Base."
                                           f"Rawhide.{arch}")
        assert sorted(_gets(koji_hub)) == sorted(
            koji_hub.task_url(c, f"{NAME}.{a}.raw.xz").split(str(koji_hub.port))[1]
            for a, c in children.items())
        assert list((tmp_path / "work").iterdir()) == []
        # publishing from inside the consumer must not try to start a second reactor
        assert "ReactorAlreadyRunning" not in proc.output()

        # 2. redelivery of the same message: processed again, same result (idempotent)
        again = publish(TASK_TOPIC, body)
        assert len(bus.wait_for(ACCEPTED, count=4, timeout=60)) == 4
        _wait_done(proc, again, "ack")
        fetched_before = len(_gets(koji_hub))

        # 3. hostile variants: each fetches nothing and the service keeps running
        def expect_nothing(topic, body, how, why):
            n_bus = len(_ours(bus))
            m = publish(topic, body)
            _wait_done(proc, m, how)
            assert why in proc.output()
            assert len(_gets(koji_hub)) == fetched_before, why
            assert len(_ours(bus)) == n_bus, why
            assert proc.alive()

        other = koji_hub.add_image_task(owner="nobody-special")
        forged = dict(koji_hub.task_state_change_body(other), owner="releng")
        expect_nothing(TASK_TOPIC, forged, "drop",
                       f"Koji task {other}: owner 'nobody-special' not in koji.owners")

        still_open = koji_hub.add_image_task(state=TASK_STATES["OPEN"])
        expect_nothing(TASK_TOPIC, koji_hub.task_state_change_body(still_open, new="CLOSED"),
                       "drop", f"Koji task {still_open}: state OPEN, not CLOSED")

        traversal = koji_hub.add_image_task(
            files={"x86_64": {f"../../../{NAME}.x86_64.raw.xz": b"evil"}})
        expect_nothing(TASK_TOPIC, koji_hub.task_state_change_body(traversal), "ack",
                       f"ignoring unsafe file name '../../../{NAME}.x86_64.raw.xz'")

        expect_nothing(TASK_TOPIC, {"new": "CLOSED", "method": "image"}, "drop",
                       "body field 'id' must be a Koji id")

        # a body that is not JSON at all, straight onto the wire with pika
        raw_id = f"raw-{uuid.uuid4().hex[:8]}"
        conn = pika_connection()
        try:
            conn.channel().basic_publish(
                bus.exchange, TASK_TOPIC, b"{this is not json",
                pika.BasicProperties(message_id=raw_id, content_encoding="utf-8",
                                     headers={"fedora_messaging_severity": 20}))
        finally:
            conn.close()
        proc.wait_for_output(f"Message id {raw_id} did not pass validation", 30)
        assert proc.alive()

        # 4. hostile files: an off-host redirect and a checksum mismatch are refused
        redirected = koji_hub.add_image_task(files={"x86_64": {f"{NAME}.x86_64.raw.xz":
                                                               raw_xz_image.path}})
        rchild = koji_hub.tasks[redirected]["children"][0]
        evil_url = evil.add_file("work/evil.raw.xz", raw_xz_image.path)
        koji_hub.redirect(koji_hub.task_url(rchild, f"{NAME}.x86_64.raw.xz"), evil_url)
        m = publish(TASK_TOPIC, koji_hub.task_state_change_body(redirected))
        (failed,) = bus.wait_for(
            lambda b: b.topic.startswith("fedimg.image.failed.v1.")
            and b.body.get("koji_task_id") == redirected, timeout=60)
        _wait_done(proc, m, "ack")
        assert failed.body["error_kind"] == "verification" and not failed.body["retryable"]
        assert failed.body["target"] == "intake"
        assert "refusing redirect" in failed.body["error"]

        bid = koji_hub.add_image_build(files={"x86_64": {f"{NAME}.x86_64.raw.xz":
                                                         raw_xz_image.path}})
        koji_hub.corrupt(koji_hub.build_url(bid, f"{NAME}.x86_64.raw.xz"), "flip")
        m = publish(BUILD_TOPIC, koji_hub.build_state_change_body(bid))
        (failed,) = bus.wait_for(
            lambda b: b.topic.startswith("fedimg.image.failed.v1.")
            and b.body.get("koji_build_id") == bid, timeout=60)
        _wait_done(proc, m, "ack")
        assert failed.body["error_kind"] == "verification"
        assert "sha256 mismatch" in failed.body["error"]

        assert evil.requests == []
        assert len(bus.wait_for(ACCEPTED, count=4)) == 4
        assert not [b for b in _ours(bus) if b.topic.startswith("fedimg.image.accepted")
                    and b.body["koji_task_id"] in (redirected, other, still_open, traversal)]
        assert list((tmp_path / "work").iterdir()) == []
        assert proc.alive()


@pytest.mark.slow
def test_transient_failures_are_nacked_with_a_bounded_number_of_deliveries(
        service, run_consumer, publish, bus, koji_hub, raw_xz_image):
    tid = koji_hub.add_image_task(files={"x86_64": {f"{NAME}.x86_64.raw.xz":
                                                    raw_xz_image.path}})
    config = service(uploader={"retry_delay": 1, "max_deliveries": 3})
    with run_consumer(CALLBACK, config) as proc:
        # the hub is down at first delivery and back before the redelivery: the message is
        # returned to the queue, comes back with x-delivery-count, and succeeds
        koji_hub.down = True
        m = publish(TASK_TOPIC, koji_hub.task_state_change_body(tid))
        proc.wait_for_output("returning it to the queue in 1 s (delivery 1 of at most 3)", 30)
        koji_hub.down = False
        (accepted,) = bus.wait_for(ACCEPTED, timeout=60)
        _wait_done(proc, m, "ack")
        assert accepted.body["koji_task_id"] == tid

        # down for good: delivered 3 times (1 s, 2 s apart), then dropped with an error line
        koji_hub.down = True
        m = publish(TASK_TOPIC, koji_hub.task_state_change_body(tid))
        _wait_done(proc, m, "drop", timeout=60)
        out = proc.output()
        assert f"giving up on message {m.id} ({TASK_TOPIC}) after 3 deliveries" in out
        assert out.count(f"Returning message id {m.id} to the queue") == 2
        assert "(delivery 2 of at most 3)" in out
        assert proc.alive()
        assert len(_ours(bus)) == 1  # only the first accepted event
