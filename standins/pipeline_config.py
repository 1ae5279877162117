"""How a whole local pipeline is configured: fedimg's settings, the weekly job, the uploader queues.

One definition for every local pipeline: the demo stack (``standins.local_stack``) and the
end-to-end tests both describe where their parts listen with ``Endpoints`` and get the same
fedimg config, the same job, the same uploader queues and the same process environment from here.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import tomli_w

from standins import REPO_ROOT, StandinError
from standins.amqp import fedora_messaging_toml

REGIONS = ["us-east-1", "us-east-2", "eu-west-1"]
TARGETS = ("aws", "downloads")
JOB = "cloud-base-rawhide-weekly"
NIGHTLY_JOB = "cloud-base-rawhide-nightly"
# What the uploader listens to (after the topic prefix): Koji task/build completion, finished
# composes.
UPLOADER_TOPICS = ("buildsys.task.state.change", "buildsys.build.state.change",
                   "pungi.compose.status.change")
# Quorum queues, as in production: RabbitMQ counts deliveries (x-delivery-count, which the
# uploader reads) and drops a message after x-delivery-limit returns, so nothing loops forever.
UPLOADER_QUEUE_ARGS = {"x-queue-type": "quorum", "x-delivery-limit": 5}
UPLOADER_CALLBACK = "uploader.consumer:Uploader"
# What fedora-messaging logs once a callback returned and the message was acked.
CONSUMED = "Successfully consumed message from topic {topic} (message id {id})"


@dataclasses.dataclass(frozen=True)
class Endpoints:
    """Where the parts of one local pipeline listen and keep their files."""

    koji_hub: str
    koji_topurl: str
    koji_cert: str  # client certificate (+ key) of the Koji user "releng"
    koji_ca: str
    datagrepper_url: str
    work_dir: pathlib.Path
    downloads: pathlib.Path
    downloads_url: str


def fedimg_settings(ep: Endpoints) -> dict[str, dict[str, Any]]:
    """fedimg's config sections for a local pipeline, keyed like deploy/fedimg.toml.example."""
    return {
        "koji": {"hub": ep.koji_hub, "topurl": ep.koji_topurl, "owners": ["releng"],
                 "auth": "ssl", "cert": ep.koji_cert, "serverca": ep.koji_ca, "timeout": 30,
                 "retries": 2, "retry_interval": 1},
        "uploader": {"targets": list(TARGETS), "work_dir": str(ep.work_dir),
                     "subvariants": ["Cloud_Base"], "image_types": ["raw-xz"],
                     "fetch_timeout": 30, "fetch_retries": 2, "retry_delay": 1,
                     "max_deliveries": 5},
        # the Koji stand-in serves composes below its files, as kojipkgs does below /compose
        "compose": {"base_url": ep.koji_topurl + "/compose"},
        "aws": {"base_region": REGIONS[0], "regions": REGIONS, "public": True,
                "volume_type": "gp3", "max_parallel_copies": 3, "copy_timeout": 300},
        "downloads": {"destination": str(ep.downloads), "base_url": ep.downloads_url,
                      "qcow2_compression": "zlib", "xz_threads": 0, "timeout": 600},
        "reporter": {"datagrepper": ep.datagrepper_url, "timeout": 20, "retries": 2},
    }


def weekly_job(arches: Sequence[str]) -> dict[str, Any]:
    """The one trigger job of a local pipeline: a weekly scratch Cloud Base image build."""
    return {
        "name": JOB, "schedule": "weekly", "image_name": "Fedora-Cloud-Base",
        "version": "Rawhide", "target": "f44", "distro": "Fedora-44",
        "ksurl": "git+https://pagure.io/fedora-kickstarts.git?#main",
        "kickstart": "fedora-cloud-base.ks",
        "install_tree": "https://kojipkgs.fedoraproject.org/compose/rawhide/"
                        "latest-Fedora-Rawhide/compose/Cloud/$arch/os/",
        "arches": list(arches), "formats": ["raw-xz", "qcow2"], "repos": [], "scratch": True,
        "method": "image", "disk_size": 5,
    }


def nightly_job(arches: Sequence[str]) -> dict[str, Any]:
    """The same build as ``weekly_job``, every night (release ``<date>.n.<respin>``)."""
    return {**weekly_job(arches), "name": NIGHTLY_JOB, "schedule": "nightly"}


def render_fedimg_toml(ep: Endpoints, arches: Sequence[str],
                       **overrides: Mapping[str, Any]) -> str:
    """fedimg.toml text; ``overrides`` replace keys per section (uploader={"targets": ["aws"]})
    or add a section (a target's own, e.g. containers={...})."""
    settings = fedimg_settings(ep)
    for section, values in overrides.items():  # a new section: a target's own table
        settings[section] = {**settings.get(section, {}), **values}
    return tomli_w.dumps({**settings, "trigger": {"jobs": [weekly_job(arches),
                                                           nightly_job(arches)]}})


def write_fedimg_config(path: pathlib.Path, ep: Endpoints, arches: Sequence[str],
                        header: str = "", **overrides: Mapping[str, Any]) -> None:
    """Write fedimg.toml and load it back with fedimg's own loader; StandinError if it fails."""
    from shared.config import load_config

    path.write_text(header + render_fedimg_toml(ep, arches, **overrides))
    try:
        load_config(path)
    except Exception as exc:
        raise StandinError(f"the generated fedimg config {path} does not load: {exc}") from None


def uploader_routing_keys(topic_prefix: str) -> list[str]:
    """Routing keys of an uploader queue on a bus whose topics carry ``topic_prefix``."""
    return [f"{topic_prefix}.{t}" for t in UPLOADER_TOPICS]


def uploader_toml(*, exchange: str, queue: str, topic_prefix: str,
                  fedimg_config: pathlib.Path, app: str, targets: Sequence[str] | None = None,
                  amqp_url: str | None = None) -> str:
    """fedora-messaging config of one uploader service on its own quorum queue.

    ``targets`` None: the service publishes to every target of the fedimg config.
    """
    consumer_config: dict[str, Any] = {"fedimg_config": str(fedimg_config)}
    if targets is not None:
        consumer_config["targets"] = list(targets)
    return fedora_messaging_toml(
        exchange=exchange, queue=queue, routing_keys=uploader_routing_keys(topic_prefix),
        queue_arguments=UPLOADER_QUEUE_ARGS, prefetch_count=1, topic_prefix=topic_prefix,
        callback=UPLOADER_CALLBACK, app=app, consumer_config=consumer_config,
        amqp_url=amqp_url, extra_loggers=("uploader", "shared"))


def pipeline_env(fedimg_config: pathlib.Path, base: Mapping[str, str] | None = None,
                 **extra: str) -> dict[str, str]:
    """Environment of a fedimg process: this checkout first on PYTHONPATH, UTC, the config."""
    env = dict(os.environ if base is None else base)
    env.update(PYTHONPATH=str(REPO_ROOT), PYTHONUNBUFFERED="1", TZ="UTC",
               FEDIMG_CONFIG=str(fedimg_config))
    env.update(extra)
    return env


def consumed_line(topic: str, msg_id: str) -> str:
    """The line fedora-messaging logs once the callback handled ``msg_id`` and acked it."""
    return CONSUMED.format(topic=topic, id=msg_id)
