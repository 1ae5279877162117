"""Fixtures for the end-to-end tests: the whole pipeline on the harness's real parts.

Koji is the harness stand-in over TLS (``koji_hub_tls``: fedimg-build logs in with a client
certificate), AWS is the session's moto server, the bus is real RabbitMQ (the session exchange, or
a private node for the restart test), history is the real datanommer + datagrepper stack, and every
fedimg part runs as in production: ``python -m trigger.cli`` / ``reporter.cli`` subprocesses and
the uploader as a real ``fedora-messaging consume --callback=uploader.consumer:Uploader`` process.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import tomli_w

from tests.e2e.parts import missing_parts
from tests.harness.amqp import (
    REPO_ROOT,
    delete_queues,
    fedora_messaging_toml,
    unique_name,
    use_fedora_messaging_config,
)
from tests.harness.disk_images import MiB, make_disk_image, make_xz_image

PREFIX = "org.fedoraproject.e2e"  # 4th topic word = "fedimg": datanommer's category
REGIONS = ["us-east-1", "us-east-2", "eu-west-1"]
UPLOADER_TOPICS = ["buildsys.task.state.change", "buildsys.build.state.change",
                   "pungi.compose.status.change"]
QUORUM = {"x-queue-type": "quorum", "x-delivery-limit": 5}
JOB = "cloud-base-rawhide-weekly"
CONSUMED = "Successfully consumed message from topic {topic} (message id {id})"


@pytest.fixture(scope="session")
def pipeline_parts() -> None:
    """Fail (never skip) every e2e test with one line per part that has not landed."""
    missing = missing_parts()
    if missing:
        pytest.fail("the pipeline is not complete on this checkout: " + "; ".join(missing),
                    pytrace=False)


@pytest.fixture(scope="session")
def weekly_image(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A small real disk image (GPT + ext4, 64 MiB sparse, 4 MiB data) as Koji's .raw.xz."""
    d = tmp_path_factory.mktemp("e2e-image")
    raw = make_disk_image(d / "disk.raw", size=64 * MiB, data_mib=4, seed=7)
    return make_xz_image(raw, d / "disk.raw.xz").path


