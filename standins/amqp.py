"""RabbitMQ through fedora-messaging: exchanges, queues, config files, publishing, consumers.

Why real RabbitMQ: the uploader is a ``fedora-messaging consume`` service and its contract is "the
right messages end up on the bus". Mocks of fedora-messaging would not catch a wrong exchange, a
missing binding, a body that does not serialise, or a consumer that never registers.

Isolation: RabbitMQ on 127.0.0.1:5672 may be shared with other runs, so callers publish to their
own topic exchange (``declare_exchange``), every queue name made here carries a fresh uuid
(``unique_name``), and callers delete what they declared (``delete_queues``, ``delete_exchange``).

In-process publishing: ``fedora_messaging.api.publish`` (3.x) runs a Twisted reactor in a crochet
thread and creates ONE global publishing service from ``config.conf["amqp_url"]`` on first use. That
service lives as long as the process and reconnects by itself; the exchange and topic prefix are
read from ``config.conf`` at every publish. So switching configs within one process works as long as
``amqp_url`` stays the same, which it does here. ``use_fedora_messaging_config`` swaps the loaded
config in and restores the previous one afterwards.

"""

from __future__ import annotations

import contextlib
import datetime as dt
import fnmatch
import json
import os
import pathlib
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import pika
import tomli_w

from standins import REPO_ROOT, StandinError
from standins.processes import ManagedProcess

AMQP_HOST = "127.0.0.1"
AMQP_PORT = 5672
AMQP_URL = f"amqp://guest:guest@{AMQP_HOST}:{AMQP_PORT}/%2F"
# Small retry budget: a broker that is down should fail a test in seconds, not minutes.
AMQP_URL_FM = f"{AMQP_URL}?connection_attempts=2&retry_delay=1&socket_timeout=5"
# heartbeat=0: a BlockingConnection only services heartbeats while we call into it, and a test can
# sit idle for minutes; without heartbeats the broker never drops the recorder's exclusive queue.
AMQP_URL_PIKA = f"{AMQP_URL}?heartbeat=0&socket_timeout=5&blocked_connection_timeout=10"

VENV_BIN = pathlib.Path(sys.executable).parent
FEDORA_MESSAGING_CLI = VENV_BIN / "fedora-messaging"
REGISTERED_MARKER = "Successfully registered AMQP consumer"
LOG_FORMAT = "%(asctime)s [%(name)s %(levelname)s] %(message)s"
PUBLISH_TIMEOUT = 15  # seconds, for fedora_messaging.api.publish


# --------------------------------------------------------------------------------------------
# Broker access with pika
# --------------------------------------------------------------------------------------------


def pika_connection() -> pika.BlockingConnection:
    """A blocking pika connection to the shared broker, with bounded socket timeouts."""
    return pika.BlockingConnection(pika.URLParameters(AMQP_URL_PIKA))


def declare_durable_queue(queue: str, exchange: str, routing_keys: Sequence[str]) -> None:
    """Declare ``queue`` exactly as fedora-messaging will (durable, not exclusive/auto-delete).

    Declaring it before the consumer starts means messages published while no consumer runs
    are kept: that is what a restarted service relies on.
    """
    conn = pika_connection()
    try:
        ch = conn.channel()
        ch.queue_declare(queue, durable=True, exclusive=False, auto_delete=False, arguments={})
        for key in routing_keys:
            ch.queue_bind(queue, exchange, routing_key=key)
    finally:
        conn.close()


def delete_queues(queues: Sequence[str]) -> None:
    """Delete the named queues (best effort: cleanup must not mask the caller's failure)."""
    if not queues:
        return
    with contextlib.suppress(Exception):
        conn = pika_connection()
        try:
            for queue in queues:
                ch = conn.channel()
                with contextlib.suppress(Exception):
                    ch.queue_delete(queue)
                with contextlib.suppress(Exception):
                    ch.close()
        finally:
            with contextlib.suppress(Exception):
                conn.close()


def _connect_or_explain() -> pika.BlockingConnection:
    try:
        return pika_connection()
    except Exception as exc:
        raise StandinError(
            f"RabbitMQ is not reachable on {AMQP_HOST}:{AMQP_PORT} as guest ({exc!r}); run "
            "`make services` (it starts an installed RabbitMQ) or `apt-get install rabbitmq-server`"
        ) from None


def check_rabbitmq() -> None:
    """StandinError naming the fix if the local broker does not accept guest/guest."""
    _connect_or_explain().close()


