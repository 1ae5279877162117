"""The real message-history stack: RabbitMQ -> datanommer consumer -> PostgreSQL -> datagrepper.

Why real: fedimg's reporter rebuilds everything from datagrepper's /raw, whose paging, time-window
and ordering quirks are exactly what unit fakes get wrong. Messages reach it the production way:
published with fedora-messaging to the caller's exchange, stored by datanommer's own consumer,
served by datagrepper under gunicorn.

Shared servers, private state: it uses PostgreSQL on 127.0.0.1:5432 (a database of the caller's
own, see ``standins.postgres``) and RabbitMQ on 5672 (a durable queue bound to the caller's
exchange). Both processes run with TZ=UTC and the database pins timezone=UTC: datanommer and
datagrepper convert timestamps with local time.

The datanommer and datagrepper configuration and command lines are defined here once, for the
test sessions (``start_history_stack``) and for the local demo stack alike.
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

import requests

from standins import StandinError
from standins.amqp import (
    REGISTERED_MARKER,
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
from standins.postgres import create_database, drop_database_quietly, pg_connect
from standins.processes import ManagedProcess, ProcessExited, free_port, wait_until

VENV_BIN = pathlib.Path(sys.executable).parent
GUNICORN = VENV_BIN / "gunicorn"
FEDORA_MESSAGING_CLI = VENV_BIN / "fedora-messaging"
NOMMER_CALLBACK = "datanommer.consumer:Nommer"
START_TIMEOUT = 60.0  # seconds for each process to become ready
HTTP_TIMEOUT = 10.0  # seconds per HTTP request to datagrepper
SCHEMA_TIMEOUT = 120  # seconds for the datanommer schema script
# datanommer keeps users/packages name->id caches in-process, so those two tables are never
# truncated (see reset()); only messages and the association tables are.
RESET_SQL = (
    "TRUNCATE messages, users_messages, packages_messages RESTART IDENTITY; "
    "REFRESH MATERIALIZED VIEW recent_topics;"
)

MessageSpec = tuple  # (topic, body) or (topic, body, sent_at) or (topic, body, sent_at, cls)


# --------------------------------------------------------------------------------------------
# Configuration and command lines (one definition for the tests and the demo stack)
# --------------------------------------------------------------------------------------------


def create_schema(db_url: str, create_db: bool = False) -> None:
    """Run ``python -m standins.datanommer_schema`` against ``db_url``; StandinError on failure.

    A subprocess, because the schema script changes datanommer's table hooks in its own process.
    """
    argv = [sys.executable, "-m", "standins.datanommer_schema", db_url]
    if create_db:
        argv.insert(3, "--create-database")
    run = subprocess.run(argv, capture_output=True, text=True, timeout=SCHEMA_TIMEOUT)
    if run.returncode != 0:
        raise StandinError(
            f"creating the datanommer schema failed: {(run.stdout + run.stderr).strip()}"
        )


def datanommer_toml(exchange: str, queue: str, db_url: str, app: str, **extra: Any) -> str:
    """fedora-messaging config of a datanommer consumer on the durable ``queue`` bound to '#'."""
    return fedora_messaging_toml(
        exchange=exchange, queue=queue, routing_keys=["#"],
        consumer_config={"datanommer_sqlalchemy_url": db_url}, callback=NOMMER_CALLBACK,
        app=app, extra_loggers=("datanommer", "datanommer-consumer"), **extra)


def datanommer_argv(config: pathlib.Path) -> list[str]:
    """Command line of the datanommer consumer for fedora-messaging config ``config``."""
    return [str(FEDORA_MESSAGING_CLI), "--conf", str(config), "consume",
            f"--callback={NOMMER_CALLBACK}"]


def datagrepper_cfg(db_url: str, url: str) -> str:
    """Text of datagrepper's config file (exact counts, no default time window)."""
    return (f"DATANOMMER_SQLALCHEMY_URL = {db_url!r}\n"
            "DATAGREPPER_APPROXIMATE_COUNT = False\n"
            "DEFAULT_QUERY_DELTA = 0\n"
            f"APP_PATH = {url!r}\n")


