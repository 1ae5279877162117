"""Image identity: read release, subvariant, arch, compose date/respin and channel from a name.

Fedora has named its cloud images differently in every era; all of these are real:

    Fedora-Cloud-Base-20141203-21.x86_64.qcow2                  F21: date before release
    fedora-cloud-base-20140616-rawhide.x86_64.raw.xz            2014 Koji: lower case, date first
    Fedora-Cloud-Base-Rawhide-20150101.x86_64.raw.xz            Koji nightly, bare date
    Fedora-Cloud-Base-23-20160103.x86_64.qcow2                  F22/F23 Koji image builds
    Fedora-Atomic-26-20170707.1.x86_64.qcow2                    pungi 4, unlabelled production
    Fedora-Cloud-Base-AmazonEC2-Rawhide-20240829.n.1.aarch64    pungi 4 nightly ("n" = nightly)
    Fedora-Cloud-Base-Generic-43-1.6.x86_64.qcow2               labelled production (RC-1.6)
    Fedora-Cloud-Base-AmazonEC2.x86_64-41-Prerelease-1.2        Kiwi 2024: arch after the cloud
    Fedora-Workstation-Live-x86_64-41-1.4.iso                   live media: arch before release
    Fedora-Cloud-Base-Rawhide-weekly.20261125.x86_64.raw.xz     our own weekly builds
    fedora-coreos-40.20240906.3.0-aws.x86_64.vmdk.xz            Fedora CoreOS

Channel rules (see channel_from): "weekly" anywhere -> weekly; ".n." or a nightly compose ->
nightly; Alpha/Beta/Prerelease, a compose label (RC-1.6 -> "1.6") or an unlabelled production
compose (YYYYMMDD.N) -> candidate. A GA image carries exactly the name of the release candidate
that was promoted, so a name alone can never say "release": names of production composes map to
"candidate", and "release" only comes from a promotion event or an explicit Hint. A bare date is
a nightly for Rawhide (Rawhide is never released) and says nothing for a numbered release,
because F22/F23 GA images and their daily rebuilds were named alike. Test composes (".t.") and
CoreOS streams are not fedimg channels: None.

The channel is a label, never a gate. Where neither the name nor the source's own words
(compose id, compose type, Koji release field) say it, `infer_channel` gives one from the kind of
source, and `channel_inferred` records which rule did:
    scratch Koji task       -> nightly    (a scratch build is never what release engineering ships)
    Koji build (non-scratch)-> candidate  (the build that could be promoted; promotion says release)
    test compose (".t.")    -> nightly    (throw-away composes are the least official channel)

Names are read without regard to case: the 2014 Koji names ("fedora-cloud-base-rawhide-
20140604.x86_64") read like their capitalised successors.

The parser never guesses: a name that does not fit a known shape yields None fields.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CHANNELS",
    "Hint",
    "ImageIdentity",
    "aws_arch",
    "channel_from",
    "infer_channel",
    "identify",
    "normalize_arch",
]

CHANNELS = ("nightly", "weekly", "candidate", "release")  # order = increasing officialness

# Every arch token Fedora has put in an image name; anything else is not an arch.
_ARCHES = (
    "x86_64", "aarch64", "ppc64le", "ppc64", "s390x", "i386", "i686", "armhfp", "armv7hl",
    "riscv64", "arm64", "amd64",
)
_ARCH_ALT = "|".join(_ARCHES)
_ARCH_ALIASES = {"arm64": "aarch64", "amd64": "x86_64"}
_AWS_ARCHES = {"x86_64": "x86_64", "aarch64": "arm64"}

# Longest first, so "vagrant.libvirt.box" wins over "box" and "raw.tar.xz" over "tar.xz".
_FORMATS = tuple(sorted((
    "vagrant.libvirt.box", "vagrant.virtualbox.box", "vagrant-libvirt.box",
    "vagrant-virtualbox.box", "raw.tar.xz", "oci.tar.xz", "tar.xz", "tar.gz", "vhdfixed.xz",
    "vhd.xz", "vhd", "vhdx", "raw.xz", "raw.zst", "raw.gz", "raw", "qcow2.xz", "qcow2", "iso",
    "box", "vmdk.xz", "vmdk", "img.xz", "img", "ova",
), key=len, reverse=True))

# Name prefix (after "Fedora-") -> productmd subvariant and, where the prefix implies it, the cloud.
# A subvariant of None means the prefix is recognised but does not say which one.
_PRODUCTS: tuple[tuple[str, str | None, str | None], ...] = (
    ("Cloud-Base-UEFI-UKI", "Cloud_Base_UKI", "UEFI-UKI"),
    ("Cloud-Base", "Cloud_Base", None),
    ("Cloud-Atomic", "Atomic", None),  # F21-F23
    ("AtomicHost", "AtomicHost", None),  # F28-F29
    ("Atomic", "Atomic", None),  # F24-F27 two-week Atomic
    ("Container-Minimal-Base", "Container_Minimal_Base", None),
    # pungi/kiwi 2024 on: "Fedora-Container-Base-Generic-Minimal-43-1.6" is the minimal image,
    # not a Container_Base for a cloud called "Generic-Minimal"
    ("Container-Base-Generic-Minimal", "Container_Minimal_Base", "Generic"),
    ("Container-Toolbox", "Container_Toolbox", None),
    ("Container-Base", "Container_Base", None),
    ("Server", "Server", None),
    ("Cloud", None, None),  # fedora_image_uploader's "Fedora-Cloud-AmazonEC2"
)
# Install/live media: "Fedora-<Subvariant>-<media>-<arch>-<release>-<version>.iso".
_MEDIA = frozenset({"Live", "dvd", "netinst", "boot", "Disk"})
# Clouds trusted in a name that has no release (only the fedora_image_uploader short form).
_KNOWN_CLOUDS = frozenset({
    "AmazonEC2", "Azure", "GCE", "Generic", "UEFI-UKI", "Vagrant", "Vagrant-libvirt",
    "Vagrant-VirtualBox", "KVM",
})

# Words of Fedora image names in their usual spelling, to read names written in another case.
_CASED = {w.lower(): w for w in (
    "Fedora", "Cloud", "Base", "Atomic", "AtomicHost", "Container", "Minimal", "Toolbox",
    "Server", "Rawhide", "UEFI", "UKI", "AmazonEC2", "Azure", "GCE", "Generic", "Vagrant",
    "VirtualBox", "KVM", "Live", "Workstation", "Alpha", "Beta", "Prerelease", "TC", "RC",
)}
_CASE_WORD = re.compile(r"[A-Za-z]+", re.ASCII)
_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
# "22_Beta_TC1": F21-F23 milestone test/release candidates carried their TC/RC number too.
_RELEASE = re.compile(
    r"(?P<rel>[1-9]\d{0,2}|[Rr]awhide)(?:_(?P<ms>Alpha|Beta)(?:_(?:TC|RC)\d{1,2})?)?", re.ASCII)
_DATE = re.compile(r"\d{8}", re.ASCII)
_V_WEEKLY = re.compile(r"weekly\.(?P<date>\d{8})(?:\.(?P<respin>\d+))?", re.ASCII)
_V_DATED = re.compile(r"(?P<date>\d{8})(?:(?:\.(?P<type>[nt]))?\.(?P<respin>\d+))?", re.ASCII)
_V_LABEL = re.compile(r"(?:(?P<pre>Prerelease|Beta|Alpha)-)?(?P<label>\d{1,3}\.\d{1,3})", re.ASCII)
_COMPOSE_ID = re.compile(
    r"Fedora(?:-[A-Za-z][A-Za-z0-9_]*)*-(?P<rel>\d{1,3}|Rawhide)"
    r"-(?P<date>\d{8})(?:\.(?P<type>[nt]))?\.(?P<respin>\d+)",
    re.ASCII,
)
_COREOS = re.compile(
    r"fedora-coreos-(?P<version>(?P<rel>\d{1,3})\.(?P<date>\d{8})\.\d+\.(?P<respin>\d+))"
    r"(?:-(?P<platform>[a-z][a-z0-9_]*))?",
    re.ASCII,
)
_SUBVARIANT_OK = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
_MAX_NAME = 255  # a file name longer than this is no image of ours; also bounds regex work


@dataclass(frozen=True)
class ImageIdentity:
    name: str
    release: str | None = None
    subvariant: str | None = None
    arch: str | None = None
    channel: str | None = None
    compose_date: str | None = None
    respin: int | None = None
    version_label: str | None = None
    image_format: str | None = None
    cloud: str | None = None
    channel_inferred: str | None = None  # the rule that gave the channel, when the name did not

    @property
    def known(self) -> bool:
        """Enough to route and report the image: release, subvariant, arch and channel."""
        return None not in (self.release, self.subvariant, self.arch, self.channel)

    def routing_words(self) -> tuple[str, str, str, str]:
        """(channel, subvariant, release, arch) as AMQP routing-key words ("unknown" for None)."""
        # imported here: shared.messages imports this module (CHANNELS) at load time
        from shared.messages.base import routing_word

        return (
            routing_word(self.channel),
            routing_word(self.subvariant),
            routing_word(self.release),
            routing_word(self.arch),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict of the fields; ImageIdentity(**d) gives the same identity back."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Hint:
    """Facts the source knows but the name may lack (a Koji task result, images.json, a body).

    Name facts win; a hint only fills what the name leaves None. The one exception is
    channel="release": promotion turns a "candidate" name into the release it now is.
    """

    subvariant: str | None = None
    arch: str | None = None
    release: str | int | None = None
    channel: str | None = None
    compose_id: str | None = None
    compose_type: str | None = None  # productmd: "nightly", "production", "test"
    koji_release: str | None = None  # Koji build release: "20261125.n.0", "weekly.20261125", "1.6"
    scratch: bool | None = None  # Koji: True for a scratch task, False for a real build


def normalize_arch(arch: str) -> str:
    """Fedora's arch name: arm64 -> aarch64, amd64 -> x86_64, anything else unchanged."""
    return _ARCH_ALIASES.get(arch, arch)


