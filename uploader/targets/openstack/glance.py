"""One cloud's Glance: find what an earlier run made, clear what it left half done, upload.

    connect(cloud) -> find_images(name) -> done?  -> (fix visibility/tags) -> the image
                                         -> half-done leftovers of ours -> delete
                                         -> upload (create record, stream the qcow2, check)

What makes it safe to run again at any moment (a redelivery, a crash, a cut connection):

- An image is ours when it carries `fedimg_source_sha256`, set when its record is created; an
  active image of the same name with the same source checksum is the finished work, and nothing
  is uploaded again.
- Any image of ours under that name that is not active (`queued`: record made, data never
  arrived or Glance reset it after a broken upload; `saving`/`uploading`/`importing`: a writer
  that died; `killed`) is deleted before a new upload, so no half image outlives the next run.
- The upload streams the verified file through a reader that hashes what it sends; after the
  upload the size and the hash Glance computed itself must match, or the image is deleted.
- openstacksdk deletes the record when the upload fails while the cloud is reachable; when it is
  not (the network went away), the leftover is deleted by the next run, as above.
"""

from __future__ import annotations

import hashlib
import io
import logging
import time
from collections.abc import Callable
from typing import Any

import openstack
import openstack.exceptions
import requests
from keystoneauth1 import exceptions as ks_exceptions

from shared.errors import CloudError, CloudTimeout, CloudTransient, FedimgError, one_line
from uploader.model import ImageSource
from uploader.targets.openstack.config import OpenStackConfig

log = logging.getLogger(__name__)

SHA256_PROPERTY = "fedimg_source_sha256"
HALF_DONE = frozenset({"queued", "saving", "uploading", "importing", "killed"})
DISK_FORMAT = "qcow2"
CONTAINER_FORMAT = "bare"
PROGRESS_EVERY = 30.0  # seconds between progress log lines of one upload
CHUNK = 1 << 20

# Glance arch names are Fedora's; aarch64 guests boot only through UEFI.
_FIRMWARE = {"aarch64": {"hw_firmware_type": "uefi"}}


def connect(cloud: str, settings: OpenStackConfig) -> Any:
    """An openstacksdk Connection to `cloud` of clouds.yaml; CloudError if it is not there."""
    try:
        return openstack.connect(cloud=cloud, api_timeout=settings.timeout)
    except openstack.exceptions.ConfigException as exc:
        raise CloudError(f"cloud {cloud!r}: {one_line(exc)} (is it in clouds.yaml?)") from exc


def properties(source: ImageSource) -> dict[str, str]:
    """The Glance properties of an image: what OpenStack users filter by, and where it came from.

    os_distro/os_version/architecture follow the OpenStack image property conventions (the
    keys Nova and Horizon read); fedimg_* record the identity and the source.
    """
    ident = source.identity
    props = {
        "os_distro": "fedora",
        "os_version": str(ident.release).lower(),
        "architecture": str(ident.arch),
        **_FIRMWARE.get(str(ident.arch), {}),
        "fedimg_release": str(ident.release),
        "fedimg_subvariant": str(ident.subvariant),
        "fedimg_channel": str(ident.channel),
        "fedimg_source": source.origin.tag,
        SHA256_PROPERTY: str(source.sha256),
    }
    for key, value in source.origin.fields().items():
        if value is not None:
            props[f"fedimg_{key}"] = str(value)
    return props


def tags(source: ImageSource, settings: OpenStackConfig) -> list[str]:
    """The configured tags plus the channel and the release, so `--tag nightly` finds them."""
    ident = source.identity
    return sorted({*settings.tags, str(ident.channel), f"release-{str(ident.release).lower()}"})


def cloud_error(exc: BaseException, what: str) -> FedimgError:
    """The fedimg error for a failed Glance call: transient for network faults, 5xx and 429."""
    if isinstance(exc, FedimgError):
        return exc
    for cause in _chain(exc):
        if isinstance(cause, ks_exceptions.ConnectTimeout | requests.Timeout):
            return CloudTimeout(f"{what}: {one_line(exc)}")
        # DiscoveryFailure: the endpoint did not answer its version document (down, or
        # misconfigured: either way bounded by the redeliveries)
        if isinstance(cause, ks_exceptions.ConnectionError | ks_exceptions.DiscoveryFailure
                      | requests.ConnectionError | ConnectionError):
            return CloudTransient(f"{what}: {one_line(exc)}")
        status = getattr(cause, "status_code", None)
        if isinstance(cause, openstack.exceptions.HttpException) and isinstance(status, int):
            if status >= 500 or status in (408, 409, 429):
                return CloudTransient(f"{what}: {one_line(exc)}")
            return CloudError(f"{what}: {one_line(exc)}")
    return CloudError(f"{what}: {one_line(exc)}")


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    while exc is not None and exc not in seen and len(seen) < 10:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def find_images(conn: Any, name: str) -> list[Any]:
    """Every image of ours named `name`, whatever its status or visibility."""
    return [i for i in conn.image.images(name=name, visibility="all")
            if SHA256_PROPERTY in (i.properties or {})]


