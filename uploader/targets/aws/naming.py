"""Deterministic names, tags and idempotency tokens for one image's AWS resources.

Everything here is a pure function of the image (identity + source), so every run, consumer
or restart for the same image computes the same AMI name and tokens and finds what an earlier
run made. The AMI name is the key: EC2 keeps names unique per account and region.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

from uploader.model import ImageSource

TAG_PREFIX = "fedimg:"
TAG_AMI_NAME = "fedimg:ami-name"
TAG_UPLOAD = "fedimg:upload"  # on the snapshot: "started", then "complete" once EBS accepted it
UPLOAD_STARTED = "started"
UPLOAD_COMPLETE = "complete"
TAG_SHA256 = "fedimg:sha256"

_AMI_NAME_BAD = re.compile(r"[^A-Za-z0-9()\[\] ./'@_-]")
_AMI_NAME_MAX = 128
_TOKEN_MAX = 64  # copy_image and start_snapshot ClientToken limit


def ami_name(source: ImageSource, volume_type: str) -> str:
    """'<image name>-hvm-<volume type>', EC2-safe, 3..128 characters.

    A name too long for EC2 is cut and given a hash of the full name, so two long names that
    share a prefix still differ.
    """
    name = _AMI_NAME_BAD.sub("-", f"{source.identity.name}-hvm-{volume_type}")
    if len(name) > _AMI_NAME_MAX:
        digest = hashlib.sha256(name.encode()).hexdigest()[:12]
        name = f"{name[: _AMI_NAME_MAX - 13]}-{digest}"
    return name.ljust(3, "_")


def image_tags(source: ImageSource, name: str) -> list[dict[str, str]]:
    """Tags carried by the snapshot, the AMI and every copy."""
    ident = source.identity
    values = {
        "Name": name,
        TAG_AMI_NAME: name,
        "fedimg:name": ident.name,
        "fedimg:release": ident.release,
        "fedimg:subvariant": ident.subvariant,
        "fedimg:arch": ident.arch,
        "fedimg:channel": ident.channel,
        "fedimg:source": source.origin.tag,
        TAG_SHA256: source.sha256,
    }
    return [{"Key": k, "Value": _tag_value(v)} for k, v in values.items() if v]


def _tag_value(value: str) -> str:
    return re.sub(r"[^\w .:/=+\-@]", "_", str(value))[:256]


def token(*parts: str) -> str:
    """A ClientToken (<= 64 chars) derived from the parts: same parts, same token."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:_TOKEN_MAX]


def snapshot_token(name: str, sha256: str | None, replaced: list[str]) -> str:
    """start_snapshot token. `replaced` lists interrupted snapshots we deleted: a new upload
    needs a new token, or EBS would hand back the deleted snapshot's id."""
    return token("snapshot", name, sha256 or "", *sorted(replaced))


def copy_token(source_ami: str, region: str, replaced: Iterable[str] = ()) -> str:
    """copy_image token: source AMI + region (+ failed copies we deregistered, if any)."""
    return token("copy", source_ami, region, *sorted(replaced))


def description(source: ImageSource) -> str:
    ident = source.identity
    return (f"Fedora {ident.release} {ident.subvariant} {ident.arch} ({ident.channel}), "
            f"{source.source_label}")[:255]
