"""RabbitMQ fixtures: a private exchange, fedora-messaging configs, a bus recorder, consumers.

Thin pytest wrappers over ``standins.amqp``. Every pytest session publishes to its own topic
exchange (``fedimg-test-<uuid8>``) on the shared broker, every queue name carries a fresh uuid,
and everything declared here is deleted again at teardown.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from standins import StandinError
from standins.amqp import (
    AmqpConfigFactory,
    BusRecorder,
    build_message,
    consumer_process,
    declare_exchange,
    delete_exchange,
    publish_message,
    use_fedora_messaging_config,
)
from standins.processes import ManagedProcess


@pytest.fixture(scope="session")
def amqp_exchange() -> Iterator[str]:
    """A topic exchange private to this pytest session, declared on the real broker.

    Why not amq.topic: other engineers' runs publish there too, so a '#' binding would see their
    messages. Fails (not skips) if RabbitMQ is not reachable: the stack is part of the contract.
    """
    name = f"fedimg-test-{uuid.uuid4().hex[:8]}"
    try:
        declare_exchange(name)
    except StandinError as exc:
        pytest.fail(str(exc))
    yield name
    delete_exchange(name)



@pytest.fixture
def amqp_config_factory(amqp_exchange: str, tmp_path: pathlib.Path) -> Iterator[AmqpConfigFactory]:
    """Factory for extra fedora-messaging configs (other queues, routing keys, consumer_config)."""
    factory = AmqpConfigFactory(amqp_exchange, tmp_path)
    try:
        yield factory
    finally:
        factory.cleanup()



@pytest.fixture
def amqp_config(
    amqp_config_factory: AmqpConfigFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[pathlib.Path]:
    """Path of a fedora-messaging config for this test, active in-process and for subprocesses.

    Publishes to the session exchange with ``topic_prefix = ""`` (topics are used verbatim) and
    consumes from a unique durable queue bound with '#'. FEDORA_MESSAGING_CONF points at it (so
    subprocesses inherit it) and ``fedora_messaging.config.conf`` is reloaded from it (so
    in-process ``api.publish`` uses it); both are restored after the test.
    """
    path = amqp_config_factory(filename="fedora-messaging.toml")
    monkeypatch.setenv("FEDORA_MESSAGING_CONF", str(path))
    with use_fedora_messaging_config(path):
        yield path



@pytest.fixture
def publish(amqp_config: pathlib.Path) -> Callable[..., Any]:
    """``publish(topic, body, *, sent_at=None, message_class=None, headers=None) -> Message``.

    Publishes to this session's exchange through the real broker and returns the Message
    (``.id`` is the msg_id datagrepper will show).
    """

    def _publish(topic: str, body: Any, **options: Any) -> Any:
        return publish_message(build_message(topic, body, **options))

    return _publish



@pytest.fixture
def bus(amqp_exchange: str) -> Iterator[BusRecorder]:
    """Records what the test puts on RabbitMQ; ``bus.wait_for(...)`` is the assertion."""
    recorder = BusRecorder(amqp_exchange)
    try:
        yield recorder
    finally:
        recorder.close()



@pytest.fixture
def run_consumer(tmp_path: pathlib.Path) -> Callable[..., Any]:
    """``with run_consumer("pkg.mod:Callback", config_path, env={...}) as proc:`` -> ManagedProcess.

    Logs go to tmp_path/consumer-N.log; ``proc.alive()``, ``proc.output()``, ``proc.kill(sig)``.
    """
    counter = iter(range(1, 1_000_000))

    def _run(
        callback: str,
        config_path: os.PathLike[str] | str,
        *,
        env: Mapping[str, str] | None = None,
        ready_timeout: float = 30.0,
        stop_timeout: float = 10.0,
    ) -> contextlib.AbstractContextManager[ManagedProcess]:
        return consumer_process(
            callback,
            config_path,
            env=env,
            log_path=tmp_path / f"consumer-{next(counter)}.log",
            ready_timeout=ready_timeout,
            stop_timeout=stop_timeout,
        )

    return _run