def aws_arch(fedora_arch: str) -> str:
    """EC2's Architecture value for a Fedora arch; EC2 runs nothing else, so others raise."""
    try:
        return _AWS_ARCHES[normalize_arch(fedora_arch)]
    except (KeyError, TypeError):
        raise ValueError(f"no AWS architecture for {fedora_arch!r}") from None


def channel_from(
    compose_id: str | None = None,
    release_field: str | None = None,
    compose_type: str | None = None,
) -> str | None:
    """Channel from what a compose or Koji build says; None when it does not say.

    release_field is a Koji build release or a compose label. Never returns "release": that
    only comes from promotion (see the module docstring).
    """
    # Non-ASCII text is no Fedora identifier; dropping it keeps \d from matching other digits.
    cid = compose_id if isinstance(compose_id, str) and compose_id.isascii() else ""
    rel = release_field if isinstance(release_field, str) and release_field.isascii() else ""
    ctype = compose_type.lower() if isinstance(compose_type, str) else ""
    if "weekly" in cid.lower() or "weekly" in rel.lower():
        return "weekly"
    if ".n." in cid or ".n." in rel or ctype == "nightly":
        return "nightly"
    if ".t." in cid or ".t." in rel or ctype == "test":
        return None  # test composes are nobody's channel
    if "rawhide" in cid.lower():
        return "nightly"  # Rawhide composes are always nightly composes
    if re.search(r"Prerelease|Beta|Alpha", rel) or re.match(r"RC-", rel):
        return "candidate"
    if re.fullmatch(r"\d{1,3}\.\d{1,3}|\d{8}\.\d+", rel) or ctype == "production":
        return "candidate"  # a compose label ("1.6") or an unlabelled production compose
    if _COMPOSE_ID.fullmatch(cid):
        return "candidate"  # production compose id: no ".n."/".t." before the respin
    return None


