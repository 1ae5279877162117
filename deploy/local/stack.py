#!/usr/bin/env python3
"""The local demo stack on loopback: bring it up, report its state, tear it down.

    .venv/bin/python deploy/local/stack.py up|status|down

Run it with the project's venv python (``make demo`` does). Everything listens on 127.0.0.1:

- RabbitMQ: the running broker on :5672 (``make services`` starts it); exchange ``fedimg-demo``
- PostgreSQL: the running server on :5432; database ``fedimg_demo``
- datanommer: ``fedora-messaging consume --callback=datanommer.consumer:Nommer``, durable queue
  ``fedimg-demo-datanommer`` bound to ``#``
- datagrepper: gunicorn, TZ=UTC, on PORT (default 5380)
- AWS: ``moto_server`` on PORT+1, reached through AWS_ENDPOINT_URL
- Koji: deploy/local/koji_standin.py, HTTPS hub + /kojifiles with TLS client certs on PORT+2,
  its control endpoint (POST /finish/<task>: fill + announce) on PORT+3
- web: ``python -m http.server`` over ``www/`` (downloads + report site) on PORT+4
- uploader: ``fedora-messaging consume --callback=uploader.consumer:Uploader``, one service
  (and one queue) per target

State lives in ``$FEDIMG_DEMO_DIR`` (default /tmp/fedimg-demo): ``run/<name>.json`` (PID and
command line of each process; every process is stopped by that PID, after checking that the PID
still runs that command line), ``logs/``, ``conf/`` (every config file), ``koji/``, ``www/``.
``$FEDIMG_DEMO_PORT`` moves the port block.

Reuse: a part that is running and healthy is kept. moto and the Koji stand-in hold their state in
memory, so if either is not running the stack starts a new *generation*: it stops whatever of
ours still runs, drops the demo database, deletes the demo queues and the download directory, and
starts everything fresh, so AWS, Koji, the downloads and the history always agree. The uploader
services are restarted at every ``up`` so they run the current code and config.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import pathlib
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import requests  # noqa: E402
import tomli_w  # noqa: E402
from pidfiles import (  # noqa: E402, F401 - demo.py uses them through this module
    Service,
    StackError,
    log_path,
    log_tail,
    running_pid,
    start,
    stop,
    wait_ready,
)

from tests.harness.amqp import AMQP_HOST, AMQP_PORT, fedora_messaging_toml  # noqa: E402

VENV_BIN = pathlib.Path(sys.executable).parent
PG_ADMIN_URL = "postgresql://postgres:postgres@127.0.0.1:5432/postgres"
REGISTERED = "Successfully registered AMQP consumer"
HTTP_TIMEOUT = 5.0
TOPIC_PREFIX = "org.fedoraproject.demo"
# What the uploader listens to (after the prefix): Koji task/build completion, finished composes.
UPLOADER_TOPICS = ("buildsys.task.state.change", "buildsys.build.state.change",
                   "pungi.compose.status.change")
REGIONS = ["us-east-1", "us-east-2", "eu-west-1"]
# Quorum queues, as in production: RabbitMQ counts deliveries (x-delivery-count, which the
# uploader reads) and drops a message after x-delivery-limit returns, so nothing loops forever.
UPLOADER_QUEUE_ARGS = {"x-queue-type": "quorum", "x-delivery-limit": 5}
ARCHES = ["x86_64", "aarch64"]
JOB = "cloud-base-rawhide-weekly"


@dataclasses.dataclass(frozen=True)
class Stack:
    """Paths, ports and names of one local stack (derived from the environment)."""

    root: pathlib.Path
    port: int
    exchange: str = "fedimg-demo"
    database: str = "fedimg_demo"

    @classmethod
    def from_env(cls) -> Stack:
        root = pathlib.Path(os.environ.get("FEDIMG_DEMO_DIR", "/tmp/fedimg-demo")).resolve()
        return cls(root=root, port=int(os.environ.get("FEDIMG_DEMO_PORT", "5380")))

    # ports -------------------------------------------------------------------------------
    @property
    def datagrepper_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def moto_url(self) -> str:
        return f"http://127.0.0.1:{self.port + 1}"

    @property
    def koji_port(self) -> int:
        return self.port + 2

    @property
    def koji_hub(self) -> str:
        return f"https://127.0.0.1:{self.koji_port}/kojihub"

    @property
    def koji_topurl(self) -> str:
        return f"https://127.0.0.1:{self.koji_port}/kojifiles"

    @property
    def koji_control(self) -> str:
        return f"http://127.0.0.1:{self.port + 3}"

    @property
    def www_url(self) -> str:
        return f"http://127.0.0.1:{self.port + 4}"

    # paths -------------------------------------------------------------------------------
    def dir(self, name: str) -> pathlib.Path:
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def conf(self) -> pathlib.Path:
        return self.dir("conf")

    @property
    def downloads(self) -> pathlib.Path:
        return self.dir("www") / "downloads"

    @property
    def site(self) -> pathlib.Path:
        return self.dir("www") / "site"

    @property
    def work(self) -> pathlib.Path:
        return self.dir("work")

    @property
    def ca_cert(self) -> pathlib.Path:
        return self.root / "koji" / "pki" / "ca.pem"

    def client_cert(self, user: str) -> pathlib.Path:
        return self.root / "koji" / "pki" / f"user-{user}.pem"

    @property
    def database_url(self) -> str:
        return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + self.database

    @property
    def fedimg_config(self) -> pathlib.Path:
        return self.conf / "fedimg.toml"

    @property
    def publisher_config(self) -> pathlib.Path:
        return self.conf / "publisher.toml"

    def queue(self, name: str) -> str:
        return f"{self.exchange}-{name}"

    def aws_env(self) -> dict[str, str]:
        """boto3 finds moto through its standard chain; nothing from ~/.aws leaks in."""
        return {
            "AWS_ENDPOINT_URL": self.moto_url, "AWS_ACCESS_KEY_ID": "demo",
            "AWS_SECRET_ACCESS_KEY": "demo", "AWS_DEFAULT_REGION": REGIONS[0],
            "AWS_REGION": REGIONS[0], "AWS_CONFIG_FILE": str(self.conf / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.conf / "no-aws-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for our subprocesses: this checkout first on PYTHONPATH, UTC, AWS->moto."""
        env = {k: v for k, v in os.environ.items()
               if not (k.startswith("AWS_") or k in ("FEDORA_MESSAGING_CONF", "FEDIMG_CONFIG"))}
        env.update(self.aws_env())
        env.update(PYTHONPATH=str(REPO_ROOT), PYTHONUNBUFFERED="1", TZ="UTC",
                   FEDIMG_CONFIG=str(self.fedimg_config))
        env.update(extra)
        return env


