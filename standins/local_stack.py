"""The local demo stack on loopback: bring it up, report its state, tear it down.

    .venv/bin/python -m standins.local_stack up|status|down

(``make demo`` and ``make demo-stop`` run it through deploy/local/stack.py.) Run it with the
project's venv python. Everything listens on 127.0.0.1:

- RabbitMQ: the running broker on :5672 (``make services`` starts it); exchange ``fedimg-demo``
- PostgreSQL: the running server on :5432; database ``fedimg_demo``
- datanommer: ``fedora-messaging consume --callback=datanommer.consumer:Nommer``, durable queue
  ``fedimg-demo-datanommer`` bound to ``#``
- datagrepper: gunicorn, TZ=UTC, on PORT (default 5380)
- AWS: ``moto_server`` on PORT+1, reached through AWS_ENDPOINT_URL
- Koji: ``python -m standins.koji_service``, HTTPS hub + /kojifiles with TLS client certs on PORT+2,
  its control endpoint (POST /finish/<task>: fill + announce) on PORT+3
- web: ``python -m http.server`` over ``www/`` (downloads + report site) on PORT+4
- OpenStack: two real glance-api processes (gunicorn, from ``.glance-venv``) as two clouds on
  PORT+5 and PORT+6, named in ``conf/clouds.yaml``; their images and databases in ``glance/``
- registry: ``python -m standins.registry`` (Debian's docker-registry, TLS + basic auth) on
  PORT+7, state in ``registry/``; the Koji stand-in also serves the composes below
  ``<topurl>/compose`` (POST /compose/<id> on its control port makes one and announces it)
- Azure and Google Cloud (``standins.cloud_stack``): azurite on PORT+8, the Compute Gallery
  stand-in on PORT+9 (HTTPS), gcp-storage-emulator on PORT+10, the GCE images stand-in on
  PORT+11
- uploader: ``fedora-messaging consume --callback=uploader.consumer:Uploader``, one service
  (and one queue) per target (aws, downloads, openstack, containers, azure, gcp)

State lives in ``$FEDIMG_DEMO_DIR`` (default /tmp/fedimg-demo): ``run/<name>.json`` (PID and
command line of each process; every process is stopped by that PID, after checking that the PID
still runs that command line), ``logs/``, ``conf/`` (every config file), ``koji/``, ``www/``.
``$FEDIMG_DEMO_PORT`` moves the port block; a stack on another port block also gets its own
exchange, queues and database (``fedimg-demo-<port>``, ``fedimg_demo_<port>``), so two stacks
on one machine never touch each other's state.

Reuse: a part that is running and healthy is kept. moto, the Koji stand-in, the gallery and GCE
stand-ins and the storage emulator hold their state in memory, so if one is not running the
stack starts a new *generation*: it stops whatever of
ours still runs, drops the demo database, deletes the demo queues and the download directory, and
starts everything fresh, so AWS, Koji, the downloads and the history always agree. The uploader
services are restarted at every ``up`` so they run the current code and config.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import pathlib
import shutil
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import requests

from standins import StandinError, cloud_stack, glance
from standins.amqp import check_rabbitmq, delete_queues, fedora_messaging_toml, pika_connection
from standins.datagrepper import (
    create_schema,
    datagrepper_argv,
    datagrepper_cfg,
    datagrepper_ready,
    datanommer_argv,
    datanommer_toml,
)
from standins.moto import MOTO_SERVER, aws_env, moto_answers
from standins.pidfiles import Service, log_path, running_pid, start, stop, wait_ready
from standins.pipeline_config import (
    REGIONS,
    TARGETS,
    UPLOADER_QUEUE_ARGS,
    Endpoints,
    pipeline_env,
    uploader_routing_keys,
    uploader_toml,
    write_fedimg_config,
)
from standins.pipeline_parts import missing_parts
from standins.postgres import check_postgres, database_url, drop_database
from standins.registry import registry_answers

VENV_BIN = pathlib.Path(sys.executable).parent
REGISTERED = "Successfully registered AMQP consumer"
HTTP_TIMEOUT = 5.0
TOPIC_PREFIX = "org.fedoraproject.demo"
ARCHES = ["x86_64", "aarch64"]
DEFAULT_PORT = 5380
# the demo also runs the openstack target (two Glance clouds), the containers target (its own
# registry) and the azure and gcp targets (standins.cloud_stack)
DEMO_TARGETS = (*TARGETS, "openstack", "containers", "azure", "gcp")
GLANCE_CLOUDS = ("demo-cloud-a", "demo-cloud-b")  # on PORT+5, PORT+6
LATEST_RELEASE = "44"  # the release of the demo's candidate composes: they move `latest`


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
        port = int(os.environ.get("FEDIMG_DEMO_PORT", str(DEFAULT_PORT)))
        if port == DEFAULT_PORT:
            return cls(root=root, port=port)
        return cls(root=root, port=port, exchange=f"fedimg-demo-{port}",
                   database=f"fedimg_demo_{port}")

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

    @property
    def glance_urls(self) -> dict[str, str]:
        """cloud name -> its Glance API."""
        return {c: f"http://127.0.0.1:{self.port + 5 + i}" for i, c in enumerate(GLANCE_CLOUDS)}

    @property
    def registry_host(self) -> str:
        return f"127.0.0.1:{self.port + 7}"

    @property
    def registry_dir(self) -> pathlib.Path:
        return self.dir("registry")

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
        return database_url(self.database)

    @property
    def endpoints(self) -> Endpoints:
        return Endpoints(koji_hub=self.koji_hub, koji_topurl=self.koji_topurl,
                         koji_cert=str(self.client_cert("releng")), koji_ca=str(self.ca_cert),
                         datagrepper_url=self.datagrepper_url, work_dir=self.work,
                         downloads=self.downloads, downloads_url=f"{self.www_url}/downloads")

    @property
    def fedimg_config(self) -> pathlib.Path:
        return self.conf / "fedimg.toml"

    @property
    def publisher_config(self) -> pathlib.Path:
        return self.conf / "publisher.toml"

    def queue(self, name: str) -> str:
        return f"{self.exchange}-{name}"

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for our subprocesses: this checkout first on PYTHONPATH, UTC, AWS->moto.

        boto3 finds moto through its standard chain; nothing from ~/.aws leaks in.
        """
        base = {k: v for k, v in os.environ.items()
                if not (k.startswith("AWS_") or k in ("FEDORA_MESSAGING_CONF", "FEDIMG_CONFIG"))}
        base = cloud_stack.scrub({k: v for k, v in base.items() if not k.startswith("OS_")})
        base.update(aws_env(self.moto_url, self.conf, REGIONS[0], key="demo"))
        base.update(OS_CLIENT_CONFIG_FILE=str(self.conf / "clouds.yaml"),
                    OS_CLIENT_SECURE_FILE=str(self.conf / "no-secure.yaml"))
        return pipeline_env(self.fedimg_config, base, **extra)