def compose_version(compose_id: str) -> tuple[str, str] | None:
    """(release, version) of a Pungi compose id, e.g. "Fedora-40-20240501.n.0" ->
    ("40", "20240501.n.0"); None when it is not one."""
    m = _COMPOSE_ID.fullmatch(compose_id)
    if not m:
        return None
    kind = f".{m['type']}" if m["type"] else ""
    return m["rel"], f"{m['date']}{kind}.{m['respin']}"


def identify(filename_or_name: str, *, hint: Hint | None = None) -> ImageIdentity:
    """Identity of an image file name, path or bare name. Never raises, never guesses.

    Fields the name does not carry are None, so `known` is False, unless `hint` supplies them.
    `name` is the last path component without the file extension.
    """
    text = filename_or_name.strip() if isinstance(filename_or_name, str) else ""
    base = re.split(r"[/\\]", text)[-1]
    image_format = None
    for fmt in _FORMATS:
        if base.endswith("." + fmt) and len(base) > len(fmt) + 1:
            base, image_format = base[: -len(fmt) - 1], fmt
            break
    fields: dict[str, Any] = {}
    if len(base) <= _MAX_NAME and base.isascii():
        fields = _parse(base)
    if hint is not None:
        fields = _apply_hint(fields, hint)
    return ImageIdentity(name=base, image_format=image_format, **fields)


