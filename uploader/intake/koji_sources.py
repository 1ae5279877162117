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
from xml.parsers.expat import ExpatError

import koji
import requests

from shared.config import Config
from shared.errors import BadInput, TransientError, Unwanted, shown
from shared.images import Hint
from shared.koji import build_image_url, koji_id, task_file_url
from uploader.intake.wanted import (
    image_type_of,
    is_image_method,
    recorded_sha256,
    recorded_size,
    safe_filename,
    wanted_identity,
)
from uploader.model import ImageSource

log = logging.getLogger(__name__)

CLOSED = koji.TASK_STATES["CLOSED"]
COMPLETE = koji.BUILD_STATES["COMPLETE"]
SHA256 = koji.CHECKSUM_TYPES["sha256"]


def hub_call(what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call the hub, mapping failures to their broker meaning.

    Transport trouble (connection refused, HTTP 5xx, timeouts; koji already retried them within
    koji.retries) and ServerOffline/RetryError are transient; any other fault is the hub's
    answer about this id ("No such task", a bad parameter) and will not change on retry; so is
    an answer that is not XML-RPC at all (a NUL byte in a file name cannot travel in XML).
    """
    try:
        return fn(*args, **kwargs)
    except (koji.ServerOffline, koji.RetryError) as exc:
        raise TransientError(f"Koji hub unavailable for {what}: {exc}") from exc
    except koji.GenericError as exc:
        raise BadInput(f"Koji hub refused {what}: {exc}") from exc
    except (ExpatError, xmlrpc.client.ResponseError) as exc:
        raise BadInput(f"Koji hub sent an unreadable answer to {what}: {exc}") from exc
    except (requests.RequestException, xmlrpc.client.ProtocolError, OSError) as exc:
        raise TransientError(f"Koji hub unreachable for {what}: {exc}") from exc


# --- what the hub's answers must look like ---------------------------------------------------
# The hub is trusted for WHAT it says, not for the shape of it: a field of the wrong type is
# BadInput naming the field, never a TypeError deep down.

def _record(value: Any, where: str, what: str) -> dict:
    if not isinstance(value, dict):
        raise BadInput(f"{where}: the hub's {what} is not a record: {shown(value)}")
    return value


def _records(value: Any, where: str, what: str) -> list[dict]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadInput(f"{where}: the hub's {what} is not a list: {shown(value)}")
    return [_record(item, where, f"{what} entry") for item in value]


def _number(record: dict, key: str, where: str) -> int | None:
    """A state, size or checksum type: a non-negative int, or None when absent/null."""
    value = record.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadInput(f"{where}: the hub's {key!r} is not a number: {shown(value)}")
    return value


def _text(record: dict, key: str, where: str) -> str | None:
    value = record.get(key)
    if value is not None and not isinstance(value, str):
        raise BadInput(f"{where}: the hub's {key!r} is not text: {shown(value)}")
    return value


def _state_name(states: koji.Enum, state: int | None) -> str:
    return str(states.get(state, state))


def _request_opts(request: Any) -> dict | None:
    """The opts dict of an image task request (its last dict argument), if any."""
    if isinstance(request, list):
        for item in reversed(request):
            if isinstance(item, dict):
                return item
    return None


def task_images(task_id: int, *, config: Config, session: Any) -> list[ImageSource]:
    """Wanted images of a finished scratch image task; raises Unwanted/BadInput/TransientError."""
    task_id = koji_id(task_id, "Koji task id")
    where = f"Koji task {task_id}"
    info = hub_call(f"getTaskInfo({task_id})", session.getTaskInfo, task_id, request=True)
    if not info:
        raise BadInput(f"{where}: no such task on {config.koji.hub}")
    info = _record(info, where, "task info")
    if info.get("parent") is not None:
        raise Unwanted(f"{where}: a child task of {shown(info['parent'])}, not an image "
                       "parent task")
    method = _text(info, "method", where)
    if not is_image_method(method):
        raise Unwanted(f"{where}: method {method!r} does not build images")
    state = _number(info, "state", where)
    if state != CLOSED:
        raise Unwanted(f"{where}: state {_state_name(koji.TASK_STATES, state)}, not CLOSED")
    owner = _owner_name(info.get("owner"), session, where)
    if owner not in config.koji.owners:
        raise Unwanted(f"{where}: owner {owner!r} not in koji.owners {config.koji.owners}")
    opts = _request_opts(info.get("request"))
    if opts is not None and not opts.get("scratch"):
        # Non-scratch image tasks end in a build; its buildsys.build.state.change (with
        # sha256 from listArchives) is what we use, so acting here too would do it twice.
        raise Unwanted(f"{where}: not a scratch build; its build message is used instead")

    children = _records(hub_call(f"getTaskChildren({task_id})", session.getTaskChildren,
                                 task_id), where, "list of child tasks")
    by_id = {koji_id(c.get("id"), f"{where}: a child task's id"): c for c in children}
    sources: list[ImageSource] = []
    for cid in sorted(by_id):
        sources.extend(_child_images(task_id, cid, by_id[cid], config=config, session=session))
    return sources


def _owner_name(owner: Any, session: Any, where: str) -> str:
    if isinstance(owner, str):
        return owner
    owner = koji_id(owner, f"{where}: the hub's task owner")
    user = hub_call(f"getUser({owner})", session.getUser, owner)
    if not user:
        raise BadInput(f"{where}: owner id {owner} unknown to the hub")
    name = _text(_record(user, where, f"user {owner}"), "name", where)
    if name is None:
        raise BadInput(f"{where}: the hub's user {owner} has no name")
    return name


def _child_images(parent: int, cid: int, child: dict, *, config: Config,
                  session: Any) -> list[ImageSource]:
    method = child.get("method")
    label = method if isinstance(method, str) and len(method) <= 40 else shown(method)
    where = f"Koji task {parent} child {cid} ({label})"
    state = _number(child, "state", where)
    if state != CLOSED:
        log.info("%s: ignoring: state %s, not CLOSED", where,
                 _state_name(koji.TASK_STATES, state))
        return []
    result = hub_call(f"getTaskResult({cid})", session.getTaskResult, cid)
    if not isinstance(result, dict) or not isinstance(result.get("files"), list):
        log.info("%s: ignoring: its result lists no files", where)
        return []
    hint = Hint(
        arch=_text(result, "arch", where) or _text(child, "arch", where),
        release=_text(result, "version", where),
        koji_release=_text(result, "release", where),
        scratch=True,  # only scratch tasks get here; the others are read as builds
    )
    picked: list[tuple[str, str, Any]] = []
    for name in result["files"]:
        filename = safe_filename(name)
        if filename is None:
            log.warning("%s: ignoring unsafe file name %s", where, shown(name))
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
    sizes = _task_output_sizes(cid, session, where)
    sources = []
    for filename, itype, identity in picked:
        if filename not in sizes:
            # the result names a file its task directory does not hold: nothing to fetch
            log.warning("%s: ignoring %s: not in the task's output directory", where, filename)
            continue
        sources.append(ImageSource(
            identity=identity,
            filename=filename,
            url=task_file_url(config.koji, cid, filename),
            image_type=itype,
            size=sizes[filename],
            koji_task_id=parent,
        ))
    return sources


def _task_output_sizes(task_id: int, session: Any, where: str) -> dict[str, int | None]:
    """File name -> size from listTaskOutput(stat=True) (the hub sends sizes as strings);
    None for a listed file whose size is not a plain non-negative number."""
    out = hub_call(f"listTaskOutput({task_id})", session.listTaskOutput, task_id, stat=True)
    if out is None:
        return {}
    if not isinstance(out, dict):
        raise BadInput(f"{where}: the hub's task output listing is not a record: {shown(out)}")
    sizes: dict[str, int | None] = {}
    for name, st in out.items():
        size = st.get("st_size") if isinstance(st, dict) else None
        if isinstance(size, str) and size.isdigit() and len(size) < 20:
            sizes[name] = int(size)
        elif isinstance(size, int) and not isinstance(size, bool) and size >= 0:
            sizes[name] = size
        else:
            sizes[name] = None
    return sizes


def _path_part(record: dict, key: str, where: str) -> str:
    """A build field Koji's PathInfo puts into the file URL: it must be one plain path part."""
    value = _text(record, key, where)
    if value is None or safe_filename(value) is None:
        raise BadInput(f"{where}: the hub's build {key} {shown(value)} cannot be part of a "
                       "file path")
    return value


def build_images(build: int | str, *, config: Config, session: Any) -> list[ImageSource]:
    """Wanted images of a COMPLETE image build (id or NVR), with recorded size and sha256."""
    if not isinstance(build, str):
        build = koji_id(build, "Koji build id")
    info = hub_call(f"getBuild({shown(build)})", session.getBuild, build)
    if not info:
        raise BadInput(f"Koji build {shown(build)}: no such build on {config.koji.hub}")
    info = _record(info, f"Koji build {shown(build)}", "build info")
    bid = koji_id(info.get("id"), f"Koji build {shown(build)}: the hub's build id")
    where = f"Koji build {bid} ({shown(info.get('nvr'))})"
    state = _number(info, "state", where)
    if state != COMPLETE:
        raise Unwanted(f"{where}: state {_state_name(koji.BUILD_STATES, state)}, not COMPLETE")
    owner = _text(info, "owner_name", where)
    if owner not in config.koji.owners:
        raise Unwanted(f"{where}: owner {owner!r} not in koji.owners {config.koji.owners}")
    # only checked parts go into the URL (PathInfo.imagebuild reads these four)
    path = {k: _path_part(info, k, where) for k in ("name", "version", "release")}
    path["volume_name"] = (None if info.get("volume_name") in (None, "DEFAULT")
                           else _path_part(info, "volume_name", where))
    task_id = info.get("task_id")
    if task_id is not None:
        task_id = koji_id(task_id, f"{where}: the hub's task id")
    archives = _records(hub_call(f"listArchives({bid}, type='image')", session.listArchives,
                                 buildID=bid, type="image"), where, "list of archives")
    if not archives:
        raise Unwanted(f"{where}: no image archives (not an image build)")
    sources: list[ImageSource] = []
    named = []
    for archive in archives:
        filename = safe_filename(archive.get("filename"))
        if filename is None:
            log.warning("%s: ignoring unsafe archive file name %s", where,
                        shown(archive.get("filename")))
            continue
        named.append((filename, archive))
    for filename, archive in sorted(named, key=lambda pair: pair[0]):
        source = _archive_source(filename, archive, path, bid, task_id, config, where)
        if source is not None:
            sources.append(source)
    return sources


def _archive_source(filename: str, archive: dict, path: dict[str, str | None], bid: int,
                    task_id: int | None, config: Config, where: str) -> ImageSource | None:
    where = f"{where} {filename}"
    extra = archive.get("extra")
    image_extra = extra.get("image") if isinstance(extra, dict) else None
    arch = _text(archive, "arch", where) or (
        _text(image_extra, "arch", where) if isinstance(image_extra, dict) else None)
    hint = Hint(arch=arch, release=path["version"], koji_release=path["release"],
                scratch=False)
    itype = _text(archive, "type_name", where) or image_type_of(filename)
    identity = wanted_identity(filename, itype, hint, config, where)
    if identity is None:
        return None
    sha256 = None
    if _number(archive, "checksum_type", where) == SHA256:
        sha256 = recorded_sha256(archive.get("checksum"), where)
    if sha256 is None:
        log.warning("%s: no sha256 recorded; only its size is verified", where)
    return ImageSource(
        identity=identity,
        filename=filename,
        url=build_image_url(config.koji, path, filename),
        image_type=itype,
        size=recorded_size(archive.get("size"), where),
        sha256=sha256,
        koji_build_id=bid,
        koji_task_id=task_id,
    )