# readiness checks -------------------------------------------------------------------------


def _http_ok(url: str) -> bool:
    return requests.get(url, timeout=HTTP_TIMEOUT).status_code < 400


def _registered(stack: Stack, svc: Service) -> bool:
    return REGISTERED in log_path(stack, svc.name).read_text(errors="replace")


# ------------------------------------------------------------------------------------------
# Shared services, database, bus


def ensure_database(stack: Stack) -> None:
    """The demo database with datanommer's schema (idempotent, UTC)."""
    create_schema(stack.database_url, create_db=True)


def declare_bus(stack: Stack, queues: dict[str, tuple[list[str], dict[str, Any]]]) -> None:
    """The demo exchange and our durable queues, bound before anything publishes."""
    conn = pika_connection()
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


def delete_our_queues(stack: Stack, queues: list[str]) -> None:
    """Delete only queues of this stack (their names start with the demo exchange's)."""
    foreign = [q for q in queues if not q.startswith(stack.exchange + "-")]
    if foreign:
        raise StandinError(f"refusing to delete queues of another stack: {foreign}")
    delete_queues(queues)


# ------------------------------------------------------------------------------------------
# Configuration files


def write_configs(stack: Stack) -> None:
    write_fedimg_config(
        stack.fedimg_config, stack.endpoints, ARCHES,
        header="# Written by the local demo stack (standins.local_stack); rewritten at every up.\n",
        uploader={"targets": list(DEMO_TARGETS), "subvariants": ["Cloud_Base", "Container_Base"],
                  "image_types": ["raw-xz", "qcow2", "container", "vhd-compressed", "tar-gz"]},
        openstack={"clouds": list(GLANCE_CLOUDS), "timeout": 60},
        containers={"latest_release": LATEST_RELEASE, "timeout": 300, "retries": 1,
                    "registries": [{"name": stack.registry_host,
                                    "authfile": str(stack.registry_dir / "auth.json"),
                                    "cert_dir": str(stack.registry_dir / "certs.d")}]},
        **cloud_stack.fedimg_sections(stack))
    cloud_stack.prepare(stack)
    (stack.conf / "clouds.yaml").write_text(glance.clouds_yaml(stack.glance_urls))
    for cloud in GLANCE_CLOUDS:
        glance.prepare(stack.dir("glance") / cloud)
    stack.publisher_config.write_text(fedora_messaging_toml(
        exchange=stack.exchange, topic_prefix=TOPIC_PREFIX, app="fedimg-demo"))
    (stack.conf / "datanommer.toml").write_text(datanommer_toml(
        stack.exchange, stack.queue("datanommer"), stack.database_url, "fedimg-demo-datanommer"))
    (stack.conf / "datagrepper.cfg").write_text(
        datagrepper_cfg(stack.database_url, stack.datagrepper_url))
    for up in uploaders(stack):
        (stack.conf / f"{up.name}.toml").write_text(uploader_toml(
            exchange=stack.exchange, queue=up.queue, topic_prefix=TOPIC_PREFIX,
            fedimg_config=stack.fedimg_config, app=f"fedimg-demo-{up.name}", targets=up.targets))


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
    keys = uploader_routing_keys(TOPIC_PREFIX)
    return [Uploader(f"uploader-{t}", stack.queue(f"uploader-{t}"), [t], keys)
            for t in DEMO_TARGETS]


