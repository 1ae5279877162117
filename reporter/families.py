"""Read one datagrepper row of any of the three families into an Observation about one image.

Families (recognised by the topic after the deployment prefix, e.g. ``org.fedoraproject.prod.``):

- ours: ``fedimg.<subject>.<event>.v1.<routing words>`` (shared/messages);
- the production uploader: ``fedora_image_uploader.published.v1.{aws,azure,gcp,container}``;
- legacy fedmsg-era fedimg: ``fedimg.image.{upload,copy,publish,test}`` (2014-2020).

History is attacker-influenced text: every value is type-checked and shape-checked here, and the
identity always goes through shared.images.identify (which validates release/arch/subvariant), so
what reaches the fold, the file names and the HTML is either well-formed or absent. A row that
cannot be understood raises Unreadable with a one-line reason; the caller counts and logs it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from shared.errors import Unreadable
from shared.images import CHANNELS, Hint, compose_version, identify, normalize_arch
from shared.messages import MESSAGES

_AMI = re.compile(r"ami-[0-9a-f]{3,40}", re.ASCII)
_REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-\d{1,2}", re.ASCII)
_SHA256 = re.compile(r"[0-9a-f]{64}", re.ASCII)
_GLANCE_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.ASCII)
_CLOUD = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}", re.ASCII)
_SAFE_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}", re.ASCII)
_MAX_TEXT = 2000  # free text (errors, notes) is cut here; history must not bloat the site

FAMILY_HEADS = ("fedimg", "fedora_image_uploader")
LEGACY_TOPICS = ("fedimg.image.upload", "fedimg.image.copy", "fedimg.image.publish",
                 "fedimg.image.test")
FIU_KINDS = ("aws", "azure", "gcp", "container")
# fedora_image_uploader container repositories -> productmd subvariant
_CONTAINER_SUBVARIANTS = {
    "fedora": "Container_Base",
    "fedora-minimal": "Container_Minimal_Base",
    "fedora-toolbox": "Container_Toolbox",
}
_CLOUD_OF_KIND = {"aws": "AmazonEC2", "azure": "Azure", "gcp": "GCE"}


@dataclass(frozen=True)
class Observation:
    """What one message says about one image.

    ``sets`` are (field, key, value) writes into the image's registers: field is one of
    aws/downloads/openstack/failures/qe/promoted/azure/gcp/containers; key is the register within
    the field (region, format, OpenStack cloud, "target:destination", test suite,
    "<registry> image" / "<registry> list") or "" for single-valued fields.
    """

    name: str
    identity: dict[str, Any]
    source: dict[str, Any] = field(default_factory=dict)
    sets: tuple[tuple[str, str, Any], ...] = ()
    derived_name: bool = False  # name made up from compose id + subvariant + arch (see _derive)


def topic_base(topic: str) -> str:
    """The topic without the deployment prefix: from the first family head word on."""
    words = topic.split(".") if isinstance(topic, str) else []
    for i, word in enumerate(words):
        if word in FAMILY_HEADS:
            return ".".join(words[i:])
    return ""


def read_row(row: dict[str, Any]) -> list[Observation]:
    """Observations of one /raw row. [] = understood but says nothing about an image."""
    base = topic_base(row.get("topic"))
    body = row.get("msg")
    if not isinstance(body, dict):
        raise Unreadable(f"body is {type(body).__name__}, not an object")
    words = base.split(".")
    for n in (5, 4):  # our topic bases have 4 or 5 words; routing words follow
        our = ".".join(words[:n])
        if our in MESSAGES:
            return _ours(our, body)
    if base in LEGACY_TOPICS:
        return [_legacy(base.rsplit(".", 1)[1], body)]
    if base.startswith("fedora_image_uploader.published.v1."):
        kind = words[3]
        if kind in FIU_KINDS:
            return _fiu(kind, body, _topic_words(words[4:]))
    raise Unreadable(f"unknown topic {base or row.get('topic')!r}")


# ---- field readers ------------------------------------------------------------------------------


def _str(body: dict, key: str, required: bool = True, limit: int = 255) -> str | None:
    value = body.get(key)
    if isinstance(value, str) and value.strip() and len(value) <= limit:
        return value.strip()
    if value is None and not required:
        return None
    if required or value is not None:
        raise Unreadable(f"{key!r} is {_show(value)}, expected a non-empty string")
    return None


def _text(value: Any) -> str | None:
    return value[:_MAX_TEXT] if isinstance(value, str) else None


def _int(body: dict, key: str, required: bool = False) -> int | None:
    value = body.get(key)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if value is None and not required:
        return None
    raise Unreadable(f"{key!r} is {_show(value)}, expected a non-negative integer")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _ami(value: Any, what: str) -> str:
    if isinstance(value, str) and _AMI.fullmatch(value):
        return value
    raise Unreadable(f"{what} is {_show(value)}, expected an AMI id")


def _region(value: Any, what: str) -> str:
    """A bare region, or a legacy destination like "EC2 (us-east-1)" / "EC2-eu-west-1"."""
    if isinstance(value, str):
        if _REGION.fullmatch(value):
            return value
        found = _REGION.findall(value)
        if len(found) == 1 and re.fullmatch(r"EC2[ -]?\(?" + re.escape(found[0]) + r"\)?", value):
            return found[0]
    raise Unreadable(f"{what} is {_show(value)}, expected an EC2 region")


def _url(value: Any, what: str) -> str:
    # Only http(s): a "javascript:" URL would survive HTML escaping inside an href.
    if isinstance(value, str) and re.fullmatch(r"https?://[^\s<>\"']{1,2000}", value):
        return value
    raise Unreadable(f"{what} is {_show(value)}, expected an http(s) URL")


def _scalar(value: Any) -> str | int | None:
    """A hint value identify() may look at: str or int, anything else (lists...) is None."""
    if isinstance(value, str | int) and not isinstance(value, bool):
        return value
    return None


# identify() is pure and the messages of one image repeat (name, hint): parsing each name once
# is most of what makes folding 100k messages fast. Keyed by a plain tuple (cheap to hash; the
# Hint is only built on a miss); emptied when full, which bounds it without LRU bookkeeping.
_IDENTITIES: dict[tuple, dict[str, Any] | Unreadable] = {}
_IDENTITIES_MAX = 65536


def _identity(name: str, subvariant: Any = None, arch: Any = None, release: Any = None,
              channel: Any = None, compose_id: Any = None) -> dict[str, Any]:
    key = (name, _scalar(subvariant), _scalar(arch), _scalar(release),
           channel if channel in CHANNELS else None, _scalar(compose_id))
    cached = _IDENTITIES.get(key)
    if cached is None:
        if len(_IDENTITIES) >= _IDENTITIES_MAX:
            _IDENTITIES.clear()
        hint = Hint(subvariant=key[1], arch=key[2], release=key[3], channel=key[4],
                    compose_id=key[5])
        cached = _IDENTITIES[key] = _identify(name, hint)
    if isinstance(cached, Unreadable):
        raise cached
    return dict(cached)


def _identify(name: str, hint: Hint) -> dict[str, Any] | Unreadable:
    ident = identify(name, hint=hint)
    if ident.name != name or not (ident.release and ident.subvariant and ident.arch):
        return Unreadable(f"cannot tell release, subvariant and arch of image {_show(name)}")
    return {
        "release": ident.release,
        "subvariant": ident.subvariant,
        "arch": ident.arch,
        "channel": ident.channel,
        "cloud": ident.cloud if ident.cloud and _SAFE_WORD.fullmatch(ident.cloud) else None,
    }


def _compose_id(value: Any) -> str | None:
    """compose, compose_id or {"compose_id": ...} (legacy); only well-formed ids are kept."""
    if isinstance(value, dict):
        value = value.get("compose_id")
    if isinstance(value, str) and _SAFE_WORD.fullmatch(value):
        return value
    return None


# ---- ours ---------------------------------------------------------------------------------------


def _ours(base: str, body: dict) -> list[Observation]:
    if base == "fedimg.build.started.v1":
        return []  # a build, not an image yet: the images it makes announce themselves
    name = _str(body, "name")
    identity = _identity(name, body.get("subvariant"), body.get("arch"), body.get("release"),
                         body.get("channel"), body.get("compose_id"))
    source = {
        "compose_id": _compose_id(body.get("compose_id")),
        "koji_task_id": _int(body, "koji_task_id"),
        "koji_build_id": _int(body, "koji_build_id"),
    }
    if base == "fedimg.image.published.v1.container":
        from reporter import containers  # it reads rows with this module's helpers

        return containers.our_container(name, identity, source, body)
    sets: list[tuple[str, str, Any]] = []
    if base == "fedimg.image.published.v1.aws":
        region = _region(body.get("region"), "region")
        sets.append(("aws", region, {"ami": _ami(body.get("ami"), "ami")}))
    elif base == "fedimg.image.completed.v1.aws":
        regions = body.get("regions")
        if not isinstance(regions, dict):
            raise Unreadable(f"'regions' is {_show(regions)}, expected an object")
        for region, ami in sorted(regions.items()):
            sets.append(("aws", _region(region, "region"), {"ami": _ami(ami, f"AMI of {region}")}))
    elif base == "fedimg.image.published.v1.downloads":
        fmt = _str(body, "format")
        sha = body.get("sha256")
        sha_ok = isinstance(sha, str) and _SHA256.fullmatch(sha)
        if fmt not in ("qcow2", "raw.tar.xz") or not sha_ok:
            raise Unreadable(f"download {_show(fmt)} has no valid format/sha256")
        checksum_url = body.get("checksum_url")
        sets.append(("downloads", fmt, {
            "format": fmt,
            "url": _url(body.get("url"), "url"),
            "size": _int(body, "size", required=True),
            "sha256": sha,
            "checksum_url": _url(checksum_url, "checksum_url") if checksum_url else None,
        }))
    elif base == "fedimg.image.published.v1.openstack":
        cloud = body.get("cloud")
        image_id = body.get("image_id")
        visibility = body.get("visibility")
        if not (isinstance(cloud, str) and _CLOUD.fullmatch(cloud)):
            raise Unreadable(f"OpenStack cloud {_show(cloud)} is not a cloud name")
        if not (isinstance(image_id, str) and _GLANCE_ID.fullmatch(image_id)):
            raise Unreadable(f"Glance image id {_show(image_id)} is not a UUID")
        sets.append(("openstack", cloud, {
            "image_id": image_id,
            "visibility": visibility if visibility in ("public", "community", "shared",
                                                       "private") else None,
        }))
    elif base == "fedimg.image.failed.v1":
        target = _str(body, "target")
        destination = _str(body, "destination", limit=100)
        sets.append(("failures", f"{target}:{destination}", {
            "target": target,
            "destination": destination,
            "error_kind": _str(body, "error_kind", required=False, limit=40),
            "error": _text(body.get("error")),
            "retryable": body.get("retryable") is True,
        }))
    elif base == "fedimg.image.promoted.v1":
        if body.get("official") is not True:
            raise Unreadable("promotion without official: true")
        identity["channel"] = "release"  # promotion is what makes a candidate the release
        sets.append(("promoted", "", {"agent": _text(body.get("agent")),
                                      "note": _text(body.get("note"))}))
    elif base == "fedimg.image.tested.v1":
        result = body.get("result")
        if result not in ("passed", "failed", "needs_inspection"):
            raise Unreadable(f"QE result {_show(result)} is not passed/failed/needs_inspection")
        suite = _str(body, "test_suite", limit=100)
        url = body.get("url")
        sets.append(("qe", suite, {
            "result": result,
            "url": _url(url, "url") if url else None,
            "note": _text(body.get("note")),
            "agent": _text(body.get("agent")),
        }))
    # image.accepted.v1: the image exists; identity and source are all it says
    return [Observation(name, identity, source, tuple(sets))]


# ---- fedora_image_uploader ----------------------------------------------------------------------


def _derive(compose_id: str | None, subvariant: str, cloud: str | None, arch: str) -> str:
    """A per-image name for bodies whose image_name is generic ("Fedora-Cloud-AmazonEC2").

    Built the way pungi named such images:
    Fedora-<Sub-Variant>[-<Cloud>]-<release>-<version>.<arch>, e.g.
    Fedora-Cloud-Base-AmazonEC2-40-20240501.n.0.x86_64, so identify() reads it back.
    """
    parsed = compose_version(compose_id or "")
    if not parsed:
        raise Unreadable(f"compose_id {_show(compose_id)} cannot name a per-image entry")
    release, version = parsed
    product = subvariant.replace("_", "-")
    middle = f"{product}-{cloud}" if cloud else product
    return f"Fedora-{middle}-{release}-{version}.{arch}"


# fedora_image_uploader's channel words in topics -> ours
_FIU_CHANNELS = {"rc": "candidate", "candidate": "candidate", "nightly": "nightly",
                 "weekly": "weekly", "release": "release", "ga": "release"}
_TOPIC_RELEASE = re.compile(r"[1-9]\d{0,2}|[Rr]awhide", re.ASCII)
_TOPIC_SUBVARIANT = re.compile(r"[A-Z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)*", re.ASCII)


def _topic_words(words: list[str]) -> dict[str, str]:
    """What the routing words after the kind say: subvariant, release, arch, channel.

    The uploader's topics carried different words in different versions
    (``aws.Cloud_Base.41.x86_64`` in 2024, ``gcp.rc.Cloud_Base.aarch64`` later), so each word
    is read by its shape rather than its place; a word of no known shape is ignored.
    """
    told: dict[str, str] = {}
    for word in words:
        arch = normalize_arch(word)
        if arch in ("x86_64", "aarch64", "ppc64le", "s390x"):
            told.setdefault("arch", arch)
        elif _TOPIC_RELEASE.fullmatch(word):
            told.setdefault("release", "Rawhide" if word.lower() == "rawhide" else word)
        elif word.lower() in _FIU_CHANNELS:
            told.setdefault("channel", _FIU_CHANNELS[word.lower()])
        elif _TOPIC_SUBVARIANT.fullmatch(word):
            told.setdefault("subvariant", word)
    return told


def _fiu_name(image_name: Any, compose_id: str | None, subvariant: str | None,
              cloud: str, arch: str, release: Any) -> tuple[str, bool, dict[str, Any]]:
    """(name, derived, identity): the body's image_name when it names one image, else derived."""
    if isinstance(image_name, str) and image_name.strip() and len(image_name) <= 255:
        try:
            identity = _identity(image_name.strip(), subvariant, arch, release,
                                 compose_id=compose_id)
        except Unreadable:
            identity = None
        named = identify(image_name.strip())
        if identity is not None and named.release is not None and named.arch is not None:
            return image_name.strip(), False, identity
    if subvariant is None:
        raise Unreadable(f"neither body nor topic says the subvariant of {_show(image_name)}")
    name = _derive(compose_id, subvariant, cloud, arch)
    return name, True, _identity(name, subvariant, arch, release, compose_id=compose_id)


