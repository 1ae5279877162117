"""Which images are wanted, and the rules every file name from a source must pass.

Shared by the three sources, so "wanted" means the same for a Koji task, a Koji build and a
compose: an image type from [uploader] image_types, a subvariant from [uploader] subvariants,
and a name whose release, subvariant, arch and channel are known (messages need all four).
"""

from __future__ import annotations

import logging
import re

from shared.config import Config
from shared.errors import BadInput, shown
from shared.images import Hint, ImageIdentity, identify

log = logging.getLogger(__name__)

# Koji archive type / productmd image type -> file name suffixes Koji and pungi give them.
TYPE_SUFFIXES: dict[str, tuple[str, ...]] = {
    "raw-xz": (".raw.xz",),
    "raw": (".raw",),
    "qcow2": (".qcow2",),
    "tar-gz": (".tar.gz",),
    "vhd-compressed": (".vhdfixed.xz", ".vhd.xz"),
}

# Parent task methods that produce images, and nothing else: Koji's image-build (image),
# livemedia, appliance, kiwi and image-builder tasks.
IMAGE_METHODS = frozenset({"image", "livemedia", "appliance", "kiwiBuild", "imageBuilderBuild"})



def is_image_method(method: object) -> bool:
    """True for a Koji task method that makes images (a value of any type may be asked)."""
    return isinstance(method, str) and method in IMAGE_METHODS


_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+~-]{0,254}")


def safe_filename(name: object) -> str | None:
    """The name if it is a plain file name (no '/', no '..', no control chars), else None.

    Names come from Koji results, archives and images.json: text an attacker who can build in
    Koji influences. A name that fails this never becomes part of a URL or a local path.
    """
    if not isinstance(name, str) or ".." in name or not _SAFE_NAME.fullmatch(name):
        return None
    return name


def recorded_size(value: object, where: str) -> int | None:
    """The size a source records for a file: a non-negative int, or None if it records none."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadInput(f"{where}: recorded size is not a number of bytes: {shown(value)}")
    return value


def recorded_sha256(value: object, where: str) -> str | None:
    """The sha256 a source records for a file (64 hex digits, lower-cased), or None if none."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _SHA256.fullmatch(value):
        raise BadInput(f"{where}: recorded sha256 is not 64 hex digits: {shown(value)}")
    return value.lower()


def declared_type(image_type: str | None, filename: str) -> str | None:
    """The image type to route by: the one a source declares, but for one known mislabel.

    Fedora 40 and 41 composes list the GCE image (``Fedora-Cloud-Base-GCE-41-1.4.x86_64.tar.gz``,
    ``Fedora-Cloud-Base-GCE.x86_64-40-1.14.tar.gz``) with productmd type ``docker``, the type of
    the container archives beside it; from Fedora 42 on it is ``tar-gz``. A ``docker`` image
    whose name is a GCE archive (the cloud word GCE, suffix ``.tar.gz``) is a ``tar-gz`` image;
    every other ``docker`` image (the container archives, all ``.tar.xz``) stays ``docker``.
    """
    if (image_type == "docker" and filename.endswith(TYPE_SUFFIXES["tar-gz"])
            and identify(filename).cloud == "GCE"):
        return "tar-gz"
    return image_type


def image_type_of(filename: str) -> str | None:
    """Image type of a file name by suffix ("x.raw.xz" -> "raw-xz"); None if not an image."""
    best: tuple[int, str] | None = None
    for itype, suffixes in TYPE_SUFFIXES.items():
        for suffix in suffixes:
            if filename.endswith(suffix) and (best is None or len(suffix) > best[0]):
                best = (len(suffix), itype)
    return best[1] if best else None


def wanted_identity(
    filename: str, image_type: str | None, hint: Hint, config: Config, where: str
) -> ImageIdentity | None:
    """Identity of a wanted image, or None after one log line saying why it is not wanted."""
    if image_type not in config.uploader.image_types:
        log.info("%s: ignoring %s: image type %s not in uploader.image_types %s",
                 where, filename, image_type or "unknown", config.uploader.image_types)
        return None
    identity = identify(filename, hint=hint)
    if identity.subvariant not in config.uploader.subvariants:
        log.info("%s: ignoring %s: subvariant %s not in uploader.subvariants %s",
                 where, filename, identity.subvariant, config.uploader.subvariants)
        return None
    if not identity.known:
        missing = [k for k in ("release", "subvariant", "arch", "channel")
                   if getattr(identity, k) is None]
        log.info("%s: ignoring %s: cannot tell its %s", where, filename, ", ".join(missing))
        return None
    return identity