def services(stack: Stack) -> list[Service]:
    py = sys.executable
    fm = str(VENV_BIN / "fedora-messaging")
    env = stack.env()
    out = [
        Service("moto", [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(stack.port + 1)], env,
                lambda s, _: moto_answers(s.moto_url)),
        Service("koji", [py, "-m", "standins.koji_service", "--workdir",
                         str(stack.dir("koji")), "--port", str(stack.koji_port),
                         "--control-port", str(stack.port + 3), "--arches", ",".join(ARCHES)],
                stack.env(FEDORA_MESSAGING_CONF=str(stack.publisher_config)),
                lambda s, _: _http_ok(f"{s.koji_control}/health")),
        Service("datagrepper", datagrepper_argv(stack.port, log_path(stack, "datagrepper-access")),
                stack.env(DATAGREPPER_CONFIG=str(stack.conf / "datagrepper.cfg")),
                lambda s, _: datagrepper_ready(s.datagrepper_url), cwd=stack.root),
        Service("datanommer", datanommer_argv(stack.conf / "datanommer.toml"),
                stack.env(FEDORA_MESSAGING_CONF=str(stack.conf / "datanommer.toml")),
                _registered, cwd=stack.root),
        Service("www", [py, "-m", "http.server", "--bind", "127.0.0.1", "--directory",
                        str(stack.dir("www")), str(stack.port + 4)], env,
                lambda s, _: _http_ok(f"{s.www_url}/")),
        Service("registry", [py, "-m", "standins.registry", "--workdir", str(stack.registry_dir),
                             "--port", str(stack.port + 7)], env,
                lambda s, _: registry_answers(s.registry_dir, s.registry_host)),
    ]
    for cloud, url in stack.glance_urls.items():
        root = stack.dir("glance") / cloud
        port = int(url.rsplit(":", 1)[1])
        out.append(Service(f"glance-{cloud}", glance.gunicorn_argv(root, port),
                           glance.glance_env(root), lambda s, _, url=url: glance.answers(url),
                           cwd=root))
    out += cloud_stack.services(stack, env)
    for up in uploaders(stack):
        conf = str(stack.conf / f"{up.name}.toml")
        cloud_env = {k: v for t in up.targets
                     for k, v in cloud_stack.uploader_env(stack, t).items()}
        out.append(Service(up.name, [fm, "--conf", conf, "consume",
                                     "--callback=uploader.consumer:Uploader"],
                           stack.env(FEDORA_MESSAGING_CONF=conf, **cloud_env),
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
    drop_database(stack.database)
    delete_our_queues(stack, list(our_queues(stack)))
    for path in (stack.downloads, stack.site, stack.work, stack.registry_dir,
                 stack.root / "glance", *(stack.root / d for d in cloud_stack.STATE_DIRS)):
        shutil.rmtree(path, ignore_errors=True)
    for name in ("runs", "last-run.json", "summary.txt"):  # the demo's per-generation notes
        (stack.root / name).unlink(missing_ok=True)
    (stack.root / "generation").write_text(uuid.uuid4().hex[:8])


def up(stack: Stack, say: Callable[[str], None] = print,
       with_uploaders: bool = True) -> dict[str, str]:
    """Bring the stack up (reusing what runs); returns {part: "reused" | "started"}."""
    t0 = time.monotonic()
    if with_uploaders and (missing := missing_parts()):
        raise StandinError("missing part: " + "; ".join(missing))
    if problem := cloud_stack.missing():
        raise StandinError(f"missing part: {problem}")
    check_rabbitmq()
    check_postgres()
    stack.root.mkdir(parents=True, exist_ok=True)
    stack.root.chmod(0o755)
    all_services = services(stack)
    by_name = {s.name: s for s in all_services}
    fresh = not all(_healthy(stack, by_name[n])
                    for n in ("moto", "koji", *cloud_stack.IN_MEMORY))
    if fresh:
        say("new stack generation: AWS (moto), Koji and the Azure and Google Cloud stand-ins "
            "keep state in memory, so the demo database, queues and downloads start empty too")
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
    cloud_stack.after_start(stack)
    say("stack up in {:.1f}s: {}".format(
        time.monotonic() - t0, ", ".join(f"{k} {v}" for k, v in state.items())))
    return state


def down(stack: Stack, say: Callable[[str], None] = print) -> list[tuple[str, int]]:
    """Stop every process of the stack by its PID; returns (name, pid) of those stopped."""
    stopped = []
    for svc in reversed(services(stack)):
        pid = running_pid(stack, svc.name)
        if stop(stack, svc.name) and pid is not None:
            stopped.append((svc.name, pid))
            say(f"stopped {svc.name} (pid {pid})")
    if stopped:
        say(f"stack down: stopped {len(stopped)} processes; the database {stack.database}, "
            f"the queues and the files in {stack.root} stay for the next `make demo`")
    else:
        say(f"stack down: nothing of the stack in {stack.root} was running")
    return stopped


def status(stack: Stack) -> int:
    bad = 0
    for svc in services(stack):
        pid = running_pid(stack, svc.name)
        ok = _healthy(stack, svc)
        bad += not ok
        print(f"{svc.name:18} {'ok' if ok else 'DOWN':5} pid {pid or '-'}  log "
              f"{log_path(stack, svc.name)}")
    print(f"datagrepper {stack.datagrepper_url}  moto {stack.moto_url}  koji {stack.koji_hub}"
          f"  web {stack.www_url}  glance " + " ".join(stack.glance_urls.values())
          + f"  azure {cloud_stack.gallery_url(stack)}  gce {cloud_stack.gce_url(stack)}")
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
    except StandinError as exc:
        print(f"stack: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