def _fiu(kind: str, body: dict, told: dict[str, str]) -> list[Observation]:
    compose_id = _compose_id(body.get("compose_id"))
    if kind == "container":
        arches = body.get("architectures")
        repo = _str(body, "repository", limit=100)
        if not isinstance(arches, list) or not arches:
            raise Unreadable(f"'architectures' is {_show(arches)}, expected a list")
        subvariant = _CONTAINER_SUBVARIANTS.get(repo)
        if subvariant is None:
            if not re.fullmatch(r"[a-z][a-z0-9\-]{0,40}", repo):
                raise Unreadable(f"container repository {_show(repo)} is not a name")
            subvariant = "Container_" + repo.replace("-", "_")
        from reporter import containers  # it reads rows with this module's helpers

        sets = containers.fiu_lists(repo, body.get("registries"), body.get("tags"))
        out = []
        for arch in arches:
            if not isinstance(arch, str):
                raise Unreadable(f"container arch {_show(arch)} is not a string")
            arch = normalize_arch(arch)
            name = _derive(compose_id, subvariant, None, arch)
            identity = _identity(name, subvariant, arch, compose_id=compose_id)
            out.append(Observation(name, identity, {"compose_id": compose_id}, sets,
                                   derived_name=True))
        return out

    arch = _str(body, "architecture", required="arch" not in told)
    arch = normalize_arch(arch) if arch else told["arch"]
    subvariant = _str(body, "subvariant", required=False, limit=64) or told.get("subvariant")
    release = body.get("release") if body.get("release") is not None else told.get("release")
    name, derived, identity = _fiu_name(body.get("image_name") if kind == "aws" else None,
                                        compose_id, subvariant, _CLOUD_OF_KIND[kind], arch,
                                        release)
    if identity.get("channel") is None and told.get("channel"):
        identity["channel"] = told["channel"]
    sets: list[tuple[str, str, Any]] = []
    if kind == "aws":
        regions = body.get("regions")
        if not isinstance(regions, dict) or not regions:
            raise Unreadable(f"'regions' is {_show(regions)}, expected a region -> AMI object")
        for region, ami in sorted(regions.items()):
            sets.append(("aws", _region(region, "region"), {"ami": _ami(ami, f"AMI of {region}")}))
    elif kind == "azure":
        regions = body.get("regions")
        sets.append(("azure", "", {
            "image_definition": _str(body, "image_definition_name", limit=200),
            "image_version": _str(body, "image_version_name", limit=100),
            "resource_id": _str(body, "image_resource_id", required=False, limit=500),
            "regions": sorted(r for r in regions if isinstance(r, str) and len(r) < 64)
            if isinstance(regions, list) else [],
        }))
    else:  # gcp
        locations = body.get("storage_locations")
        image_url = body.get("image_url")
        sets.append(("gcp", "", {
            "image_name": _str(body, "image_name", limit=200),
            "family": _str(body, "family", required=False, limit=200),
            "image_url": _url(image_url, "image_url") if image_url else None,
            "storage_locations": sorted(s for s in locations if isinstance(s, str) and len(s) < 64)
            if isinstance(locations, list) else [],
        }))
    return [Observation(name, identity, {"compose_id": compose_id}, tuple(sets),
                        derived_name=derived)]


