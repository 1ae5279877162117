"""Images of a Koji task or build, as the configured hub describes them.

Only the id comes from the message. The hub says who owns it, which method made it, whether it
finished, and which files it produced; URLs are built with koji.PathInfo under koji.topurl.

- Scratch image task (buildsys.task.state.change): getTaskInfo (parent task, image method,
  CLOSED, owner in koji.owners, scratch), getTaskChildren, and for each CLOSED child
  getTaskResult (files, arch, version, release) + listTaskOutput(stat=True) (sizes).
  Koji records no checksum for task outputs, so only the size is verified.
- Image build (buildsys.build.state.change): getBuild (COMPLETE, owner), then
  listArchives(type='image') gives file names, sizes and sha256.
"""

from __future__ import annotations

import logging
import xmlrpc.client
from collections.abc import Callable
from typing import Any

import koji
import requests

from shared.config import Config
from shared.errors import BadInput, TransientError, Unwanted
from shared.images import Hint
from shared.koji import build_image_url, task_file_url
from uploader.intake.wanted import IMAGE_METHODS, image_type_of, safe_filename, wanted_identity
from uploader.model import ImageSource

log = logging.getLogger(__name__)

CLOSED = koji.TASK_STATES["CLOSED"]
COMPLETE = koji.BUILD_STATES["COMPLETE"]
SHA256 = koji.CHECKSUM_TYPES["sha256"]


