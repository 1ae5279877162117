"""The real message-history stack: RabbitMQ -> datanommer consumer -> PostgreSQL -> datagrepper.

Why real: the reporter rebuilds everything from datagrepper's /raw, whose paging, time-window and
ordering quirks (see /work/shared/local-stack.md) are exactly what unit fakes get wrong. Messages
reach it the production way: published with fedora-messaging to this session's exchange, stored
by datanommer's own consumer, served by datagrepper under gunicorn.

Shared servers, private state: it reuses PostgreSQL on 127.0.0.1:5432 (a fresh database
``fedimg_dg_<uuid8>`` per session, dropped at the end) and RabbitMQ on 5672 (a unique durable
queue bound to the session exchange). Both processes run with TZ=UTC and the database pins
timezone=UTC: datanommer and datagrepper convert timestamps with local time (pitfall 5).

If PostgreSQL is unreachable the fixture FAILS with a clear message: skipping would hide a broken
test environment.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import pathlib
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
import requests

from tests.harness.amqp import (
    REPO_ROOT,
    build_message,
    consumer_env,
    declare_durable_queue,
    delete_queues,
    fedora_messaging_toml,
    pika_connection,
    publish_message,
    unique_name,
    use_fedora_messaging_config,
)
from tests.harness.processes import ManagedProcess, ProcessExited, free_port, wait_until

PG_ADMIN_URL = "postgresql://postgres:postgres@127.0.0.1:5432/postgres"
SCHEMA_SCRIPT = REPO_ROOT / "deploy" / "local" / "create_datanommer_schema.py"
GUNICORN = pathlib.Path(sys.executable).parent / "gunicorn"
FEDORA_MESSAGING_CLI = pathlib.Path(sys.executable).parent / "fedora-messaging"
START_TIMEOUT = 60.0  # seconds for each process to become ready
HTTP_TIMEOUT = 10.0  # seconds per HTTP request to datagrepper
# datanommer keeps users/packages name->id caches in-process, so those two tables are never
# truncated (see reset()); only messages and the association tables are.
RESET_SQL = (
    "TRUNCATE messages, users_messages, packages_messages RESTART IDENTITY; "
    "REFRESH MATERIALIZED VIEW recent_topics;"
)

MessageSpec = tuple  # (topic, body) or (topic, body, sent_at) or (topic, body, sent_at, cls)


def _pg_connect(url: str) -> Any:
    import psycopg2

    conn = psycopg2.connect(url, connect_timeout=5)
    conn.autocommit = True
    return conn


class Datagrepper:
    """Handle on the running stack (``datagrepper`` / ``datagrepper_empty`` fixtures)."""

    def __init__(
        self,
        url: str,
        database_url: str,
        exchange: str,
        queue: str,
        publisher_config: pathlib.Path,
        consumer: ManagedProcess,
        server: ManagedProcess,
    ) -> None:
        self.url = url
        self.database_url = database_url
        self.exchange = exchange
        self.queue = queue
        self.publisher_config = publisher_config
        self.consumer = consumer
        self.server = server
        self._http = requests.Session()
        self._http.headers["Accept"] = "application/json"

    # ---- HTTP -------------------------------------------------------------------------------

    def get(self, path: str, **params: Any) -> requests.Response:
        """GET ``path`` (e.g. "/raw") with JSON Accept header and a bounded timeout."""
        return self._http.get(f"{self.url}{path}", params=params, timeout=HTTP_TIMEOUT)

    def raw(self, **params: Any) -> dict[str, Any]:
        """``/raw`` as JSON; e.g. ``raw(topic=t, order="asc", rows_per_page=100)``."""
        resp = self.get("/raw", **params)
        resp.raise_for_status()
        return resp.json()

    def message(self, msg_id: str) -> dict[str, Any] | None:
        """``/id?id=...`` as JSON, or None if datagrepper does not have it (404)."""
        resp = self.get("/id", id=msg_id)
        if resp.status_code == 404:
            return None
        resp.raise_for_status()
        return resp.json()

    # ---- feeding it -------------------------------------------------------------------------

    def publish(self, messages: Sequence[MessageSpec]) -> list[Any]:
        """Publish ``(topic, body[, sent_at[, message_class]])`` tuples through RabbitMQ."""
        published = []
        with use_fedora_messaging_config(self.publisher_config):
            for spec in messages:
                topic, body, *rest = spec
                sent_at = rest[0] if rest else None
                cls = rest[1] if len(rest) > 1 else None
                msg = build_message(topic, body, sent_at=sent_at, message_class=cls)
                published.append(publish_message(msg, exchange=self.exchange))
        return published

    def wait_for_ids(self, msg_ids: Sequence[str], timeout: float = 30.0) -> None:
        """Wait until datagrepper's /id returns every one of ``msg_ids``."""
        pending = list(msg_ids)

        def all_stored() -> bool:
            if not self.consumer.alive():
                raise ProcessExited(f"datanommer consumer died:\n{self.consumer.tail()}")
            while pending and self.message(pending[0]) is not None:
                pending.pop(0)
            return not pending

        try:
            wait_until(all_stored, timeout, f"{len(pending)} message(s) in datagrepper", 0.05)
        except TimeoutError as exc:
            raise AssertionError(
                f"{exc}; missing ids {pending}\n--- datanommer ---\n{self.consumer.tail()}"
            ) from None

    def publish_and_wait(self, messages: Sequence[MessageSpec], timeout: float = 30.0) -> list[str]:
        """Publish ``(topic, body[, sent_at])`` messages and wait until datagrepper serves each.

        ``sent_at`` (datetime, naive = UTC, or ISO string) backdates the message: datanommer
        stores it as the timestamp. Returns the msg_ids in order.
        """
        ids = [m.id for m in self.publish(messages)]
        self.wait_for_ids(ids, timeout)
        return ids

    def insert_legacy(
        self,
        topic: str,
        body: Any,
        timestamp: float | dt.datetime,
        *,
        msg_id: str | None = None,
        agent_name: str | None = None,
    ) -> str:
        """Insert a fedmsg-era row directly (headers NULL, crypto x509), as 2014-2020 rows look.

        Such rows cannot be produced through fedora-messaging, yet the reporter must read them.
        Returns the msg_id.
        """
        import json

        if isinstance(timestamp, int | float):
            timestamp = dt.datetime.fromtimestamp(timestamp, dt.UTC)
        if timestamp.tzinfo is not None:
            timestamp = timestamp.astimezone(dt.UTC).replace(tzinfo=None)
        msg_id = msg_id or f"{timestamp.year}-{uuid.uuid4()}"
        parts = topic.split(".")
        category = parts[3] if len(parts) > 3 else "Unclassified"  # datanommer's own rule
        conn = _pg_connect(self.database_url)
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "INSERT INTO messages (msg_id, i, topic, timestamp, certificate, signature,"
                    " category, agent_name, crypto, source_name, source_version, msg, headers)"
                    " VALUES (%s, 1, %s, %s, 'LS0tLS1CRUdJTi...', 'MbQSb1uw...', %s, %s, 'x509',"
                    " 'datanommer', '0.6.5', %s, NULL)",
                    (msg_id, topic, timestamp, category, agent_name, json.dumps(body)),
                )
        finally:
            conn.close()
        return msg_id

    # ---- state ------------------------------------------------------------------------------

    def reset(self, timeout: float = 10.0) -> None:
        """Empty the history: purge the consumer's queue, TRUNCATE, refresh the view.

        The queue is purged first so a straggler from the previous test cannot land after the
        truncate. users/packages rows are kept (datanommer caches their ids in-process).
        """
        conn = pika_connection()
        try:
            conn.channel().queue_purge(self.queue)
        finally:
            conn.close()
        db = _pg_connect(self.database_url)
        try:
            with db.cursor() as cur:
                cur.execute(f"SET statement_timeout = {int(timeout * 1000)}")
                cur.execute(RESET_SQL)
        finally:
            db.close()

    def count(self) -> int:
        """Number of stored messages (straight from the database)."""
        db = _pg_connect(self.database_url)
        try:
            with db.cursor() as cur:
                cur.execute("SELECT count(*) FROM messages")
                return int(cur.fetchone()[0])
        finally:
            db.close()


