"""The downloads target: a verified raw image in, qcow2 + raw.tar.xz + CHECKSUM out, one message
per published file and one per failed format.

Layout: `<destination>/<release>/<channel>/<image name>.qcow2` and `.raw.tar.xz`, with the
directory's CHECKSUM beside them; URLs are downloads.base_url + the same relative path.

Idempotency: a format whose file is already at the destination with the size and sha256 of its
CHECKSUM entry is neither produced nor announced again (it was announced when it was published);
it still counts as published in the outcome. Order per run: convert (both formats at once), store
each file under its final name as soon as it is complete, merge the CHECKSUM (last), then emit.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from urllib.parse import quote

from shared.config import Config
from shared.errors import (
    ConversionNoSpace,
    DestinationError,
    FedimgError,
    UnusableIdentity,
)
from shared.files import sha256_file
from shared.images import ImageIdentity
from shared.messages import DownloadPublishedV1
from uploader.failures import announce_failure
from uploader.model import Clients, Emit, TargetOutcome, VerifiedImage
from uploader.targets.downloads.checksum import CHECKSUM_NAME, Entry
from uploader.targets.downloads.convert import FORMATS, Result, run_conversions
from uploader.targets.downloads.destinations import Destination, open_destination

log = logging.getLogger(__name__)

TARGET = "downloads"
STALE_MARGIN = 3600  # seconds beyond downloads.timeout before a temporary file counts as stale

# Path segments we create from the image identity: no separators, no "." / "..", no spaces.
_SAFE_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where one image's artifacts go, relative to the destination and to base_url."""

    rel_dir: str
    name: str

    def filename(self, fmt: str) -> str:
        return f"{self.name}.{fmt}"

    @property
    def member(self) -> str:
        """The file name inside the raw.tar.xz."""
        return f"{self.name}.raw"

    def url(self, base_url: str, filename: str) -> str:
        return "/".join([base_url.rstrip("/"), *map(quote, self.rel_dir.split("/")),
                         quote(filename)])


def layout_for(identity: ImageIdentity) -> Layout:
    """`<release>/<channel>` and the image name, refused if any would not be a plain name."""
    fields = {"release": identity.release, "channel": identity.channel, "name": identity.name}
    for field, value in fields.items():
        if not value or not _SAFE_SEGMENT.match(value):
            raise UnusableIdentity(
                f"image {identity.name!r}: {field} {value!r} cannot be used in a download path"
            )
    return Layout(rel_dir=f"{identity.release}/{identity.channel}", name=identity.name)


def publish_downloads(
    image: VerifiedImage, *, config: Config, clients: Clients, emit: Emit
) -> TargetOutcome:
    """Publish `image` as compressed qcow2 and sparse raw.tar.xz (see module docstring)."""
    cfg = config.downloads
    outcome = TargetOutcome(target=TARGET)
    failures: dict[str, FedimgError] = {}  # format -> why it failed

    def finish() -> TargetOutcome:
        for fmt, error in failures.items():
            log.error("downloads %s of %s failed (%s): %s", fmt, image.identity.name, error.kind,
                      error)
            announce_failure(emit, image.source, target=TARGET, destination=fmt, error=error)
            outcome.failed.append(fmt)
        return outcome

    try:
        layout = layout_for(image.identity)
    except UnusableIdentity as e:
        failures.update(dict.fromkeys(FORMATS, e))
        return finish()

    try:
        dest = open_destination(cfg.destination, clients, config.aws,
                                stale_after=cfg.timeout + STALE_MARGIN)
        existing = dest.read_checksum(layout.rel_dir)
        todo = []
        for fmt in FORMATS:
            entry = existing.get(layout.filename(fmt))
            if entry is not None and dest.has(layout.rel_dir, entry):
                log.info("%s is already published with a matching CHECKSUM entry; not redone",
                         dest.describe(layout.rel_dir, entry.name))
                outcome.published.append(fmt)
            else:
                todo.append(fmt)
    except DestinationError as e:
        failures.update(dict.fromkeys(FORMATS, e))
        return finish()
    if not todo:
        return outcome

    stored = _produce(image, layout, dest, todo, config, failures)
    if stored:
        try:
            dest.update_checksum(layout.rel_dir, stored.values())
        except DestinationError as e:
            # The files are complete under their final names but unlisted: a re-run redoes them.
            failures.update(dict.fromkeys(stored, e))
            stored = {}

    checksum_url = layout.url(cfg.base_url, CHECKSUM_NAME)
    for fmt in FORMATS:
        if fmt in stored:
            entry = stored[fmt]
            url = layout.url(cfg.base_url, entry.name)
            log.info("published %s (%d bytes, sha256 %s) at %s", entry.name, entry.size,
                     entry.sha256, url)
            emit(DownloadPublishedV1.from_body(image.source.body(
                format=fmt, url=url, size=entry.size, sha256=entry.sha256,
                checksum_url=checksum_url,
            )))
            outcome.published.append(fmt)
    return finish()


def _produce(
    image: VerifiedImage,
    layout: Layout,
    dest: Destination,
    todo: list[str],
    config: Config,
    failures: dict[str, FedimgError],
) -> dict[str, Entry]:
    """Convert and store every format in `todo`; return the stored ones' CHECKSUM entries and
    record the others in `failures`."""
    cfg = config.downloads
    stored: dict[str, Entry] = {}
    started = time.monotonic()

    def on_done(result: Result) -> None:
        if result.error is not None:
            failures[result.fmt] = result.error
            return
        name = layout.filename(result.fmt)
        log.info("%s converted in %.1f s", name, time.monotonic() - started)
        try:
            size = result.path.stat().st_size
            digest = sha256_file(result.path)
            dest.store(layout.rel_dir, result.path, name, result.fmt, digest)
        except DestinationError as e:
            failures[result.fmt] = e
            return
        except OSError as e:  # the converted file vanished or cannot be read back
            failures[result.fmt] = DestinationError(str(e))
            return
        stored[result.fmt] = Entry(name=name, sha256=digest, size=size)

    try:
        with dest.staging(layout.rel_dir, image.raw_path.parent) as staging:
            outputs = {fmt: staging.path_for(layout.filename(fmt)) for fmt in todo}
            run_conversions(
                image.raw_path, layout.member, outputs,
                compression=cfg.qcow2_compression, xz_threads=cfg.xz_threads,
                timeout=cfg.timeout, on_done=on_done,
            )
    except DestinationError as e:  # the destination directory cannot be created
        _fail_rest(todo, stored, failures, e)
    except OSError as e:  # no scratch space beside the raw image for the tar member link
        _fail_rest(todo, stored, failures, ConversionNoSpace(str(e)))
    return stored


def _fail_rest(todo: list[str], stored: dict[str, Entry], failures: dict[str, FedimgError],
               error: FedimgError) -> None:
    for fmt in todo:
        if fmt not in stored and fmt not in failures:
            failures[fmt] = error