def _valid_date(value: str) -> bool:
    try:
        datetime.datetime.strptime(value, "%Y%m%d")
    except ValueError:
        return False
    return True


def _parse(base: str) -> dict[str, Any]:
    """Fields readable from a name without extension; {} when it fits no known shape."""
    if m := re.fullmatch(rf"(?P<rest>.+)\.(?P<arch>{_ARCH_ALT})", base):
        rest, arch = m["rest"], m["arch"]
    else:
        rest, arch = base, None
    if (m := _COREOS.fullmatch(rest)) and _valid_date(m["date"]):
        # CoreOS streams (stable/testing/next) are not our channels, so channel stays None.
        return {
            "release": m["rel"], "subvariant": "CoreOS", "arch": _arch(arch),
            "compose_date": m["date"], "respin": int(m["respin"]),
            "version_label": m["version"], "cloud": m["platform"],
        }
    if rest[:7].lower() == "fedora-" and not rest.startswith("Fedora-"):
        rest = _CASE_WORD.sub(lambda w: _CASED.get(w[0].lower(), w[0]), rest)
    tokens = rest.split("-")
    if len(tokens) < 2 or tokens[0] != "Fedora":
        return {}
    if arch is None:
        # Kiwi 2024 puts the arch after the cloud ("AmazonEC2.x86_64"), live media give it a
        # token of its own ("Live-x86_64"); either way it sits before the release.
        for i, tok in enumerate(tokens[1:], start=1):
            if m := re.fullmatch(rf"(?P<head>[A-Za-z][A-Za-z0-9_]*\.)?(?P<arch>{_ARCH_ALT})", tok):
                arch = m["arch"]
                tokens[i : i + 1] = [m["head"][:-1]] if m["head"] else []
                break
    # Product tokens start with a letter; the first that does not, or "Rawhide", is the
    # release (or, in F21 names, the date that precedes the release).
    i = 1
    while i < len(tokens) and _TOKEN.fullmatch(tokens[i]) and not _RELEASE.fullmatch(tokens[i]):
        i += 1
    product, tail = tokens[1:i], tokens[i:]
    if not tail:
        return _product_only(product, arch)
    if not product:
        return {}
    subvariant, cloud = _product(product)
    parsed = _version(tail)
    if parsed is None:
        return {}
    parsed.update(subvariant=subvariant, cloud=cloud, arch=_arch(arch))
    return parsed


def _arch(arch: str | None) -> str | None:
    return normalize_arch(arch) if arch else None


def _product(product: list[str]) -> tuple[str | None, str | None]:
    """(subvariant, cloud) from the tokens between "Fedora" and the release."""
    if len(product) == 2 and product[1] in _MEDIA:
        return product[0], None  # Fedora-Workstation-Live, Fedora-Server-dvd, Fedora-i3-Live
    joined = "-".join(product)
    for prefix, subvariant, cloud in _PRODUCTS:
        if joined == prefix or joined.startswith(prefix + "-"):
            rest = joined[len(prefix) + 1 :]
            if cloud is not None and rest:
                return None, None  # "Cloud-Base-UEFI-UKI-Something": not a shape we know
            return subvariant, cloud or rest or None
    return None, None


def _product_only(product: list[str], arch: str | None) -> dict[str, Any]:
    """A name without release or version, e.g. fedora_image_uploader's "Fedora-Cloud-AmazonEC2".

    Only trusted when the remainder is a cloud we know, so "Fedora-Cloud-Base-test" reads as
    nothing rather than as a cloud called "test".
    """
    subvariant, cloud = _product(product)
    if cloud is not None and cloud not in _KNOWN_CLOUDS:
        return {}
    if subvariant is None and cloud is None:
        return {}
    return {"subvariant": subvariant, "cloud": cloud, "arch": _arch(arch)}


def _version(tail: list[str]) -> dict[str, Any] | None:
    """Release, channel, compose fields from "<release>-<version>" or F21 "<date>-<release>"."""
    if (
        len(tail) == 2
        and _DATE.fullmatch(tail[0])
        and (m := _RELEASE.fullmatch(tail[1]))
        and _valid_date(tail[0])
    ):
        if not m["rel"].isdigit():  # 2014 Koji nightlies: "fedora-cloud-base-20140616-rawhide"
            return {"release": "Rawhide", "channel": "nightly", "compose_date": tail[0],
                    "respin": None, "version_label": tail[0]}
        return {
            "release": m["rel"], "channel": "candidate" if m["ms"] else None,
            "compose_date": tail[0], "respin": None, "version_label": tail[0],
        }
    m = _RELEASE.fullmatch(tail[0])
    if m is None:
        return None
    release = "Rawhide" if m["rel"].lower() == "rawhide" else m["rel"]
    parsed = _read_version("-".join(tail[1:]), release == "Rawhide", m["ms"])
    return None if parsed is None else {"release": release, **parsed}