def declare_exchange(name: str) -> None:
    """Declare the durable topic exchange ``name``; StandinError if RabbitMQ is not reachable."""
    conn = _connect_or_explain()
    try:
        conn.channel().exchange_declare(
            name, exchange_type="topic", durable=True, auto_delete=False
        )
    finally:
        conn.close()


def delete_exchange(name: str) -> None:
    """Delete the exchange ``name`` (best effort: cleanup must not mask the caller's failure)."""
    with contextlib.suppress(Exception):
        conn = pika_connection()
        try:
            conn.channel().exchange_delete(name)
        finally:
            conn.close()


def unique_name(kind: str) -> str:
    """``fedimg-test-<kind>-<uuid8>``: recognisable on the shared broker, never reused."""
    return f"fedimg-test-{kind}-{uuid.uuid4().hex[:8]}"


# --------------------------------------------------------------------------------------------
# fedora-messaging configuration files
# --------------------------------------------------------------------------------------------


def fedora_messaging_toml(
    *,
    exchange: str,
    queue: str | None = None,
    routing_keys: Sequence[str] = ("#",),
    topic_prefix: str = "",
    consumer_config: Mapping[str, Any] | None = None,
    callback: str | None = None,
    app: str = "fedimg-tests",
    extra_loggers: Sequence[str] = (),
    amqp_url: str | None = None,
    queue_arguments: Mapping[str, Any] | None = None,
    prefetch_count: int = 10,
) -> str:
    """Text of a fedora-messaging 3.9 config file for the local broker.

    ``amqp_url`` defaults to the shared broker; ``queue_arguments`` are the queue's declare
    arguments (e.g. ``{"x-queue-type": "quorum", "x-delivery-limit": 5}``).

    ``queue`` None means a server-named exclusive queue (gone when the consumer stops); a name
    means a durable queue that keeps messages while the consumer is down. Nested tables replace
    fedora-messaging's defaults wholesale, so every table is written out in full here.
    """
    qname = queue or ""
    durable = queue is not None
    document: dict[str, Any] = {
        "amqp_url": amqp_url or AMQP_URL_FM,
        "publish_exchange": exchange,
        "topic_prefix": topic_prefix,
        "passive_declares": False,
        **({"callback": callback} if callback else {}),
        "client_properties": {"app": app},
        "exchanges": {exchange: {"type": "topic", "durable": True, "auto_delete": False,
                                 "arguments": {}}},
        "queues": {qname: {"durable": durable, "auto_delete": not durable,
                           "exclusive": not durable,
                           "arguments": dict(queue_arguments or {})}},
        "bindings": [{"queue": qname, "exchange": exchange,
                      "routing_keys": list(routing_keys)}],
        "qos": {"prefetch_size": 0, "prefetch_count": int(prefetch_count)},
        "consumer_config": dict(consumer_config or {}),
        "log_config": {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {"simple": {"format": LOG_FORMAT}},
            "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "simple",
                                     "stream": "ext://sys.stdout"}},
            "loggers": {name: {"level": "INFO", "propagate": False, "handlers": ["console"]}
                        for name in ("fedora_messaging", *extra_loggers)},
            "root": {"level": "WARNING", "handlers": ["console"]},
        },
    }
    return tomli_w.dumps(document)


@contextlib.contextmanager
def use_fedora_messaging_config(path: os.PathLike[str] | str) -> Iterator[None]:
    """Load ``path`` into the process-global ``fedora_messaging.config.conf``; restore on exit.

    ``conf`` is a dict subclass that lazy-loads once, so the previous content and ``loaded``
    flag are saved with plain ``dict`` methods (which do not trigger a load) and put back.
    """
    from fedora_messaging import config as fm_config

    conf = fm_config.conf
    saved = dict.copy(conf)
    saved_loaded = conf.loaded
    conf.load_config(str(path))
    try:
        yield
    finally:
        dict.clear(conf)
        dict.update(conf, saved)
        conf.loaded = saved_loaded


