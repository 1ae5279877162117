"""Container images in the report: reading both families' container messages, and the view.

Registers (field "containers" of an image, see reporter.fold), per registry:

- "<registry> image": the arch's own image, {registry, repository, reference, digest}
  (fedimg's messages only: fedora_image_uploader's name no digest);
- "<registry> list": the manifest list and its tags, {registry, repository, manifest_list,
  tags} (fedimg: the list digest once every arch is pushed; fedora_image_uploader: its tags).

A tag names one list at a time, and tags only move forward, so the list whose message claimed a
tag last (by the fold's version: timestamp, msg_id) holds it now; `tag_holders` works that out
over every image and `records` shows each image only the tags it still holds: the images that
message spoke for (every arch of a list), and any image naming the same list digest.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from reporter.families import Observation, _identity, _show
from shared.errors import Unreadable
from shared.images import normalize_arch

FIELD = "containers"
_ARCHES = ("x86_64", "aarch64", "ppc64le", "s390x")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}", re.ASCII)
# registry host[:port][/namespace], repository path and tag, as the distribution spec spells them
_PATH = r"(?:/[a-z0-9][a-z0-9._\-]{0,99}){0,5}"
_REGISTRY = re.compile(r"[a-z0-9][a-z0-9.\-]{0,99}(?::\d{1,5})?" + _PATH, re.ASCII)
_REPOSITORY = re.compile(r"[a-z0-9][a-z0-9._\-]{0,99}" + _PATH, re.ASCII)
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}", re.ASCII)

Register = tuple[str, str, dict[str, Any]]


def _matching(value: Any, pattern: re.Pattern, what: str) -> str:
    if isinstance(value, str) and pattern.fullmatch(value):
        return value
    raise Unreadable(f"{what} is {_show(value)}, expected a {what.split()[-1]}")


def _list(registry: str, repository: str, digest: str | None, tags: Any) -> Register:
    good = sorted({t for t in tags if isinstance(t, str) and _TAG.fullmatch(t)}) \
        if isinstance(tags, list) else []
    return (FIELD, f"{registry} list", {"registry": registry, "repository": repository,
                                        "manifest_list": digest, "tags": good[:50]})


def fiu_lists(repository: str, registries: Any, tags: Any) -> tuple[Register, ...]:
    """fedora_image_uploader's container body: its tags in each of its registries."""
    return tuple(_list(r, repository, None, tags)
                 for r in (registries if isinstance(registries, list) else [])[:20]
                 if isinstance(r, str) and _REGISTRY.fullmatch(r))


def our_container(name: str, identity: dict[str, Any], source: dict[str, Any],
                  body: dict) -> list[Observation]:
    """One arch in one registry and, once the manifest list exists, the list for every arch it
    names. The other arches' images are named as pungi names them (only the arch differs), so
    each arch's entry shows the list even when its own message came before the list."""
    registry = _matching(body.get("registry"), _REGISTRY, "container registry")
    repository = _matching(body.get("repository"), _REPOSITORY, "container repository")
    arch = identity["arch"]
    reference = body.get("reference")
    prefix = f"{registry}/{repository}:"
    if not (isinstance(reference, str) and reference.startswith(prefix)
            and _TAG.fullmatch(reference[len(prefix):])):
        raise Unreadable(f"reference {_show(reference)} is not a tag of {prefix[:-1]}")
    image = {"registry": registry, "repository": repository, "reference": reference,
             "digest": _matching(body.get("digest"), _DIGEST, "arch image digest")}
    own: Register = (FIELD, f"{registry} image", image)
    listed = body.get("manifest_list")
    if listed is None:
        return [Observation(name, identity, source, (own,))]
    if not isinstance(listed, dict) or not isinstance(listed.get("manifests"), dict):
        raise Unreadable(f"manifest_list is {_show(listed)}, expected digest and manifests")
    list_reg = _list(registry, repository,
                     _matching(listed.get("digest"), _DIGEST, "manifest list digest"),
                     body.get("tags"))
    out = [Observation(name, identity, source, (own, list_reg))]
    if not (name.endswith(f".{arch}") and reference.endswith(f"-{arch}")):
        return out  # not a pungi name: the other arches' names cannot be told
    for other, digest in sorted(listed["manifests"].items()):
        other = normalize_arch(other) if isinstance(other, str) else None
        if other == arch or other not in _ARCHES:
            continue
        sibling = name[: -len(arch)] + other
        sibling_image = {**image, "reference": reference[: -len(arch)] + other,
                         "digest": _matching(digest, _DIGEST, "arch image digest")}
        out.append(Observation(
            sibling, _identity(sibling, identity["subvariant"], other, identity["release"],
                               body.get("channel"), source.get("compose_id")),
            source, ((FIELD, f"{registry} image", sibling_image), list_reg),
            derived_name=True))
    return out


# ---- the report view -------------------------------------------------------------------------


def tag_holders(images: Iterable[dict[str, list]]) -> dict[tuple, tuple]:
    """(registry, repository, tag) -> (version, list digest) of the last claim of the tag, over
    the "containers" registers of every image."""
    holders: dict[tuple, tuple] = {}
    for regs in images:
        for reg_key, (ts, msg_id, value) in regs.items():
            if not reg_key.endswith(" list"):
                continue
            for tag in value.get("tags", []):
                where = (value["registry"], value["repository"], tag)
                claim = ((ts, msg_id), value.get("manifest_list") or "")
                if where not in holders or holders[where] < claim:
                    holders[where] = claim
    return holders


def holds(reg: list, tag: str, holders: dict[tuple, tuple]) -> bool:
    """Whether the list register ``reg`` shows ``tag`` now (see tag_holders)."""
    ts, msg_id, value = reg
    holder = holders.get((value["registry"], value["repository"], tag))
    if holder is None:
        return True  # no view over every image: what its own messages said
    version, digest = holder
    return version == (ts, msg_id) or bool(digest and digest == value.get("manifest_list"))


def records(regs: dict[str, list], holders: dict[tuple, tuple]) -> list[dict]:
    """images.json `containers` of one image: one entry per registry, sorted."""
    by_registry: dict[str, dict[str, Any]] = {}
    for reg_key, reg in sorted(regs.items()):
        value = reg[2]
        entry = by_registry.setdefault(value["registry"], {
            "registry": value["registry"], "repository": value["repository"],
            "reference": None, "digest": None, "manifest_list": None, "tags": []})
        if reg_key.endswith(" image"):
            entry.update(reference=value["reference"], digest=value["digest"])
        else:
            entry["manifest_list"] = value["manifest_list"]
            entry["tags"] = [t for t in value["tags"] if holds(reg, t, holders)]
    return [by_registry[r] for r in sorted(by_registry)]
