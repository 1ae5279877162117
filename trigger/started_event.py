"""The "build started" event (shared.messages.BuildStartedV1) for a task fedimg-build created."""

from __future__ import annotations

from typing import Any

from shared import bus
from shared.messages import BuildStartedV1
from trigger.plan import BuildRequest


def web_url(hub: str) -> str:
    """Koji's web UI beside the hub: https://koji.example.org/kojihub -> .../koji."""
    base = hub.rstrip("/")
    return (base[: -len("/kojihub")] if base.endswith("/kojihub") else base) + "/koji"


def body(request: BuildRequest, task_id: int, hub: str) -> dict[str, Any]:
    return {
        "job": request.job,
        "channel": request.channel,
        "task_id": task_id,
        "name": request.name,
        "version": request.version,
        "release": request.release,
        "target": request.target,
        "ksurl": request.ksurl,
        "kickstart": request.kickstart,
        "arches": list(request.arches),
        "formats": list(request.formats),
        "scratch": request.scratch,
        "task_url": f"{web_url(hub)}/taskinfo?taskID={task_id}",
        "agent": "fedimg",
    }


def publish(request: BuildRequest, task_id: int, hub: str, timeout: float) -> BuildStartedV1:
    """Publish the event for `task_id`, broker-confirmed within `timeout` seconds; any failure
    raises shared.errors.PublishFailed with one line."""
    message = BuildStartedV1.from_body(body(request, task_id, hub))
    bus.publish(message, timeout=timeout)
    return message
