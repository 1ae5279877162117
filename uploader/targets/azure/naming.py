"""Deterministic gallery names for one image: every run computes the same ones.

- image definition: `<prefix>-<release>[-Nightly|-Weekly]-<x64|Arm64>` (Fedora-Cloud-43-x64,
  Fedora-Cloud-Rawhide-Nightly-Arm64): releases and candidates share their release's
  definition, nightlies and weeklies have their own, so a nightly never becomes the "latest"
  version a user of the release definition gets;
- image version: `<release>.<YYYYMMDD>.<respin>` from the compose (Rawhide: `0.<date>.<respin>`),
  or `<release>.<label major>.<label minor>` for an image named by a label only (43-1.6);
- tags on the version: fedimg-sha256 (of the .vhdfixed.xz) and the identity, so a redelivery
  recognises its own version.
"""

from __future__ import annotations

import re

from shared.errors import BadInput
from shared.images import compose_version
from uploader.model import ImageSource
from uploader.targets.azure.settings import AzureConfig

TAG_SHA256 = "fedimg-sha256"
TAG_CHANNEL = "fedimg-channel"
AZURE_ARCH = {"x86_64": "x64", "aarch64": "Arm64"}


def definition_name(source: ImageSource, azure: AzureConfig) -> str:
    ident = source.identity
    parts = [azure.definition_prefix, ident.release or "unknown"]
    if ident.channel in ("nightly", "weekly"):
        parts.append(ident.channel.capitalize())
    parts.append(AZURE_ARCH.get(ident.arch or "", ident.arch or "unknown"))
    return re.sub(r"[^A-Za-z0-9._-]", "-", "-".join(parts))[:80]


def version_name(source: ImageSource) -> str:
    ident = source.identity
    major = ident.release if (ident.release or "").isdigit() else "0"
    date, respin = ident.compose_date, ident.respin
    if date is None and source.compose_id:
        parsed = compose_version(source.compose_id)
        if parsed:
            m = re.fullmatch(r"(\d{8})(?:\.[a-z])?\.(\d+)", parsed[1])
            if m:
                date, respin = m[1], int(m[2])
    if date:
        return f"{int(major)}.{int(date)}.{respin or 0}"
    label = re.fullmatch(r"(\d{1,9})\.(\d{1,9})", ident.version_label or "")
    if label:
        return f"{int(major)}.{int(label[1])}.{int(label[2])}"
    raise BadInput(f"{ident.name}: no compose date or version label to name an image version")


def tags(source: ImageSource) -> dict[str, str]:
    ident = source.identity
    values = {
        TAG_SHA256: source.sha256,
        "fedimg-name": ident.name,
        "fedimg-release": ident.release,
        "fedimg-arch": ident.arch,
        TAG_CHANNEL: ident.channel,
        "fedimg-source": source.origin.tag,
    }
    return {k: str(v)[:256] for k, v in values.items() if v}


def blob_name(source: ImageSource) -> str:
    return f"{source.identity.name}.vhd"
