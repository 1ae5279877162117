"""From a bus message (topic + body) to the one identifier we trust, and from it to images.

Topics arrive with a deployment prefix ("org.fedoraproject.prod.buildsys.task.state.change"),
so they are matched on their suffix at a dot boundary. Of the body only the identifier and the
state transition are read; the state is checked again on the hub (or images.json) before
anything is fetched, so a forged "CLOSED" gains nothing. URLs in bodies are never read.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Literal

import koji

from shared.config import Config
from shared.errors import BadInput, Unwanted, shown
from shared.koji import koji_id
from uploader.intake.compose import compose_images, valid_compose_id
from uploader.intake.koji_sources import build_images, task_images
from uploader.intake.wanted import is_image_method
from uploader.model import Clients, ImageSource
from uploader.targets import get_target, targets_for

log = logging.getLogger(__name__)

TASK_TOPIC = "buildsys.task.state.change"
BUILD_TOPIC = "buildsys.build.state.change"
COMPOSE_TOPIC = "pungi.compose.status.change"
COMPOSE_DONE = frozenset({"FINISHED", "FINISHED_INCOMPLETE"})


@dataclasses.dataclass(frozen=True)
class Request:
    """What to look up: a Koji task id, a Koji build id or NVR, or a compose id."""

    kind: Literal["task", "build", "compose"]
    ident: int | str

    def __str__(self) -> str:
        return {"task": "Koji task", "build": "Koji build", "compose": "compose"}[self.kind] \
            + f" {self.ident}"


def _topic_is(topic: str, base: str) -> bool:
    return topic == base or topic.endswith("." + base)


def _text(body: dict, key: str, topic: str, *, required: bool = True) -> str | None:
    """body[key] if it is a string; None if it is absent or null and not `required`."""
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise BadInput(f"{topic}: body field {key!r} must be a string, got {shown(value)}")
    return value


def _prefilter_owner(body: dict, owners: list[str] | None, what: str, topic: str) -> None:
    """Skip the hub round trip for builds by other owners (thousands of RPM builds a day).

    The body's owner is not trusted to ACCEPT anything (the hub is asked again); it is only
    used to ignore early, which a forged value cannot turn into a fetch.
    """
    owner = _text(body, "owner", topic, required=False)
    if owners is not None and owner is not None and owner not in owners:
        raise Unwanted(f"{what}: owner {shown(owner)} not in koji.owners {owners}")


def request_from_message(topic: str, body: Any, owners: list[str] | None = None) -> Request:
    """The trusted identifier of a message, or Unwanted (not for us) / BadInput (malformed).

    Every field read is checked for its type first, so a body of the wrong shape is BadInput
    naming the field, never an exception of some other kind. `owners` (koji.owners) lets Koji
    messages by other owners be ignored without a hub call.
    """
    if not isinstance(body, dict):
        raise BadInput(f"{topic}: body is not a JSON object")
    if _topic_is(topic, TASK_TOPIC):
        task_id = koji_id(body.get("id"), f"{topic}: body field 'id'")
        new = _text(body, "new", topic)
        if new != "CLOSED":
            raise Unwanted(f"Koji task {task_id}: state change to {shown(new)}, not CLOSED")
        method = _text(body, "method", topic)
        if not is_image_method(method):
            raise Unwanted(f"Koji task {task_id}: method {shown(method)} does not build images")
        _prefilter_owner(body, owners, f"Koji task {task_id}", topic)
        return Request("task", task_id)
    if _topic_is(topic, BUILD_TOPIC):
        build_id = koji_id(body.get("build_id"), f"{topic}: body field 'build_id'")
        new = body.get("new")
        if isinstance(new, bool) or not isinstance(new, int):
            raise BadInput(f"{topic}: body field 'new' must be a build state number, "
                           f"got {shown(new)}")
        if new != koji.BUILD_STATES["COMPLETE"]:
            raise Unwanted(f"Koji build {build_id}: state change to {shown(new)}, "
                           "not COMPLETE")
        _prefilter_owner(body, owners, f"Koji build {build_id}", topic)
        return Request("build", build_id)
    if _topic_is(topic, COMPOSE_TOPIC):
        if "compose_id" not in body or "status" not in body:
            raise BadInput(f"{topic}: body needs 'compose_id' and 'status'")
        compose_id = valid_compose_id(body["compose_id"])
        status = _text(body, "status", topic)
        if status not in COMPOSE_DONE:
            raise Unwanted(f"compose {compose_id}: status {shown(status)}, not FINISHED")
        return Request("compose", compose_id)
    raise Unwanted(f"topic {shown(topic)} is not one the uploader handles")


def find_images(request: Request, *, config: Config, clients: Clients) -> list[ImageSource]:
    """Ask the trusted source about the identifier; the wanted images, possibly none.

    Each image carries the configured targets that take its type and arch (the target contract's
    `takes`); a target that does not is left out here, before anything is fetched, and an image
    no configured target can take is dropped (with no target configured, every image is kept:
    fetch and verify only).
    """
    if request.kind == "task":
        found = task_images(int(request.ident), config=config, session=clients.koji)
    elif request.kind == "build":
        ident = request.ident
        if isinstance(ident, str) and ident.isdigit():
            ident = int(ident)
        found = build_images(ident, config=config, session=clients.koji)
    else:
        found = compose_images(str(request.ident), config=config, clients=clients)
    configured = tuple(config.uploader.targets)
    refusals = {id(s): targets_for(s.image_type, s.identity, configured) for s in found}
    _one_file_per_image(found, refusals)
    sources = []
    for source in found:
        targets = tuple(n for n, why in refusals[id(source)].items() if why is None)
        for name, why in refusals[id(source)].items():
            if why is not None:
                log.info("%s: %s: %s left out: it %s%s", request, source.filename, name, why,
                         "" if targets else "; no target left, image dropped")
        if targets:
            sources.append(dataclasses.replace(source, targets=targets))
        elif not configured:  # no target at all (fetch and verify only): nothing to leave out
            sources.append(source)
    return sources


def _one_file_per_image(found: list[ImageSource],
                        refusals: dict[int, dict[str, str | None]]) -> None:
    """Where one image comes as several files (a Koji build ships the same disk as .raw.xz and
    .qcow2, under one name), each target takes only the file of the type it prefers
    (`Takes.preference`); the others get a refusal saying so."""
    by_name: dict[str, list[ImageSource]] = {}
    for source in found:
        by_name.setdefault(source.identity.name.casefold(), []).append(source)
    for files in (f for f in by_name.values() if len(f) > 1):
        for target in {n for s in files for n, why in refusals[id(s)].items() if why is None}:
            takes = get_target(target).takes
            taking = [s for s in files if refusals[id(s)][target] is None]
            best = min(taking, key=lambda s: (takes.preference(s.image_type), s.filename))
            for other in taking:
                if other is not best:
                    refusals[id(other)][target] = \
                        f"takes {best.filename} of the same image ({best.image_type})"
