"""Fixtures for the end-to-end tests: the whole pipeline on the harness's real parts.

Koji is the harness stand-in over TLS (``koji_hub_tls``: fedimg-build logs in with a client
certificate), AWS is the session's moto server, the bus is real RabbitMQ (the session exchange, or
a private node for the restart test), history is the real datanommer + datagrepper stack, and every
fedimg part runs as in production: ``python -m trigger.cli`` / ``reporter.cli`` subprocesses and
the uploader as a real ``fedora-messaging consume --callback=uploader.consumer:Uploader`` process.
"""

from __future__ import annotations

import dataclasses
import pathlib
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from standins import REPO_ROOT
from standins.amqp import (
    delete_queues,
    fedora_messaging_toml,
    publish_message,
    unique_name,
    use_fedora_messaging_config,
)
from standins.disk_images import MiB, make_disk_image, make_xz_image
from standins.pipeline_config import (
    Endpoints,
    pipeline_env,
    uploader_toml,
    write_fedimg_config,
)
from standins.pipeline_config import (
    consumed_line as consumed_log_line,
)
from standins.pipeline_parts import missing_parts

PREFIX = "org.fedoraproject.e2e"  # 4th topic word = "fedimg": datanommer's category


@pytest.fixture(scope="session")
def pipeline_parts() -> None:
    """Fail (never skip) every e2e test with one line per part that has not landed."""
    missing = missing_parts()
    if missing:
        pytest.fail("the pipeline is not complete on this checkout: " + "; ".join(missing),
                    pytrace=False)


@pytest.fixture(scope="session")
def weekly_image(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A small real disk image (GPT + ext4, 64 MiB sparse, 4 MiB data) as Koji's .raw.xz: in
    blocks, as multi-threaded xz (Kiwi's) writes it, so the AWS stream skips its zeros."""
    d = tmp_path_factory.mktemp("e2e-image")
    raw = make_disk_image(d / "disk.raw", size=64 * MiB, data_mib=4, seed=7)
    return make_xz_image(raw, d / "disk.raw.xz", threads=2, block_size=MiB).path


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

    @property
    def endpoints(self) -> Endpoints:
        return Endpoints(koji_hub=self.hub.url, koji_topurl=self.hub.topurl,
                         koji_cert=self.hub.client_cert("releng"), koji_ca=self.hub.ca_cert,
                         datagrepper_url=self.datagrepper_url, work_dir=self.root / "work",
                         downloads=self.downloads,
                         downloads_url="https://dl.e2e.example/pub/alt/cloud")

    def write_configs(self) -> None:
        """fedimg.toml (the same settings as the demo stack's) and the publisher's config."""
        write_fedimg_config(self.fedimg_config, self.endpoints, self.arches)
        self.publisher_config.write_text(fedora_messaging_toml(
            exchange=self.exchange, topic_prefix=PREFIX, app="fedimg-e2e",
            amqp_url=self.amqp_url))

    # ---- the parts ---------------------------------------------------------------------------
    def env(self, **extra: str) -> dict[str, str]:
        return pipeline_env(self.fedimg_config,
                            FEDORA_MESSAGING_CONF=str(self.publisher_config), **extra)

    def run(self, module: str, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
        """``python -m <module> --config <fedimg.toml> ARGS`` from this checkout."""
        proc = subprocess.run([sys.executable, "-m", module, "--config",
                               str(self.fedimg_config), *args], env=self.env(),
                              cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout)
        assert proc.returncode == 0, f"{module} {args} exited {proc.returncode}:\n" \
                                     f"{proc.stdout}\n{proc.stderr}"
        return proc

    def uploader_config(self, name: str = "uploader",
                        targets: list[str] | None = None) -> pathlib.Path:
        """fedora-messaging config of an uploader service on its own quorum queue (running
        `targets`, default every target of fedimg.toml)."""
        queue = unique_name(name)
        self.queues.append(queue)
        path = self.root / f"{queue}.toml"
        path.write_text(uploader_toml(
            exchange=self.exchange, queue=queue, topic_prefix=PREFIX,
            fedimg_config=self.fedimg_config, app="fedimg-e2e-uploader",
            amqp_url=self.amqp_url, targets=targets))
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
# Test-only fault injection for tests/e2e: SIGKILL this very process the n-th time the point
# named by FEDIMG_E2E_KILL_AT ("<point>#<n>") is reached. A point is a botocore event
# (after-call.ebs.PutSnapshotBlock, before-call.ec2.RegisterImage, ...): botocore registers
# BUILTIN_HANDLERS on every Session it creates, so the uploader's own boto3 session gets it; or
# "publish:<topic part>" / "published:<topic part>": just before / just after fedora-messaging
# publishes a message whose topic contains <topic part>.
import itertools, os, signal

_point, _, _n = os.environ["FEDIMG_E2E_KILL_AT"].rpartition("#")
_calls = itertools.count(1)


def _maybe_die(**_):
    if next(_calls) == int(_n):
        os.kill(os.getpid(), signal.SIGKILL)


if _point.startswith(("publish:", "published:")):
    # fedora_messaging.api is patched once it is imported (importing it here, before
    # `fedora-messaging consume` sets up Twisted, would install the wrong reactor)
    import importlib.abc, importlib.util, sys

    _when, _, _topic = _point.partition(":")

    def _patch(api):
        publish = api.publish

        def _publish_or_die(message, *args, **kwargs):
            if _topic in message.topic and _when == "publish":
                _maybe_die()
            publish(message, *args, **kwargs)
            if _topic in message.topic and _when == "published":
                _maybe_die()

        api.publish = _publish_or_die

    class _PatchApi(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name != "fedora_messaging.api":
                return None
            sys.meta_path.remove(self)
            spec = importlib.util.find_spec(name)
            run = spec.loader.exec_module

            def exec_module(module):
                run(module)
                _patch(module)

            spec.loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, _PatchApi())
else:
    from botocore import handlers

    handlers.BUILTIN_HANDLERS.append((_point, _maybe_die))
"""


@pytest.fixture
def crash_hook(tmp_path: pathlib.Path) -> pathlib.Path:
    """A directory whose sitecustomize.py SIGKILLs the process at the point named by
    FEDIMG_E2E_KILL_AT (see CRASH_HOOK). Put it first on PYTHONPATH; the kill itself is real.
    """
    d = tmp_path / "crash-hook"
    d.mkdir()
    (d / "sitecustomize.py").write_text(CRASH_HOOK)
    return d


def consumed_line(message: Any) -> str:
    """What fedora-messaging logs once the callback returned and the message was acked."""
    return consumed_log_line(f"{PREFIX}.{message.topic}", message.id)