# readiness checks -------------------------------------------------------------------------


def _http_ok(url: str) -> bool:
    return requests.get(url, timeout=HTTP_TIMEOUT).status_code < 400


def _registered(stack: Stack, svc: Service) -> bool:
    return REGISTERED in log_path(stack, svc.name).read_text(errors="replace")


# ------------------------------------------------------------------------------------------
# Shared services: RabbitMQ and PostgreSQL


def check_shared_services() -> None:
    import pika
    import psycopg2

    try:
        conn = pika.BlockingConnection(pika.URLParameters(
            f"amqp://guest:guest@{AMQP_HOST}:{AMQP_PORT}/%2F?socket_timeout=5"
            "&connection_attempts=1"))
        conn.close()
    except Exception as exc:
        raise StackError(f"RabbitMQ is not reachable on {AMQP_HOST}:{AMQP_PORT} as guest ({exc!r});"
                         " run `make services` (it starts an installed RabbitMQ) or "
                         "`apt-get install rabbitmq-server`") from None
    try:
        psycopg2.connect(PG_ADMIN_URL, connect_timeout=5).close()
    except Exception as exc:
        raise StackError(f"PostgreSQL is not reachable on 127.0.0.1:5432 as postgres "
                         f"({str(exc).strip()}); run `make services` or "
                         "`apt-get install postgresql`") from None


def _pg(url: str = PG_ADMIN_URL) -> Any:
    import psycopg2

    conn = psycopg2.connect(url, connect_timeout=5)
    conn.autocommit = True
    return conn


def drop_database(stack: Stack) -> None:
    conn = _pg()
    try:
        with conn.cursor() as cur:
            cur.execute("SET statement_timeout = 30000")
            cur.execute(f'DROP DATABASE IF EXISTS "{stack.database}" WITH (FORCE)')
    finally:
        conn.close()


def ensure_database(stack: Stack) -> None:
    """The demo database with datanommer's schema (idempotent, UTC)."""
    script = REPO_ROOT / "deploy" / "local" / "create_datanommer_schema.py"
    run = subprocess.run([sys.executable, str(script), "--create-database", stack.database_url],
                         capture_output=True, text=True, timeout=120)
    if run.returncode != 0:
        raise StackError(f"creating the datanommer schema failed: {run.stderr.strip()}")