# ---- legacy fedimg (fedmsg era) -----------------------------------------------------------------


def _legacy(event: str, body: dict) -> Observation:
    name = _str(body, "image_name")
    compose_id = _compose_id(body.get("compose_id")) or _compose_id(body.get("compose"))
    identity = _identity(name, compose_id=compose_id)
    source = {"compose_id": compose_id}
    status = body.get("status")
    extra = body.get("extra") if isinstance(body.get("extra"), dict) else {}
    service = body.get("service")
    if service not in (None, "EC2"):
        raise Unreadable(f"legacy service {_show(service)} is not EC2")
    region = _region(body.get("destination"), "destination")
    sets: list[tuple[str, str, Any]] = []
    if event == "test":
        result = {"success": "passed", "completed": "passed", "failed": "failed"}.get(status)
        if result is None:
            if status == "started":
                return Observation(name, identity, source)
            raise Unreadable(f"legacy test status {_show(status)}")
        sets.append(("qe", f"fedimg-test ({region})", {
            "result": result, "url": None, "note": None, "agent": "fedimg"}))
    elif status == "failed":
        sets.append(("failures", f"aws:{region}", {
            "target": "aws", "destination": region, "error_kind": None,
            "error": f"legacy fedimg {event} failed", "retryable": False}))
    elif status in (None, "completed"):
        sets.append(("aws", region, {"ami": _ami(extra.get("id"), "extra.id")}))
    elif status != "started":
        raise Unreadable(f"legacy status {_show(status)} is not started/completed/failed")
    return Observation(name, identity, source, tuple(sets))
