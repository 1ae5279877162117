"""Images of a Pungi compose, read with productmd from images.json below compose.base_url.

Only the compose id comes from the message; its `location` is never used. Where a compose lives
below base_url is config, `compose.layouts`: directory templates tried in order until one has
`compose/metadata/images.json`. Fedora's kojipkgs layout is
    <base_url>/rawhide/Fedora-Rawhide-20240829.n.1/     Rawhide nightlies
    <base_url>/41/Fedora-41-20241024.0/                 production (candidate) composes
    <base_url>/branched/Fedora-41-20240911.n.0/         branched nightlies
hence the default ["{release_lower}/{compose_id}", "branched/{compose_id}", "{compose_id}"].
Placeholders: {compose_id}, {release} (as in the id: "Rawhide", "41"), {release_lower}.

Safety: the compose id must be a single plain path component (letters, digits, '.', '_', '-';
no '..'), every rendered template must stay below base_url, the file must say it describes that
same compose id, and image paths from images.json must be plain relative paths. sha256 and size
come from images.json and are verified by the fetch.
"""

from __future__ import annotations

import json
import logging
import re
import string

import productmd.images

from shared.config import Config
from shared.errors import BadInput, shown
from shared.images import Hint
from uploader.intake.fetch import get_small
from uploader.intake.wanted import (
    declared_type,
    recorded_sha256,
    recorded_size,
    safe_filename,
    wanted_identity,
)
from uploader.model import Clients, ImageSource

log = logging.getLogger(__name__)

IMAGES_JSON = "compose/metadata/images.json"
COMPOSE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
_RELEASE = re.compile(r"-(?P<rel>\d{1,3}|[Rr]awhide|ELN|eln)-\d{8}(?:\.[a-z])?\.\d+$")
_FIELDS = {"compose_id", "release", "release_lower"}


def valid_compose_id(compose_id: object) -> str:
    """The id if it is one plain path component, else BadInput."""
    if (not isinstance(compose_id, str) or ".." in compose_id
            or not COMPOSE_ID.fullmatch(compose_id)):
        raise BadInput(f"invalid compose id {shown(compose_id)}")
    return compose_id


def compose_dirs(compose_id: str, config: Config) -> list[str]:
    """Candidate compose directories (URLs, no trailing '/') from compose.layouts, in order."""
    compose_id = valid_compose_id(compose_id)
    m = _RELEASE.search(compose_id)
    values = {"compose_id": compose_id}
    if m:
        values.update(release=m["rel"], release_lower=m["rel"].lower())
    base = config.compose.base_url.rstrip("/")
    out: list[str] = []
    for template in config.compose.layouts:
        names = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
        if names - _FIELDS:
            raise BadInput(f"compose.layouts entry {template!r}: unknown placeholder "
                           f"{sorted(names - _FIELDS)[0]!r}")
        if names - set(values):
            continue  # needs a release the id does not carry
        rel = template.format(**values).strip("/")
        if not rel or any(part in ("", ".", "..") for part in rel.split("/")):
            continue
        out.append(f"{base}/{rel}")
    return out


def compose_images(compose_id: str, *, config: Config, clients: Clients) -> list[ImageSource]:
    """Wanted images of a compose; raises BadInput if its images.json cannot be found/used."""
    where = f"compose {compose_id}"
    tried: list[str] = []
    for directory in compose_dirs(compose_id, config):
        url = f"{directory}/{IMAGES_JSON}"
        tried.append(url)
        data = get_small(clients.http, url, config=config)
        if data is not None:
            return _images_from(data, directory, compose_id, config, where)
    raise BadInput(f"{where}: no images.json below {config.compose.base_url} "
                   f"(tried {', '.join(tried) or 'nothing: no layout fits the id'})")


def _images_from(data: bytes, directory: str, compose_id: str, config: Config,
                 where: str) -> list[ImageSource]:
    images = productmd.images.Images()
    try:
        images.deserialize(json.loads(data))
    except Exception as exc:  # productmd raises bare TypeError/ValueError/KeyError on bad input
        raise BadInput(f"{where}: unusable images.json: {exc.__class__.__name__}: {exc}") \
            from exc
    if images.compose.id != compose_id:
        raise BadInput(f"{where}: images.json describes compose {images.compose.id!r}")
    seen: set[str] = set()
    sources: list[ImageSource] = []
    for variant in sorted(images.images):
        for arch in sorted(images.images[variant]):
            for image in sorted(images.images[variant][arch], key=lambda i: i.path):
                if image.path in seen:
                    continue
                seen.add(image.path)
                source = _source(image, directory, compose_id, images.compose.type, config,
                                 f"{where} {variant}.{arch}")
                if source is not None:
                    sources.append(source)
    return sources


def _source(image: productmd.images.Image, directory: str, compose_id: str,
            compose_type: str | None, config: Config, where: str) -> ImageSource | None:
    parts = image.path.split("/")
    if image.path.startswith("/") or any(safe_filename(p) is None for p in parts):
        log.warning("%s: ignoring image with unsafe path %s", where, shown(image.path))
        return None
    filename = parts[-1]
    hint = Hint(arch=image.arch, subvariant=image.subvariant or None, compose_id=compose_id,
                compose_type=compose_type)
    image_type = declared_type(image.type, filename)  # F40/F41 call the GCE archive "docker"
    identity = wanted_identity(filename, image_type, hint, config, where)
    if identity is None:
        return None
    checksums = image.checksums or {}
    if not isinstance(checksums, dict):
        raise BadInput(f"{where}: {filename}: checksums are not a record: {shown(checksums)}")
    sha256 = recorded_sha256(checksums.get("sha256"), f"{where}: {filename}")
    if sha256 is None:
        log.warning("%s: %s has no sha256 in images.json; only its size is verified", where,
                    filename)
    return ImageSource(
        identity=identity,
        filename=filename,
        url=f"{directory}/compose/{image.path}",
        image_type=image_type,
        size=recorded_size(image.size, f"{where}: {filename}"),
        sha256=sha256,
        compose_id=compose_id,
    )
