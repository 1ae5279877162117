"""Small but real container image archives, as Fedora's composes ship them.

Pungi puts each container image of a compose into images.json as one archive per arch:
``Fedora-Container-Base-Generic-43-1.6.x86_64.oci.tar.xz``, an OCI image layout (``oci-layout``,
``index.json``, ``blobs/sha256/...``) in a tar, xz-compressed; older composes (type "docker")
shipped docker-archive tars (``manifest.json``, a config and layer tars). These helpers write both
kinds with nothing but ``tarfile``, ``gzip`` and ``json`` (no container engine), deterministically:
the same arguments give the same bytes, so every digest can be pinned by a test and a second
build of the "same compose" pushes nothing new.

Each image is one small gzip layer holding an os-release naming the arch and the compose, plus a
few seeded files, and an image config whose ``architecture``/``os``/``variant`` say the platform,
as the images a registry client pulls for its platform must.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import lzma
import pathlib
import random
import tarfile

MTIME = 1764028800  # 2025-11-25T00:00:00Z: every tar member and gzip header carries it
CREATED = "2025-11-25T00:00:00Z"

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"

# Fedora arch -> OCI platform (architecture, variant)
PLATFORMS = {
    "x86_64": ("amd64", None),
    "aarch64": ("arm64", "v8"),
    "ppc64le": ("ppc64le", None),
    "s390x": ("s390x", None),
}


@dataclasses.dataclass(frozen=True)
class ContainerArchive:
    """An archive the harness made, with what tests assert against."""

    path: pathlib.Path
    arch: str
    kind: str  # "oci" or "docker"
    manifest_digest: str  # digest of the image manifest inside ("sha256:..."; OCI only)
    config_digest: str
    layer_digest: str
    sha256: str  # of the archive file itself, as images.json records it
    size: int


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _json(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def _add(tar: tarfile.TarFile, name: str, data: bytes | None, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.mtime = MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    if data is None:
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        tar.addfile(info)
        return
    info.size = len(data)
    info.mode = mode
    tar.addfile(info, io.BytesIO(data))


def _tar(members: list[tuple[str, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            _add(tar, name, data)
    return buf.getvalue()


def _layer(arch: str, label: str, seed: int, data_kib: int) -> bytes:
    """An uncompressed root filesystem layer: /etc/os-release and some seeded data."""
    rng = random.Random(f"{label}:{arch}:{seed}")
    os_release = (f'NAME="Fedora Linux"\nVERSION_ID={label}\nID=fedora\n'
                  f'VARIANT_ID=container\n# fedimg stand-in image for {arch}\n').encode()
    return _tar([
        ("etc/", None),
        ("etc/os-release", os_release),
        ("usr/", None),
        ("usr/share/", None),
        ("usr/share/fedimg-standin.bin", rng.randbytes(data_kib * 1024)),
    ])


def _config(arch: str, label: str, diff_id: str, labels: dict[str, str]) -> bytes:
    architecture, variant = PLATFORMS[arch]
    config: dict = {
        "architecture": architecture,
        "os": "linux",
        "created": CREATED,
        "config": {"Cmd": ["/bin/bash"], "Env": ["container=oci"],
                   "Labels": {"name": "fedora", "version": label, **labels}},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": CREATED, "created_by": "fedimg standins.container_archives"}],
    }
    if variant:
        config["variant"] = variant
    return _json(config)


def make_container_archive(
    path: pathlib.Path,
    arch: str,
    *,
    label: str = "43",
    kind: str = "oci",
    seed: int = 0,
    data_kib: int = 64,
    labels: dict[str, str] | None = None,
    compress: bool = True,
) -> ContainerArchive:
    """Write an OCI (`kind="oci"`) or docker-archive (`kind="docker"`) image for `arch` to `path`.

    `label` goes into the image's os-release and version label; `seed` varies the data, so two
    "composes" differ. With `compress` the tar is xz-compressed, as pungi ships it. The file is
    written to a temporary name and renamed, so it is never seen half written.
    """
    if arch not in PLATFORMS:
        raise ValueError(f"no OCI platform known for arch {arch!r}")
    if kind not in ("oci", "docker"):
        raise ValueError(f"kind must be 'oci' or 'docker', not {kind!r}")
    raw_layer = _layer(arch, label, seed, data_kib)
    diff_id = _digest(raw_layer)
    config = _config(arch, label, diff_id, labels or {})
    config_digest = _digest(config)
    if kind == "oci":
        layer = gzip.compress(raw_layer, compresslevel=6, mtime=0)
        layer_digest = _digest(layer)
        manifest = _json({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": layer_digest,
                        "size": len(layer)}],
        })
        manifest_digest = _digest(manifest)
        index = _json({"schemaVersion": 2, "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": manifest_digest, "size": len(manifest)}]})
        blob = "blobs/sha256/"
        tar = _tar([
            ("blobs/", None),
            ("blobs/sha256/", None),
            (blob + config_digest[7:], config),
            (blob + layer_digest[7:], layer),
            (blob + manifest_digest[7:], manifest),
            ("index.json", index),
            ("oci-layout", _json({"imageLayoutVersion": "1.0.0"})),
        ])
    else:
        layer_digest = diff_id
        manifest_digest = ""  # a docker archive has no registry manifest of its own
        entries = [{"Config": f"{config_digest[7:]}.json",
                    "RepoTags": [f"fedora:{label}-{arch}"],
                    "Layers": [f"{diff_id[7:]}/layer.tar"]}]
        tar = _tar([
            (f"{config_digest[7:]}.json", config),
            (f"{diff_id[7:]}/", None),
            (f"{diff_id[7:]}/layer.tar", raw_layer),
            ("manifest.json", _json(entries)),
        ])
    data = lzma.compress(tar, preset=6) if compress else tar
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    part.write_bytes(data)
    part.replace(path)
    return ContainerArchive(path=path, arch=arch, kind=kind, manifest_digest=manifest_digest,
                            config_digest=config_digest, layer_digest=layer_digest,
                            sha256=hashlib.sha256(data).hexdigest(), size=len(data))