def finished(found: list[Any], sha256: str) -> Any | None:
    """The active image made from exactly this source file, if there is one."""
    done = [i for i in found if i.status == "active"
            and (i.properties or {}).get(SHA256_PROPERTY) == sha256]
    return min(done, key=lambda i: (i.created_at or "", i.id)) if done else None


def clear_leftovers(conn: Any, cloud: str, found: list[Any]) -> list[str]:
    """Delete our half-done images (see the module docstring); their ids."""
    removed = []
    for image in found:
        if image.status in HALF_DONE:
            log.warning("%s: deleting %s %s (%s) left by an upload that did not finish",
                        cloud, image.status, image.id, image.name)
            conn.image.delete_image(image.id, ignore_missing=True)
            removed.append(image.id)
    return removed


def settle(conn: Any, image: Any, settings: OpenStackConfig, wanted_tags: list[str]) -> Any:
    """Make an existing image's visibility what the config asks and add missing tags.

    Tags go through Glance's own tag calls (PUT .../tags/<tag>): the JSON patch openstacksdk
    would make for a changed list addresses tags by index, which Glance refuses.
    """
    for tag in sorted(set(wanted_tags) - set(image.tags or [])):
        conn.image.add_tag(image.id, tag)
    if image.visibility != settings.visibility:
        conn.image.update_image(image.id, visibility=settings.visibility)
    return conn.image.get_image(image.id)


class HashingReader(io.RawIOBase):
    """A file read once, front to back, hashing what is sent and logging progress."""

    def __init__(self, path: str, size: int, label: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 - closed in close()
        self.size = size
        self.sent = 0
        self.label = label
        self.digests = {"md5": hashlib.md5(usedforsecurity=False), "sha512": hashlib.sha512()}
        self._clock = clock
        self._started = self._last = clock()

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        data = self._file.read(CHUNK if n is None or n < 0 else n)
        for digest in self.digests.values():
            digest.update(data)
        self.sent += len(data)
        now = self._clock()
        if data and now - self._last >= PROGRESS_EVERY:
            self._last = now
            log.info("%s: %d/%d MiB sent, %.0f s", self.label, self.sent >> 20, self.size >> 20,
                     now - self._started)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def close(self) -> None:
        self._file.close()
        super().close()


def check_stored(image: Any, reader: HashingReader) -> str | None:
    """Why the stored image is not exactly the bytes sent, or None if it is.

    Glance hashes the data it stores (`os_hash_algo`/`os_hash_value`, sha512 by default, and
    the legacy md5 `checksum`); a cloud configured with another algorithm is checked by md5.
    """
    if image.status != "active":
        return f"status is {image.status} after the upload, not active"
    if image.size is not None and image.size != reader.sent:
        return f"Glance stored {image.size} bytes, {reader.sent} were sent"
    algo, value = image.hash_algo, image.hash_value
    if algo in reader.digests and value:
        if value != reader.digests[algo].hexdigest():
            return f"Glance's {algo} differs from what was sent"
    elif image.checksum and image.checksum != reader.digests["md5"].hexdigest():
        return "Glance's md5 checksum differs from what was sent"
    return None


def upload(conn: Any, cloud: str, source: ImageSource, path: str, size: int,
           settings: OpenStackConfig) -> Any:
    """Create the image record, stream the qcow2 and check what Glance stored; the image."""
    name = source.identity.name
    reader = HashingReader(path, size, f"{cloud}: {name}")
    try:
        image = conn.image.create_image(
            name, data=reader, size=size, sha256=source.sha256,
            disk_format=DISK_FORMAT, container_format=CONTAINER_FORMAT,
            visibility=settings.visibility, tags=tags(source, settings),
            allow_duplicates=True,  # duplicates were looked for, by checksum, before this
            validate_checksum=False,  # checked below, against Glance's own hash of the data
            **properties(source))
    finally:
        reader.close()
    stored = conn.image.get_image(image.id)
    problem = check_stored(stored, reader)
    if problem:
        conn.image.delete_image(stored.id, ignore_missing=True)
        raise CloudTransient(f"{cloud}: {name}: {problem}; the image was deleted")
    log.info("%s: uploaded %s as %s (%d MiB)", cloud, name, stored.id, reader.sent >> 20)
    return stored