def _pika() -> Any:
    import pika

    return pika.BlockingConnection(pika.URLParameters(
        f"amqp://guest:guest@{AMQP_HOST}:{AMQP_PORT}/%2F?socket_timeout=5&heartbeat=0"))


def declare_bus(stack: Stack, queues: dict[str, tuple[list[str], dict[str, Any]]]) -> None:
    """The demo exchange and our durable queues, bound before anything publishes."""
    conn = _pika()
    try:
        ch = conn.channel()
        ch.exchange_declare(stack.exchange, exchange_type="topic", durable=True,
                            auto_delete=False)
        for queue, (keys, arguments) in queues.items():
            ch.queue_declare(queue, durable=True, exclusive=False, auto_delete=False,
                             arguments=arguments)
            for key in keys:
                ch.queue_bind(queue, stack.exchange, routing_key=key)
    finally:
        conn.close()


def delete_queues(stack: Stack, queues: list[str]) -> None:
    """Delete only queues of this stack (their names start with the demo exchange's)."""
    conn = _pika()
    try:
        for queue in queues:
            assert queue.startswith(stack.exchange + "-"), queue
            ch = conn.channel()
            ch.queue_delete(queue)
            ch.close()
    finally:
        conn.close()


# ------------------------------------------------------------------------------------------
# Configuration files


def fedimg_settings(stack: Stack) -> dict[str, dict[str, Any]]:
    """The demo's fedimg config, keyed like deploy/fedimg.toml.example."""
    return {
        "koji": {"hub": stack.koji_hub, "topurl": stack.koji_topurl, "owners": ["releng"],
                 "auth": "ssl", "cert": str(stack.client_cert("releng")),
                 "serverca": str(stack.ca_cert), "timeout": 30, "retries": 2,
                 "retry_interval": 2},
        "uploader": {"targets": ["aws", "downloads"], "work_dir": str(stack.work),
                     "subvariants": ["Cloud_Base"], "image_types": ["raw-xz"],
                     "fetch_timeout": 30, "fetch_retries": 2, "retry_delay": 2,
                     "max_deliveries": 5},
        "compose": {"base_url": stack.koji_topurl.rsplit("/", 1)[0] + "/compose"},
        "aws": {"base_region": REGIONS[0], "regions": REGIONS, "public": True,
                "volume_type": "gp3", "max_parallel_copies": 3, "copy_timeout": 300},
        "downloads": {"destination": str(stack.downloads),
                      "base_url": f"{stack.www_url}/downloads", "qcow2_compression": "zlib",
                      "xz_threads": 0, "timeout": 600},
        "reporter": {"datagrepper": stack.datagrepper_url, "timeout": 20, "retries": 2},
    }


def demo_job() -> dict[str, Any]:
    return {
        "name": JOB, "schedule": "weekly", "image_name": "Fedora-Cloud-Base",
        "version": "Rawhide", "target": "f44", "distro": "Fedora-44",
        "ksurl": "git+https://pagure.io/fedora-kickstarts.git?#main",
        "kickstart": "fedora-cloud-base.ks",
        "install_tree": "https://kojipkgs.fedoraproject.org/compose/rawhide/"
                        "latest-Fedora-Rawhide/compose/Cloud/$arch/os/",
        "arches": ARCHES, "formats": ["raw-xz", "qcow2"], "repos": [], "scratch": True,
        "method": "image", "disk_size": 5,
    }


def render_fedimg_toml(stack: Stack, **overrides: dict[str, Any]) -> str:
    """TOML text; ``overrides`` replace keys per section (e.g. uploader={"targets": ["aws"]})."""
    settings = fedimg_settings(stack)
    for section, values in overrides.items():
        settings[section] = {**settings[section], **values}
    return ("# Written by deploy/local/stack.py for the local demo stack; rewritten at every up.\n"
            + tomli_w.dumps({**settings, "trigger": {"jobs": [demo_job()]}}))


