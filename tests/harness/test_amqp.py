"""The RabbitMQ harness works against the real broker: publish, record, real consumer process."""

from __future__ import annotations

import datetime as dt
import pathlib
import signal
import uuid

import pytest

from standins.amqp import (
    AmqpConfigFactory,
    build_message,
    publish_message,
    use_fedora_messaging_config,
)
from standins.processes import wait_until
from tests.harness.echo_consumer import ECHO_FILE_ENV, read_echo_file

ECHO = "tests.harness.echo_consumer:Echo"


def _topic(suffix: str) -> str:
    return f"org.fedoraproject.test.fedimg.harness.{suffix}.{uuid.uuid4().hex[:6]}"


@pytest.mark.slow
def test_publish_reaches_bus_recorder(publish, bus, amqp_config: pathlib.Path) -> None:
    topic = _topic("hello")
    msg = publish(topic, {"n": 1, "who": "harness"})

    [(got_topic, body, headers)] = bus.wait_for(topic, timeout=10)
    assert got_topic == topic
    assert body == {"n": 1, "who": "harness"}
    assert headers["sent-at"] == msg._headers["sent-at"]
    assert bus.messages()[0].topic == topic
    # glob and predicate forms
    assert bus.wait_for("org.fedoraproject.test.fedimg.harness.hello.*")
    assert bus.wait_for(lambda m: m.body.get("who") == "harness")


@pytest.mark.slow
def test_publish_backdates_sent_at(publish, bus) -> None:
    topic = _topic("backdated")
    when = dt.datetime(2024, 9, 12, 1, 55, 5, tzinfo=dt.UTC)
    publish(topic, {"x": 1}, sent_at=when)
    publish(topic, {"x": 2}, sent_at="2024-09-12T01:55:06+00:00")

    got = bus.wait_for(topic, count=2)
    assert [m.headers["sent-at"] for m in got] == [
        "2024-09-12T01:55:05+00:00",
        "2024-09-12T01:55:06+00:00",
    ]


@pytest.mark.slow
def test_wait_for_times_out_with_a_clear_message(bus) -> None:
    with pytest.raises(AssertionError, match="expected 1 message"):
        bus.wait_for("nothing.will.ever.match", timeout=0.3)


@pytest.mark.slow
def test_amqp_config_is_loaded_in_process(amqp_config: pathlib.Path, amqp_exchange: str) -> None:
    import os

    from fedora_messaging import config

    assert os.environ["FEDORA_MESSAGING_CONF"] == str(amqp_config)
    assert config.conf["publish_exchange"] == amqp_exchange
    assert config.conf["topic_prefix"] == ""
    assert AmqpConfigFactory.queue_of(amqp_config).startswith("fedimg-test-q-")


@pytest.mark.slow
def test_real_consumer_receives_and_durable_queue_keeps_messages(
    publish, run_consumer, amqp_config: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    echo_file = tmp_path / "echo.jsonl"
    env = {ECHO_FILE_ENV: str(echo_file)}
    topic = _topic("consumer")

    # 1. published while the consumer runs
    with run_consumer(ECHO, amqp_config, env=env) as proc:
        assert proc.alive()
        first = publish(topic, {"step": "live"})
        wait_until(lambda: len(read_echo_file(echo_file)) >= 1, 15, "echo consumer to record")
        assert "Successfully registered AMQP consumer" in proc.output()
    assert not proc.alive()

    # 2. published while the consumer is down: kept by the durable queue
    second = publish(topic, {"step": "while-down"})
    assert len(read_echo_file(echo_file)) == 1

    # 3. delivered once it is back
    with run_consumer(ECHO, amqp_config, env=env):
        wait_until(lambda: len(read_echo_file(echo_file)) >= 2, 15, "queued message delivery")

    records = read_echo_file(echo_file)
    assert [(r["id"], r["topic"], r["body"]) for r in records] == [
        (first.id, topic, {"step": "live"}),
        (second.id, topic, {"step": "while-down"}),
    ]


@pytest.mark.slow
def test_consumer_handle_kill_and_routing_keys(
    run_consumer, amqp_config_factory: AmqpConfigFactory, tmp_path: pathlib.Path
) -> None:
    wanted = _topic("wanted")
    cfg = amqp_config_factory(routing_keys=[wanted])
    echo_file = tmp_path / "echo.jsonl"

    with run_consumer(ECHO, cfg, env={ECHO_FILE_ENV: str(echo_file)}) as proc:
        # a factory config is not loaded globally; load it just for these publishes
        with use_fedora_messaging_config(cfg):
            publish_message(build_message(_topic("unwanted"), {"n": 0}))
            publish_message(build_message(wanted, {"n": 1}))
        wait_until(lambda: read_echo_file(echo_file), 15, "echo consumer to record")
        proc.kill(signal.SIGKILL)
        wait_until(lambda: not proc.alive(), 10, "consumer to die")
    assert [r["topic"] for r in read_echo_file(echo_file)] == [wanted]


@pytest.mark.slow
def test_consumer_start_failure_is_reported(run_consumer, tmp_path: pathlib.Path) -> None:
    cfg = tmp_path / "broken.toml"
    cfg.write_text('amqp_url = "amqp://guest:guest@127.0.0.1:5672/%2F"\nnot_a_key = 1\n')
    started = run_consumer(ECHO, cfg, ready_timeout=20)
    with pytest.raises(RuntimeError, match="exited with"), started:
        pass


@pytest.mark.slow
def test_publisher_service_follows_the_loaded_config(
    amqp_config: pathlib.Path, bus, tmp_path: pathlib.Path
) -> None:
    """api.publish caches its broker connection per process; the harness re-targets it."""
    from fedora_messaging import api

    other = tmp_path / "localhost.toml"
    other.write_text(amqp_config.read_text().replace("@127.0.0.1:5672", "@localhost:5672", 1))
    first, second = _topic("via-localhost"), _topic("via-loopback")
    with use_fedora_messaging_config(other):
        publish_message(build_message(first, {"n": 1}))
        assert api._twisted_service._parameters.host == "localhost"
    publish_message(build_message(second, {"n": 2}))
    assert api._twisted_service._parameters.host == "127.0.0.1"
    bus.wait_for(first)
    bus.wait_for(second)
