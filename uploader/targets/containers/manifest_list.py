"""The multi-arch manifest list (an OCI image index) of one compose's image, byte for byte.

The index is built from what the registry holds under each arch's tag, in a fixed order with
fixed JSON formatting, so every arch's consumer, and every redelivery, builds the same bytes and
therefore the same digest: pushing it again changes nothing. It carries the compose id
(tags.COMPOSE_ANNOTATION), which is how a later push tells whether a tag may move.

skopeo pushes it from a small OCI layout holding only the index (`--multi-arch index-only`): the
arch images it names are already in the registry, which refuses the list if one is missing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

from shared.errors import BadInput
from uploader.targets.containers.tags import COMPOSE_ANNOTATION

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
REF = "list"

# Fedora arch -> OCI platform; the arches the containers target takes
PLATFORMS: dict[str, dict[str, str]] = {
    "x86_64": {"architecture": "amd64", "os": "linux"},
    "aarch64": {"architecture": "arm64", "os": "linux", "variant": "v8"},
    "ppc64le": {"architecture": "ppc64le", "os": "linux"},
    "s390x": {"architecture": "s390x", "os": "linux"},
}


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def check_platform(arch: str, config: dict, name: str) -> None:
    """BadInput unless an image config says the platform its Fedora arch means."""
    want = PLATFORMS.get(arch)
    if want is None:
        raise BadInput(f"{name}: no OCI platform known for arch {arch!r}")
    got = {k: config.get(k) for k in ("architecture", "os")}
    if got != {k: want[k] for k in ("architecture", "os")}:
        raise BadInput(f"{name}: the image says {got['os']}/{got['architecture']}, "
                       f"images.json says {arch}")


@dataclasses.dataclass(frozen=True)
class ManifestList:
    data: bytes

    @property
    def digest(self) -> str:
        return digest_of(self.data)


def build(compose_id: str, arches: dict[str, bytes]) -> ManifestList:
    """The index naming each arch's manifest (arch -> its exact bytes, as the registry has it)."""
    entries = []
    for arch in sorted(arches, key=lambda a: (PLATFORMS[a]["architecture"], a)):
        raw = arches[arch]
        try:
            media_type = json.loads(raw).get("mediaType") or OCI_MANIFEST
        except (ValueError, AttributeError):
            raise BadInput(f"the {arch} image of {compose_id} has no readable manifest") from None
        entries.append({"mediaType": media_type, "digest": digest_of(raw), "size": len(raw),
                        "platform": PLATFORMS[arch]})
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries,
             "annotations": {COMPOSE_ANNOTATION: compose_id}}
    return ManifestList(json.dumps(index, sort_keys=True, separators=(",", ":")).encode())


def write_layout(directory: Path, manifest_list: ManifestList) -> Path:
    """An OCI layout holding only the index, under the reference name REF."""
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    (blobs / manifest_list.digest.removeprefix("sha256:")).write_bytes(manifest_list.data)
    (directory / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (directory / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": OCI_INDEX, "digest": manifest_list.digest,
        "size": len(manifest_list.data),
        "annotations": {"org.opencontainers.image.ref.name": REF}}]}))
    return directory