def write_configs(stack: Stack) -> None:
    from shared.config import load_config

    stack.fedimg_config.write_text(render_fedimg_toml(stack))
    try:
        load_config(stack.fedimg_config)
    except Exception as exc:
        raise StackError(f"the demo fedimg config does not load: {exc}") from None
    stack.publisher_config.write_text(fedora_messaging_toml(
        exchange=stack.exchange, topic_prefix=TOPIC_PREFIX, app="fedimg-demo"))
    (stack.conf / "datanommer.toml").write_text(fedora_messaging_toml(
        exchange=stack.exchange, queue=stack.queue("datanommer"), routing_keys=["#"],
        consumer_config={"datanommer_sqlalchemy_url": stack.database_url},
        callback="datanommer.consumer:Nommer", app="fedimg-demo-datanommer",
        extra_loggers=("datanommer", "datanommer-consumer")))
    (stack.conf / "datagrepper.cfg").write_text(
        f"DATANOMMER_SQLALCHEMY_URL = {stack.database_url!r}\n"
        "DATAGREPPER_APPROXIMATE_COUNT = False\nDEFAULT_QUERY_DELTA = 0\n"
        f"APP_PATH = {stack.datagrepper_url!r}\n")
    for up in uploaders(stack):
        (stack.conf / f"{up.name}.toml").write_text(fedora_messaging_toml(
            exchange=stack.exchange, queue=up.queue, routing_keys=up.routing_keys,
            queue_arguments=UPLOADER_QUEUE_ARGS, prefetch_count=1, topic_prefix=TOPIC_PREFIX,
            callback="uploader.consumer:Uploader", app=f"fedimg-demo-{up.name}",
            consumer_config={"fedimg_config": str(stack.fedimg_config), "targets": up.targets},
            extra_loggers=("uploader", "shared")))


# ------------------------------------------------------------------------------------------
# The parts


@dataclasses.dataclass(frozen=True)
class Uploader:
    """One uploader service: its own queue and its own targets (one queue per target)."""

    name: str
    queue: str
    targets: list[str]
    routing_keys: list[str]


def uploaders(stack: Stack) -> list[Uploader]:
    keys = [f"{TOPIC_PREFIX}.{t}" for t in UPLOADER_TOPICS]
    return [Uploader(f"uploader-{t}", stack.queue(f"uploader-{t}"), [t], keys)
            for t in ("aws", "downloads")]


def services(stack: Stack) -> list[Service]:
    py = sys.executable
    fm = str(VENV_BIN / "fedora-messaging")
    env = stack.env()
    out = [
        Service("moto", [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p",
                         str(stack.port + 1)], env,
                lambda s, _: _http_ok(f"{s.moto_url}/moto-api/")),
        Service("koji", [py, str(REPO_ROOT / "deploy/local/koji_standin.py"), "--workdir",
                         str(stack.dir("koji")), "--port", str(stack.koji_port),
                         "--control-port", str(stack.port + 3), "--arches", ",".join(ARCHES)],
                stack.env(FEDORA_MESSAGING_CONF=str(stack.publisher_config)),
                lambda s, _: _http_ok(f"{s.koji_control}/health")),
        Service("datagrepper", [str(VENV_BIN / "gunicorn"), "--bind",
                                f"127.0.0.1:{stack.port}", "--workers", "2", "--timeout", "60",
                                "--graceful-timeout", "5", "--access-logfile",
                                str(log_path(stack, "datagrepper-access")),
                                "datagrepper.app:app"],
                stack.env(DATAGREPPER_CONFIG=str(stack.conf / "datagrepper.cfg")),
                lambda s, _: _http_ok(f"{s.datagrepper_url}/healthz/ready"),
                cwd=stack.root),
        Service("datanommer", [fm, "--conf", str(stack.conf / "datanommer.toml"), "consume",
                               "--callback=datanommer.consumer:Nommer"],
                stack.env(FEDORA_MESSAGING_CONF=str(stack.conf / "datanommer.toml")),
                _registered, cwd=stack.root),
        Service("www", [py, "-m", "http.server", "--bind", "127.0.0.1", "--directory",
                        str(stack.dir("www")), str(stack.port + 4)], env,
                lambda s, _: _http_ok(f"{s.www_url}/")),
    ]
    for up in uploaders(stack):
        conf = str(stack.conf / f"{up.name}.toml")
        out.append(Service(up.name, [fm, "--conf", conf, "consume",
                                     "--callback=uploader.consumer:Uploader"],
                           stack.env(FEDORA_MESSAGING_CONF=conf),
                           _registered))
    return out


def our_queues(stack: Stack) -> dict[str, tuple[list[str], dict[str, Any]]]:
    """queue -> (routing keys, declare arguments) of every queue this stack owns."""
    queues: dict[str, tuple[list[str], dict[str, Any]]] = {
        stack.queue("datanommer"): (["#"], {}), stack.queue("watch"): (["#"], {})}
    for up in uploaders(stack):
        queues[up.queue] = (up.routing_keys, UPLOADER_QUEUE_ARGS)
    return queues