def datagrepper_argv(port: int, access_log: pathlib.Path) -> list[str]:
    """Command line of datagrepper under gunicorn on 127.0.0.1:``port``."""
    return [str(GUNICORN), "--bind", f"127.0.0.1:{port}", "--workers", "2", "--timeout", "60",
            "--graceful-timeout", "5", "--access-logfile", str(access_log),
            "datagrepper.app:app"]


def datagrepper_ready(url: str) -> bool:
    """True once datagrepper at ``url`` answers its readiness check."""
    return requests.get(f"{url}/healthz/ready", timeout=2).status_code == 200


# --------------------------------------------------------------------------------------------
# A running stack
# --------------------------------------------------------------------------------------------


class Datagrepper:
    """Handle on a running history stack: datagrepper's HTTP API, publishing, the database."""

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
            raise StandinError(
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
        conn = pg_connect(self.database_url)
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
        db = pg_connect(self.database_url)
        try:
            with db.cursor() as cur:
                cur.execute(f"SET statement_timeout = {int(timeout * 1000)}")
                cur.execute(RESET_SQL)
        finally:
            db.close()

    def count(self) -> int:
        """Number of stored messages (straight from the database)."""
        db = pg_connect(self.database_url)
        try:
            with db.cursor() as cur:
                cur.execute("SELECT count(*) FROM messages")
                return int(cur.fetchone()[0])
        finally:
            db.close()


def _ready(server: ManagedProcess, url: str) -> bool:
    if not server.alive():
        raise ProcessExited(f"datagrepper exited with {server.proc.returncode}:\n{server.tail()}")
    return datagrepper_ready(url)


@contextlib.contextmanager
def start_history_stack(exchange: str, work: pathlib.Path,
                        app: str = "fedimg-tests") -> Iterator[Datagrepper]:
    """A whole history stack on ``exchange`` (a few seconds to start); stopped by PID at exit.

    Makes a fresh database ``fedimg_dg_<uuid8>`` and a unique durable queue, and removes both at
    exit. StandinError if PostgreSQL is unreachable or the schema cannot be made.
    """
    db_name = f"fedimg_dg_{uuid.uuid4().hex[:8]}"
    db_url = create_database(db_name)
    queue = unique_name("datanommer")
    procs: list[ManagedProcess] = []
    try:
        create_schema(db_url)
        # Queue first, so nothing published from here on is lost even before the consumer runs.
        declare_durable_queue(queue, exchange, ["#"])
        consumer_cfg = work / "datanommer.toml"
        consumer_cfg.write_text(datanommer_toml(exchange, queue, db_url, f"{app}-datanommer"))
        publisher_cfg = work / "publisher.toml"
        publisher_cfg.write_text(fedora_messaging_toml(exchange=exchange, app=f"{app}-publisher"))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        dg_cfg = work / "datagrepper.cfg"
        dg_cfg.write_text(datagrepper_cfg(db_url, url))

        # Start both, then wait for both: they become ready in parallel.
        consumer = ManagedProcess(
            "datanommer consumer", datanommer_argv(consumer_cfg), work / "datanommer.log",
            env={**consumer_env(consumer_cfg, None), "TZ": "UTC"}, cwd=work)
        procs.append(consumer)
        server = ManagedProcess(
            "datagrepper", datagrepper_argv(port, work / "datagrepper-access.log"),
            work / "datagrepper.log",
            env={**os.environ, "TZ": "UTC", "DATAGREPPER_CONFIG": str(dg_cfg),
                 "PYTHONUNBUFFERED": "1"},
            cwd=work)
        procs.append(server)
        t0 = time.monotonic()
        consumer.wait_for_output(REGISTERED_MARKER, START_TIMEOUT)
        wait_until(lambda: _ready(server, url), START_TIMEOUT, f"datagrepper at {url}", 0.1)
        print(f"datagrepper stack ready in {time.monotonic() - t0:.1f}s at {url} ({db_name})")

        yield Datagrepper(url, db_url, exchange, queue, publisher_cfg, consumer, server)
    finally:
        for proc in reversed(procs):
            proc.stop(15)
        delete_queues([queue])
        drop_database_quietly(db_name)