def hub_call(what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call the hub, mapping failures to their broker meaning.

    Transport trouble (connection refused, HTTP 5xx, timeouts; koji already retried them within
    koji.retries) and ServerOffline/RetryError are transient; any other fault is the hub's
    answer about this id ("No such task", a bad parameter) and will not change on retry.
    """
    try:
        return fn(*args, **kwargs)
    except (koji.ServerOffline, koji.RetryError) as exc:
        raise TransientError(f"Koji hub unavailable for {what}: {exc}") from exc
    except koji.GenericError as exc:
        raise BadInput(f"Koji hub refused {what}: {exc}") from exc
    except (requests.RequestException, xmlrpc.client.ProtocolError, OSError) as exc:
        raise TransientError(f"Koji hub unreachable for {what}: {exc}") from exc


def _request_opts(request: Any) -> dict | None:
    """The opts dict of an image task request (its last dict argument), if any."""
    if isinstance(request, list):
        for item in reversed(request):
            if isinstance(item, dict):
                return item
    return None


def task_images(task_id: int, *, config: Config, session: Any) -> list[ImageSource]:
    """Wanted images of a finished scratch image task; raises Unwanted/BadInput/TransientError."""
    where = f"Koji task {task_id}"
    info = hub_call(f"getTaskInfo({task_id})", session.getTaskInfo, task_id, request=True)
    if not info:
        raise BadInput(f"{where}: no such task on {config.koji.hub}")
    if info.get("parent") is not None:
        raise Unwanted(f"{where}: a child task of {info['parent']}, not an image parent task")
    method = info.get("method")
    if method not in IMAGE_METHODS:
        raise Unwanted(f"{where}: method {method!r} does not build images")
    state = info.get("state")
    if state != CLOSED:
        raise Unwanted(f"{where}: state {koji.TASK_STATES.get(state, state)}, not CLOSED")
    owner = _owner_name(info.get("owner"), session, where)
    if owner not in config.koji.owners:
        raise Unwanted(f"{where}: owner {owner!r} not in koji.owners {config.koji.owners}")
    opts = _request_opts(info.get("request"))
    if opts is not None and not opts.get("scratch"):
        # Non-scratch image tasks end in a build; its buildsys.build.state.change (with
        # sha256 from listArchives) is what we use, so acting here too would do it twice.
        raise Unwanted(f"{where}: not a scratch build; its build message is used instead")

    children = hub_call(f"getTaskChildren({task_id})", session.getTaskChildren, task_id)
    sources: list[ImageSource] = []
    for child in sorted(children or [], key=lambda c: c.get("id", 0)):
        sources.extend(_child_images(task_id, child, config=config, session=session))
    return sources


def _owner_name(owner: Any, session: Any, where: str) -> str | None:
    if isinstance(owner, str):
        return owner
    user = hub_call(f"getUser({owner})", session.getUser, owner)
    if not user:
        raise BadInput(f"{where}: owner id {owner} unknown to the hub")
    return user.get("name")


def _child_images(parent: int, child: dict, *, config: Config, session: Any) -> list[ImageSource]:
    cid = child.get("id")
    where = f"Koji task {parent} child {cid} ({child.get('method')})"
    if child.get("state") != CLOSED:
        log.info("%s: ignoring: state %s, not CLOSED", where,
                 koji.TASK_STATES.get(child.get("state"), child.get("state")))
        return []
    result = hub_call(f"getTaskResult({cid})", session.getTaskResult, cid)
    if not isinstance(result, dict) or not isinstance(result.get("files"), list):
        log.info("%s: ignoring: its result lists no files", where)
        return []
    hint = Hint(
        arch=result.get("arch") or child.get("arch"),
        release=result.get("version"),
        koji_release=result.get("release"),
        scratch=True,  # only scratch tasks get here; the others are read as builds
    )
    picked: list[tuple[str, str, Any]] = []
    for name in result["files"]:
        filename = safe_filename(name)
        if filename is None:
            log.warning("%s: ignoring unsafe file name %r", where, name)
            continue
        itype = image_type_of(filename)
        if itype is None:
            log.debug("%s: ignoring %s: not an image file", where, filename)
            continue
        identity = wanted_identity(filename, itype, hint, config, where)
        if identity is not None:
            picked.append((filename, itype, identity))
    if not picked:
        return []
    sizes = _task_output_sizes(cid, session)
    return [
        ImageSource(
            identity=identity,
            filename=filename,
            url=task_file_url(config.koji, cid, filename),
            image_type=itype,
            size=sizes.get(filename),
            koji_task_id=parent,
        )
        for filename, itype, identity in picked
    ]


def _task_output_sizes(task_id: int, session: Any) -> dict[str, int]:
    """File name -> size from listTaskOutput(stat=True) (the hub sends sizes as strings)."""
    out = hub_call(f"listTaskOutput({task_id})", session.listTaskOutput, task_id, stat=True)
    sizes: dict[str, int] = {}
    for name, st in (out or {}).items():
        try:
            sizes[name] = int(st["st_size"])
        except (KeyError, TypeError, ValueError):
            continue
    return sizes


def build_images(build: int | str, *, config: Config, session: Any) -> list[ImageSource]:
    """Wanted images of a COMPLETE image build (id or NVR), with recorded size and sha256."""
    info = hub_call(f"getBuild({build!r})", session.getBuild, build)
    if not info:
        raise BadInput(f"Koji build {build}: no such build on {config.koji.hub}")
    bid = info["id"]
    where = f"Koji build {bid} ({info.get('nvr')})"
    state = info.get("state")
    if state != COMPLETE:
        raise Unwanted(f"{where}: state {koji.BUILD_STATES.get(state, state)}, not COMPLETE")
    owner = info.get("owner_name")
    if owner not in config.koji.owners:
        raise Unwanted(f"{where}: owner {owner!r} not in koji.owners {config.koji.owners}")
    archives = hub_call(f"listArchives({bid}, type='image')", session.listArchives,
                        buildID=bid, type="image")
    if not archives:
        raise Unwanted(f"{where}: no image archives (not an image build)")
    sources: list[ImageSource] = []
    for archive in sorted(archives, key=lambda a: a.get("filename") or ""):
        filename = safe_filename(archive.get("filename"))
        if filename is None:
            log.warning("%s: ignoring unsafe archive file name %r", where, archive.get("filename"))
            continue
        arch = archive.get("arch") or ((archive.get("extra") or {}).get("image") or {}).get("arch")
        hint = Hint(arch=arch, release=info.get("version"), koji_release=info.get("release"),
                    scratch=False)
        itype = archive.get("type_name") or image_type_of(filename)
        identity = wanted_identity(filename, itype, hint, config, where)
        if identity is None:
            continue
        sha256 = archive.get("checksum") if archive.get("checksum_type") == SHA256 else None
        if sha256 is None:
            log.warning("%s: %s has no sha256 recorded; only its size is verified", where,
                        filename)
        size = archive.get("size")
        sources.append(ImageSource(
            identity=identity,
            filename=filename,
            url=build_image_url(config.koji, info, filename),
            image_type=itype,
            size=int(size) if size is not None else None,
            sha256=sha256,
            koji_build_id=bid,
            koji_task_id=info.get("task_id"),
        ))
    return sources