# ------------------------------------------------------------------------------------------
# up / down / status


def _healthy(stack: Stack, svc: Service) -> bool:
    if running_pid(stack, svc.name) is None:
        return False
    try:
        return bool(svc.ready(stack, svc))
    except Exception:
        return False


def reset(stack: Stack, say: Callable[[str], None]) -> None:
    """Forget everything of the previous generation (only what this stack created)."""
    for svc in reversed(services(stack)):
        if stop(stack, svc.name):
            say(f"stopped {svc.name}")
    drop_database(stack)
    with contextlib.suppress(Exception):
        delete_queues(stack, list(our_queues(stack)))
    for path in (stack.downloads, stack.site, stack.work):
        shutil.rmtree(path, ignore_errors=True)
    for name in ("runs", "last-run.json", "summary.txt"):  # the demo's per-generation notes
        (stack.root / name).unlink(missing_ok=True)
    (stack.root / "generation").write_text(uuid.uuid4().hex[:8])


def missing_uploader() -> str | None:
    """Why the uploader service cannot run from this checkout, or None if it can."""
    try:
        import uploader.consumer as consumer
    except ImportError as exc:
        return f"uploader.consumer cannot be imported ({exc}): issue 3 has not landed"
    if not hasattr(consumer, "Uploader"):
        return "uploader.consumer has no Uploader callback: issue 3 has not landed"
    return None


def up(stack: Stack, say: Callable[[str], None] = print,
       with_uploaders: bool = True) -> dict[str, str]:
    """Bring the stack up (reusing what runs); returns {part: "reused" | "started"}."""
    t0 = time.monotonic()
    if with_uploaders and (why := missing_uploader()):
        raise StackError(f"missing part: {why}")
    check_shared_services()
    stack.root.mkdir(parents=True, exist_ok=True)
    stack.root.chmod(0o755)
    all_services = services(stack)
    by_name = {s.name: s for s in all_services}
    fresh = not all(_healthy(stack, by_name[n]) for n in ("moto", "koji"))
    if fresh:
        say("new stack generation: AWS (moto) and Koji keep state in memory, so the demo "
            "database, queues and downloads start empty too")
        reset(stack, say)
    write_configs(stack)
    ensure_database(stack)
    declare_bus(stack, our_queues(stack))
    stack.downloads.mkdir(parents=True, exist_ok=True)
    state: dict[str, str] = {}
    started: list[Service] = []
    for svc in all_services:
        if svc.name.startswith("uploader-"):
            stop(stack, svc.name)  # always the current code and config
            if not with_uploaders:
                state[svc.name] = "left out"
                continue
        elif _healthy(stack, svc):
            state[svc.name] = "reused"
            continue
        else:
            stop(stack, svc.name)  # a half-dead leftover
        start(stack, svc)
        started.append(svc)
        state[svc.name] = "started"
    for svc in started:
        wait_ready(stack, svc)
    say("stack up in {:.1f}s: {}".format(
        time.monotonic() - t0, ", ".join(f"{k} {v}" for k, v in state.items())))
    return state


def down(stack: Stack, say: Callable[[str], None] = print) -> None:
    for svc in reversed(services(stack)):
        say(f"{svc.name}: {'stopped' if stop(stack, svc.name) else 'not running'}")


def status(stack: Stack) -> int:
    bad = 0
    for svc in services(stack):
        pid = running_pid(stack, svc.name)
        ok = _healthy(stack, svc)
        bad += not ok
        print(f"{svc.name:18} {'ok' if ok else 'DOWN':5} pid {pid or '-'}  log "
              f"{log_path(stack, svc.name)}")
    print(f"datagrepper {stack.datagrepper_url}  moto {stack.moto_url}  koji {stack.koji_hub}"
          f"  web {stack.www_url}")
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the local fedimg demo stack")
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.add_argument("--no-uploaders", action="store_true",
                        help="up: everything but the uploader services (to debug the stack)")
    args = parser.parse_args(argv)
    stack = Stack.from_env()
    try:
        if args.action == "up":
            up(stack, with_uploaders=not args.no_uploaders)
        elif args.action == "down":
            down(stack)
        else:
            return status(stack)
    except StackError as exc:
        print(f"stack: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