class AmqpConfigFactory:
    """Writes fedora-messaging config files into one directory and cleans up their queues.

    Named queues are pre-declared (durable, bound) the moment the config is written, so a
    message published before the consumer's first start already waits for it.
    """

    def __init__(self, exchange: str, directory: pathlib.Path) -> None:
        self.exchange = exchange
        self.directory = directory
        self.queues: list[str] = []

    def __call__(
        self,
        *,
        queue: str | None | bool = True,
        routing_keys: Sequence[str] = ("#",),
        topic_prefix: str = "",
        consumer_config: Mapping[str, Any] | None = None,
        callback: str | None = None,
        extra_loggers: Sequence[str] = (),
        filename: str | None = None,
    ) -> pathlib.Path:
        """Write a config; ``queue=True`` picks a unique durable queue, None/False = exclusive."""
        if queue is True:
            queue = unique_name("q")
        qname = queue or None
        if qname:
            declare_durable_queue(qname, self.exchange, routing_keys)
            self.queues.append(qname)
        path = self.directory / (filename or f"fedora-messaging-{uuid.uuid4().hex[:6]}.toml")
        path.write_text(
            fedora_messaging_toml(
                exchange=self.exchange,
                queue=qname,
                routing_keys=routing_keys,
                topic_prefix=topic_prefix,
                consumer_config=consumer_config,
                callback=callback,
                extra_loggers=extra_loggers,
            )
        )
        return path

    @staticmethod
    def queue_of(path: os.PathLike[str] | str) -> str:
        """The (first) queue name configured in a config file written by this factory."""
        import tomllib

        with open(path, "rb") as fd:
            return next(iter(tomllib.load(fd)["queues"]))

    def cleanup(self) -> None:
        """Delete every named queue this factory declared."""
        delete_queues(self.queues)
        self.queues.clear()


# --------------------------------------------------------------------------------------------
# Publishing
# --------------------------------------------------------------------------------------------


def _sent_at_header(sent_at: dt.datetime | str) -> str:
    """ISO 8601 like fedora-messaging writes it; naive datetimes are taken as UTC."""
    if isinstance(sent_at, str):
        return sent_at
    if sent_at.tzinfo is None:
        sent_at = sent_at.replace(tzinfo=dt.UTC)
    return sent_at.isoformat()


def build_message(
    topic: str,
    body: Any,
    *,
    sent_at: dt.datetime | str | None = None,
    message_class: type | None = None,
    headers: Mapping[str, Any] | None = None,
) -> Any:
    """A fedora-messaging Message (or ``message_class``) with an optional backdated 'sent-at'.

    fedora-messaging stamps 'sent-at' = now at construction and datanommer stores it as the
    message timestamp; overwriting the (private) header afterwards is the way to backdate.
    """
    from fedora_messaging.message import Message

    cls = message_class or Message
    msg = cls(topic=topic, body=body, headers=dict(headers or {}) or None)
    if sent_at is not None:
        msg._properties.headers["sent-at"] = _sent_at_header(sent_at)
    return msg


def publish_message(
    message: Any, exchange: str | None = None, timeout: int = PUBLISH_TIMEOUT
) -> Any:
    """Publish through ``fedora_messaging.api.publish`` (blocking, broker-confirmed).

    Uses whatever config is loaded (see ``use_fedora_messaging_config``). Returns the message.
    """
    from fedora_messaging import api

    _retarget_publisher_service()
    api.publish(message, exchange=exchange, timeout=timeout)
    return message


def _retarget_publisher_service(timeout: float = 10.0) -> None:
    """Drop fedora-messaging's cached publishing service if it points at another broker.

    ``api.publish`` builds its Twisted service once per process from the amqp_url loaded at
    that moment. If some earlier test published with a different URL (e.g. no config at all,
    so /etc/fedora-messaging defaults), later publishes would silently go there. Stop that
    service in the reactor thread and let the next publish build a fresh one.
    """
    import crochet
    from fedora_messaging import api
    from fedora_messaging import config as fm_config

    current = api._twisted_service
    if current is None:
        return
    have = current._parameters
    want = pika.URLParameters(fm_config.conf["amqp_url"])
    if (have.host, have.port, have.virtual_host, have.credentials) == (
        want.host,
        want.port,
        want.virtual_host,
        want.credentials,
    ):
        return

    @crochet.run_in_reactor
    def _stop() -> Any:
        return current.stopService()

    with contextlib.suppress(Exception):
        _stop().wait(timeout=timeout)
    api._twisted_service = None


# --------------------------------------------------------------------------------------------
# Bus recorder
# --------------------------------------------------------------------------------------------


class BusMessage(NamedTuple):
    """One message seen on the exchange. Unpacks as ``(topic, body, headers)``."""

    topic: str
    body: Any
    headers: dict[str, Any]