def _create_database(name: str) -> str:
    """Create ``name`` on the shared server; FAIL the session clearly if PostgreSQL is down."""
    try:
        admin = _pg_connect(PG_ADMIN_URL)
    except Exception as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {PG_ADMIN_URL.rsplit('@', 1)[-1]} ({exc}). "
            "The datagrepper fixtures need it; start PostgreSQL (trust auth) and rerun."
        )
    try:
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
            cur.execute(f"ALTER DATABASE \"{name}\" SET timezone TO 'UTC'")
    finally:
        admin.close()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def _drop_database(name: str) -> None:
    """Drop the session database, even if something still holds a connection."""
    with contextlib.suppress(Exception):
        admin = _pg_connect(PG_ADMIN_URL)
        try:
            with admin.cursor() as cur:
                cur.execute("SET statement_timeout = 30000")
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            admin.close()


def _ready(server: ManagedProcess, url: str) -> bool:
    if not server.alive():
        raise ProcessExited(f"datagrepper exited with {server.proc.returncode}:\n{server.tail()}")
    return requests.get(f"{url}/healthz/ready", timeout=2).status_code == 200


@pytest.fixture(scope="session")
def datagrepper(
    amqp_exchange: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Datagrepper]:
    """The whole history stack, started once per session (a few seconds), torn down by PID."""
    work = tmp_path_factory.mktemp("datagrepper")
    tag = uuid.uuid4().hex[:8]
    db_name = f"fedimg_dg_{tag}"
    db_url = _create_database(db_name)
    queue = unique_name("datanommer")
    procs: list[ManagedProcess] = []
    try:
        schema = subprocess.run(
            [sys.executable, str(SCHEMA_SCRIPT), db_url],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if schema.returncode != 0:
            pytest.fail(f"datanommer schema creation failed:\n{schema.stdout}{schema.stderr}")

        # Queue first, so nothing published from here on is lost even before the consumer runs.
        declare_durable_queue(queue, amqp_exchange, ["#"])
        consumer_cfg = work / "datanommer.toml"
        consumer_cfg.write_text(
            fedora_messaging_toml(
                exchange=amqp_exchange,
                queue=queue,
                consumer_config={"datanommer_sqlalchemy_url": db_url},
                callback="datanommer.consumer:Nommer",
                app="fedimg-tests-datanommer",
                extra_loggers=("datanommer", "datanommer-consumer"),
            )
        )
        publisher_cfg = work / "publisher.toml"
        publisher_cfg.write_text(
            fedora_messaging_toml(exchange=amqp_exchange, app="fedimg-tests-publisher")
        )

        port = free_port()
        url = f"http://127.0.0.1:{port}"
        dg_cfg = work / "datagrepper.cfg"
        dg_cfg.write_text(
            f"DATANOMMER_SQLALCHEMY_URL = {db_url!r}\n"
            "DATAGREPPER_APPROXIMATE_COUNT = False\n"
            "DEFAULT_QUERY_DELTA = 0\n"
            f"APP_PATH = {url!r}\n"
        )

        # Start both, then wait for both: they become ready in parallel.
        consumer = ManagedProcess(
            "datanommer consumer",
            [
                str(FEDORA_MESSAGING_CLI),
                "--conf",
                str(consumer_cfg),
                "consume",
                "--callback=datanommer.consumer:Nommer",
            ],
            work / "datanommer.log",
            env={**consumer_env(consumer_cfg, None), "TZ": "UTC"},
            cwd=work,
        )
        procs.append(consumer)
        server = ManagedProcess(
            "datagrepper",
            [
                str(GUNICORN),
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
                "--timeout",
                "60",
                "--graceful-timeout",
                "5",
                "--access-logfile",
                str(work / "datagrepper-access.log"),
                "datagrepper.app:app",
            ],
            work / "datagrepper.log",
            env={
                **os.environ,
                "TZ": "UTC",
                "DATAGREPPER_CONFIG": str(dg_cfg),
                "PYTHONUNBUFFERED": "1",
            },
            cwd=work,
        )
        procs.append(server)
        t0 = time.monotonic()
        consumer.wait_for_output("Successfully registered AMQP consumer", START_TIMEOUT)
        wait_until(lambda: _ready(server, url), START_TIMEOUT, f"datagrepper at {url}", 0.1)
        print(f"datagrepper stack ready in {time.monotonic() - t0:.1f}s at {url} ({db_name})")

        yield Datagrepper(url, db_url, amqp_exchange, queue, publisher_cfg, consumer, server)
    finally:
        for proc in reversed(procs):
            proc.stop(15)
        delete_queues([queue])
        _drop_database(db_name)


@pytest.fixture
def datagrepper_empty(datagrepper: Datagrepper) -> Datagrepper:
    """The session stack with an empty history, for tests that count what comes back."""
    datagrepper.reset()
    return datagrepper