@dataclasses.dataclass
class Pipeline:
    """One test's pipeline: configs, the Koji hub, and helpers to drive each part."""

    hub: Any
    root: pathlib.Path
    exchange: str
    amqp_url: str | None  # None: the shared broker
    datagrepper_url: str
    image: pathlib.Path
    arches: tuple[str, ...] = ("x86_64",)
    queues: list[str] = dataclasses.field(default_factory=list)

    @property
    def downloads(self) -> pathlib.Path:
        return self.root / "downloads"

    @property
    def fedimg_config(self) -> pathlib.Path:
        return self.root / "fedimg.toml"

    @property
    def publisher_config(self) -> pathlib.Path:
        return self.root / "publisher.toml"

    def write_configs(self) -> None:
        from shared import config as cfg

        settings = {
            "koji": {"hub": self.hub.url, "topurl": self.hub.topurl, "owners": ["releng"],
                     "auth": "ssl", "cert": self.hub.client_cert("releng"),
                     "serverca": self.hub.ca_cert, "timeout": 20, "retries": 2,
                     "retry_interval": 1},
            "uploader": {"targets": ["aws", "downloads"], "work_dir": str(self.root / "work"),
                         "fetch_timeout": 20, "fetch_retries": 2, "retry_delay": 1,
                         "max_deliveries": 5},
            "aws": {"base_region": REGIONS[0], "regions": REGIONS, "public": True,
                    "copy_timeout": 120},
            "downloads": {"destination": str(self.downloads),
                          "base_url": "https://dl.e2e.example/pub/alt/cloud", "timeout": 300},
            "reporter": {"datagrepper": self.datagrepper_url, "timeout": 20, "retries": 2},
        }
        job = {"name": JOB, "schedule": "weekly", "image_name": "Fedora-Cloud-Base",
               "version": "Rawhide", "target": "f44", "distro": "Fedora-44",
               "ksurl": "git+https://pagure.io/fedora-kickstarts.git?#main",
               "kickstart": "fedora-cloud-base.ks",
               "install_tree": "https://kojipkgs.example/compose/Cloud/$arch/os/",
               "arches": list(self.arches), "formats": ["raw-xz", "qcow2"], "repos": [],
               "scratch": True, "method": "image", "disk_size": 5}
        self.fedimg_config.write_text(tomli_w.dumps({**settings, "trigger": {"jobs": [job]}}))
        cfg.load_config(self.fedimg_config)  # fail here, clearly, if a key is wrong
        self.publisher_config.write_text(fedora_messaging_toml(
            exchange=self.exchange, topic_prefix=PREFIX, app="fedimg-e2e",
            amqp_url=self.amqp_url))

    # ---- the parts ---------------------------------------------------------------------------
    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(PYTHONPATH=str(REPO_ROOT), PYTHONUNBUFFERED="1", TZ="UTC",
                   FEDORA_MESSAGING_CONF=str(self.publisher_config),
                   FEDIMG_CONFIG=str(self.fedimg_config))
        env.update(extra)
        return env

    def run(self, module: str, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
        """``python -m <module> --config <fedimg.toml> ARGS`` from this checkout."""
        proc = subprocess.run([sys.executable, "-m", module, "--config",
                               str(self.fedimg_config), *args], env=self.env(),
                              cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout)
        assert proc.returncode == 0, f"{module} {args} exited {proc.returncode}:\n" \
                                     f"{proc.stdout}\n{proc.stderr}"
        return proc

    def uploader_config(self, name: str = "uploader") -> pathlib.Path:
        """fedora-messaging config of an uploader service on its own quorum queue."""
        queue = unique_name(name)
        self.queues.append(queue)
        path = self.root / f"{queue}.toml"
        path.write_text(fedora_messaging_toml(
            exchange=self.exchange, queue=queue,
            routing_keys=[f"{PREFIX}.{t}" for t in UPLOADER_TOPICS], topic_prefix=PREFIX,
            callback="uploader.consumer:Uploader", app="fedimg-e2e-uploader",
            consumer_config={"fedimg_config": str(self.fedimg_config)},
            queue_arguments=QUORUM, prefetch_count=1, amqp_url=self.amqp_url,
            extra_loggers=("uploader", "shared")))
        return path

    def finish_and_announce(self, task_id: int) -> Any:
        """Koji "builds" the task (real images) and its plugin announces it; returns the message."""
        task = self.hub.tasks[task_id]
        name, version, arches, target, _tree, opts = task["request"]
        files = {a: {f"{name}-{version}-{opts['release']}.{a}.raw.xz": self.image}
                 for a in arches}
        self.hub.add_image_task(name, version, opts["release"], arches, files, task_id=task_id,
                                target=target, scratch=True, opts=opts)
        return self.announce(task_id)

    def new_task(self, release: str) -> int:
        """A finished scratch image task on the hub, as if fedimg-build had started it."""
        name, version = "Fedora-Cloud-Base", "Rawhide"
        files = {a: {f"{name}-{version}-{release}.{a}.raw.xz": self.image} for a in self.arches}
        return self.hub.add_image_task(name, version, release, list(self.arches), files,
                                       scratch=True, opts={"release": release})

    def announce(self, task_id: int, message: Any = None) -> Any:
        """Publish ``buildsys.task.state.change`` CLOSED for ``task_id`` (or ``message`` again)."""
        from koji_fedoramessaging_messages.task import TaskStateChangeV1

        from tests.harness.amqp import publish_message

        if message is None:
            message = TaskStateChangeV1(
                body=self.hub.task_state_change_body(task_id, old="OPEN", new="CLOSED"))
            message.validate()
        with use_fedora_messaging_config(self.publisher_config):
            publish_message(message)
        return message

    def weekly_task(self) -> int:
        """The image task fedimg-build created on the hub (exactly one)."""
        tasks = [t for t, v in self.hub.tasks.items()
                 if v["parent"] is None and v["method"] == "image"]
        assert len(tasks) == 1, f"expected one image task on the hub, found {tasks}"
        return tasks[0]


@pytest.fixture
def pipeline(pipeline_parts: None, koji_hub_tls: Any, aws: Any, amqp_exchange: str,
             tmp_path: pathlib.Path, weekly_image: pathlib.Path) -> Iterator[Pipeline]:
    """A pipeline on the shared broker (session exchange); datagrepper filled in by the test."""
    p = Pipeline(hub=koji_hub_tls, root=tmp_path, exchange=amqp_exchange, amqp_url=None,
                 datagrepper_url="http://127.0.0.1:9/unused", image=weekly_image)
    p.write_configs()
    try:
        yield p
    finally:
        delete_queues(p.queues)


CRASH_HOOK = """\
# Test-only fault injection for tests/e2e: SIGKILL this very process right after its Nth
# EBS PutSnapshotBlock call, i.e. in the middle of uploading the snapshot. botocore registers
# BUILTIN_HANDLERS on every Session it creates, so the uploader's own boto3 session gets it.
import itertools, os, signal
from botocore import handlers

_calls = itertools.count(1)
_kill_at = int(os.environ["FEDIMG_E2E_KILL_AT_BLOCK"])


def _maybe_die(**_):
    if next(_calls) == _kill_at:
        os.kill(os.getpid(), signal.SIGKILL)


handlers.BUILTIN_HANDLERS.append(("after-call.ebs.PutSnapshotBlock", _maybe_die))
"""


@pytest.fixture
def crash_hook(tmp_path: pathlib.Path) -> pathlib.Path:
    """A directory whose sitecustomize.py SIGKILLs the process at the Nth uploaded block.

    Put it first on PYTHONPATH and set FEDIMG_E2E_KILL_AT_BLOCK; the kill itself is real.
    """
    d = tmp_path / "crash-hook"
    d.mkdir()
    (d / "sitecustomize.py").write_text(CRASH_HOOK)
    return d


def consumed_line(message: Any) -> str:
    """What fedora-messaging logs once the callback returned and the message was acked."""
    return CONSUMED.format(topic=f"{PREFIX}.{message.topic}", id=message.id)