def _read_version(version: str, rawhide: bool, milestone: str | None) -> dict[str, Any] | None:
    """Channel, compose date, respin and label from the part after the release."""
    if (v := _V_WEEKLY.fullmatch(version)) and _valid_date(v["date"]):
        channel, date, respin = "weekly", v["date"], v["respin"]
    elif (v := _V_DATED.fullmatch(version)) and _valid_date(v["date"]):
        date, respin = v["date"], v["respin"]
        if v["type"] == "n":
            channel = "nightly"
        elif v["type"] == "t":
            channel = None
        elif respin is not None:
            channel = None if rawhide else "candidate"  # unlabelled production compose
        else:
            channel = "nightly" if rawhide else None  # bare date: see module docstring
        if milestone and channel is None and not rawhide:
            channel = "candidate"
    elif v := _V_LABEL.fullmatch(version):
        if v["pre"] and milestone:
            return None  # "41_Beta-Prerelease-1.2" is no shape Fedora has used
        date, respin = None, None
        channel = None if rawhide else "candidate"
        if milestone:
            version = f"{milestone}-{version}"
    else:
        return None
    return {
        "channel": channel, "compose_date": date,
        "respin": int(respin) if respin is not None else None, "version_label": version,
    }


def _apply_hint(fields: dict[str, Any], hint: Hint) -> dict[str, Any]:
    """Fill what the name left None from the hint; hint values are checked like name values."""
    out = dict(fields)
    compose = _COMPOSE_ID.fullmatch(hint.compose_id) if isinstance(hint.compose_id, str) else None

    release = hint.release
    if isinstance(release, int) and not isinstance(release, bool):
        release = str(release)
    if isinstance(release, str) and (m := _RELEASE.fullmatch(release)) and not m["ms"]:
        release = "Rawhide" if m["rel"].lower() == "rawhide" else m["rel"]
    else:
        release = compose["rel"] if compose else None
    out.setdefault("release", None)
    out["release"] = out["release"] or release

    arch = normalize_arch(hint.arch) if isinstance(hint.arch, str) else None
    if arch in _ARCHES and not out.get("arch"):
        out["arch"] = arch
    sub = hint.subvariant
    if isinstance(sub, str) and _SUBVARIANT_OK.fullmatch(sub) and not out.get("subvariant"):
        out["subvariant"] = sub

    # Dates and respins come from the source only for names that carry no version at all;
    # a "1.6" name keeps compose_date None rather than mixing in another build's facts.
    parsed = None
    if out.get("version_label") is None and isinstance(hint.koji_release, str):
        parsed = _read_version(hint.koji_release, out["release"] == "Rawhide", None)
        if parsed:
            for key in ("compose_date", "respin", "version_label"):
                out[key] = parsed[key]
    if out.get("version_label") is None and out.get("compose_date") is None and compose:
        out["compose_date"], out["respin"] = compose["date"], int(compose["respin"])

    channel = out.get("channel")
    told = hint.channel if hint.channel in CHANNELS else None
    if channel == "candidate" and told == "release":
        channel = "release"  # promotion: the GA image keeps the candidate's name
    if channel is None:
        channel = told or channel_from(hint.compose_id, hint.koji_release, hint.compose_type)
    if channel is None and parsed:
        channel = parsed["channel"]  # e.g. a bare-date Koji release of a Rawhide build
    if channel is None:
        channel, out["channel_inferred"] = infer_channel(hint)
    out["channel"] = channel
    return out


def infer_channel(hint: Hint) -> tuple[str | None, str | None]:
    """(channel, rule) for an image whose name and release words say no channel.

    The rule is what the published messages carry as `channel_inferred`; (None, None) when the
    hint does not even say what kind of source it came from (then nobody can tell).
    """
    cid = hint.compose_id if isinstance(hint.compose_id, str) else ""
    if (isinstance(hint.compose_type, str) and hint.compose_type.lower() == "test") or (
            ".t." in cid):
        return "nightly", "test compose"
    if hint.scratch is True:
        return "nightly", "scratch Koji task"
    if hint.scratch is False:
        return "candidate", "Koji build"
    return None, None
