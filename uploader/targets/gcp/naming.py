"""Deterministic GCE names and labels for one image: every run computes the same ones.

The image name is the key (unique per project); the labels say which bytes it was made from
(`fedimg-sha256`), so a redelivery recognises its own image and a different image that happens
to carry the name is never mistaken for it. GCE names and families are lower case letters,
digits and '-', at most 63 characters; label values at most 63 of [a-z0-9_-].
"""

from __future__ import annotations

import hashlib
import re

from uploader.model import ImageSource
from uploader.targets.gcp.settings import GcpConfig

LABEL_SHA256 = "fedimg-sha256"
LABEL_CHANNEL = "fedimg-channel"
MAX_NAME = 63
GCE_ARCH = {"x86_64": "X86_64", "aarch64": "ARM64"}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _fit(name: str) -> str:
    """A valid GCE name: starts with a letter, <= 63 characters (cut + hash when longer)."""
    if not name or not name[0].isalpha():
        name = f"f-{name}"
    if len(name) > MAX_NAME:
        digest = hashlib.sha256(name.encode()).hexdigest()[:8]
        name = f"{name[: MAX_NAME - 9].rstrip('-')}-{digest}"
    return name


def image_name(source: ImageSource) -> str:
    """'Fedora-Cloud-Base-GCE-43-1.6.x86_64' -> 'fedora-cloud-base-gce-43-1-6-x86-64'."""
    return _fit(_slug(source.identity.name))


def family(source: ImageSource, gcp: GcpConfig) -> str:
    """One family per release, arch and channel kind: releases and candidates share the
    release's family ('fedora-cloud-43', 'fedora-cloud-43-arm64'); nightlies and weeklies have
    their own ('fedora-cloud-rawhide-nightly'), so a nightly never deprecates a release."""
    ident = source.identity
    parts = [gcp.family_prefix, ident.release or "unknown"]
    if ident.channel in ("nightly", "weekly"):
        parts.append(ident.channel)
    if ident.arch == "aarch64":
        parts.append("arm64")
    return _fit(_slug("-".join(parts)))


def label_value(text: str | None) -> str:
    return re.sub(r"[^a-z0-9_-]+", "-", (text or "").lower())[:63]


def labels(source: ImageSource) -> dict[str, str]:
    """Labels of the image; the sha256 is cut to 63 hex digits (the longest label value)."""
    ident = source.identity
    values = {
        LABEL_SHA256: (source.sha256 or "")[:63],
        "fedimg-release": ident.release,
        "fedimg-subvariant": ident.subvariant,
        "fedimg-arch": ident.arch,
        LABEL_CHANNEL: ident.channel,
        "fedimg-source": source.origin.tag,
    }
    return {k: label_value(v) for k, v in values.items() if v}


def made_from(image_labels: dict[str, str] | None, source: ImageSource) -> bool:
    """Whether an image with these labels was made from this source's bytes."""
    return bool(source.sha256) and (image_labels or {}).get(LABEL_SHA256) == source.sha256[:63]


def staging_object(source: ImageSource, gcp: GcpConfig) -> str:
    return f"{gcp.staging_prefix.strip('/')}/{image_name(source)}.tar.gz"


def description(source: ImageSource) -> str:
    ident = source.identity
    return (f"{ident.name}: Fedora {ident.release} {ident.subvariant} {ident.arch} "
            f"({ident.channel}), {source.source_label}, sha256 {source.sha256}")[:2048]