class BusRecorder:
    """Records every message on the session exchange, from the moment the fixture starts.

    Uses its own server-named exclusive queue bound with '#' (or ``routing_keys``), declared
    before the test body starts, so nothing published afterwards can slip past it.
    """

    def __init__(self, exchange: str, routing_keys: Sequence[str] = ("#",)) -> None:
        """``routing_keys`` narrows what is recorded (e.g. ``("fedimg.#",)`` when the test
        itself publishes bodies too big to keep twice)."""
        self.exchange = exchange
        self._conn = pika_connection()
        self._ch = self._conn.channel()
        result = self._ch.queue_declare("", exclusive=True, auto_delete=True)
        self.queue: str = result.method.queue
        for key in routing_keys:
            self._ch.queue_bind(self.queue, exchange, routing_key=key)
        self._seen: list[BusMessage] = []

    def _drain(self) -> None:
        """Move everything currently in the queue into ``_seen``."""
        while True:
            method, props, raw = self._ch.basic_get(self.queue, auto_ack=True)
            if method is None:
                return
            try:
                body: Any = json.loads(raw)
            except ValueError:
                body = raw
            headers = dict(props.headers or {})
            self._seen.append(BusMessage(method.routing_key, body, headers))

    def messages(self) -> list[BusMessage]:
        """Every message received so far, in arrival order."""
        self._drain()
        return list(self._seen)

    def topics(self) -> list[str]:
        """Topics of every message received so far."""
        return [m.topic for m in self.messages()]

    def wait_for(
        self,
        match: str | Callable[[BusMessage], bool],
        count: int = 1,
        timeout: float = 10.0,
    ) -> list[BusMessage]:
        """Wait until ``count`` messages match; return the first ``count`` matches.

        ``match`` is a topic (exact, or an fnmatch glob such as ``fedimg.*.aws.*`` where ``*``
        also spans dots) or a predicate over ``BusMessage``. Raises AssertionError listing the
        topics seen if the timeout passes.
        """
        if callable(match):
            pred = match
        else:
            pattern = match

            def pred(m: BusMessage) -> bool:
                return m.topic == pattern or fnmatch.fnmatchcase(m.topic, pattern)

        deadline = time.monotonic() + timeout
        while True:
            found = [m for m in self.messages() if pred(m)]
            if len(found) >= count:
                return found[:count]
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"expected {count} message(s) matching {match!r} within {timeout}s, got "
                    f"{len(found)}; topics seen: {[m.topic for m in self._seen]}"
                )
            time.sleep(0.05)

    def close(self) -> None:
        """Close the connection; the exclusive queue goes with it."""
        with contextlib.suppress(Exception):
            self._conn.close()


# --------------------------------------------------------------------------------------------
# Real consumer processes
# --------------------------------------------------------------------------------------------


def consumer_env(config_path: os.PathLike[str] | str, env: Mapping[str, str] | None) -> dict:
    """Environment for a consumer subprocess: ours + the config + repo root on PYTHONPATH."""
    full = dict(os.environ)
    full["FEDORA_MESSAGING_CONF"] = str(config_path)
    full["PYTHONUNBUFFERED"] = "1"
    full["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT), full.get("PYTHONPATH", "")) if p
    )
    full.update(env or {})
    return full


@contextlib.contextmanager
def consumer_process(
    callback: str,
    config_path: os.PathLike[str] | str,
    *,
    env: Mapping[str, str] | None = None,
    log_path: os.PathLike[str] | str | None = None,
    ready_timeout: float = 30.0,
    stop_timeout: float = 10.0,
) -> Iterator[ManagedProcess]:
    """Run ``fedora-messaging --conf CFG consume --callback=CALLBACK`` until the block ends.

    Yields once the consumer logged "Successfully registered AMQP consumer", i.e. its queue is
    declared and bound, so anything published afterwards reaches it. Stopped by PID (TERM, then
    KILL after ``stop_timeout``) even if the block raises.
    """
    if log_path is None:
        log_dir = pathlib.Path(os.environ.get("TMPDIR", "/tmp"))
        log_path = log_dir / f"fedimg-consumer-{uuid.uuid4().hex[:8]}.log"
    argv = [
        str(FEDORA_MESSAGING_CLI),
        "--conf",
        str(config_path),
        "consume",
        f"--callback={callback}",
    ]
    proc = ManagedProcess(
        f"consumer {callback}",
        argv,
        pathlib.Path(log_path),
        env=consumer_env(config_path, env),
        cwd=REPO_ROOT,
    )
    try:
        proc.wait_for_output(REGISTERED_MARKER, ready_timeout)
        yield proc
    finally:
        proc.stop(stop_timeout)


