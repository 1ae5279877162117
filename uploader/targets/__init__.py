"""Target registry: the one table of targets, each described by the contract in `contract`.

A target's handler is imported only when a process uses that target, which keeps a
downloads-only consumer from importing boto3 code paths it never runs. A configured target whose
module is missing is a deployment error, reported once at start-up with the module it looked for.
Adding a cloud is one subpackage plus one entry here (docs/adding-a-cloud.md).
"""

from __future__ import annotations

from shared.config import Config
from shared.errors import ConfigError, TargetUnavailable
from shared.images import ImageIdentity
from uploader.model import TargetHandler
from uploader.targets.contract import Takes, Target

# Types intake can turn into a sparse raw disk: xz-compressed raw, plain raw, qcow2 (qemu-img),
# in order of preference: of a build that ships one image as .raw.xz and .qcow2, the raw.xz is
# used (the smaller download; the disk is the same).
RAW_DISK_TYPES = ("raw-xz", "raw", "qcow2")
# productmd types of container image archives: "docker" (to F41, OCI or docker-archive inside),
# "container" (F42 on), "ociarchive"
CONTAINER_TYPES = ("container", "docker", "ociarchive")

TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        # EC2 runs x86_64 and arm64 (Fedora's aarch64) only; an i386 or ppc64le image still goes
        # to the download server. A compose ships one image per cloud under one subvariant: EC2
        # gets the AmazonEC2 one (or a name that says no cloud, as our own Koji builds have),
        # never the Generic qcow2 meant for OpenStack nor the Azure/GCE/Vagrant ones.
        Target(name="aws", publish="uploader.targets.aws:publish_aws",
               takes=Takes(RAW_DISK_TYPES, arches=frozenset({"x86_64", "aarch64"}),
                           clouds=frozenset({"AmazonEC2", None})),
               section="aws", needs="stream", stream="uploader.targets.aws.stream:open_snapshot",
               messages=("fedimg.image.published.v1.aws", "fedimg.image.completed.v1.aws"),
               cleanup="fedimg-aws-cleanup"),
        Target(name="downloads", publish="uploader.targets.downloads:publish_downloads",
               takes=Takes(RAW_DISK_TYPES), section="downloads", needs="raw",
               messages=("fedimg.image.published.v1.downloads",)),
        # Glance stores the qcow2 as fetched: no conversion, the bytes Fedora signed off.
        Target(name="openstack", publish="uploader.targets.openstack:publish_openstack",
               takes=Takes(("qcow2",), clouds=frozenset({"Generic", None})),
               section="openstack", needs="file",
               messages=("fedimg.image.published.v1.openstack",),
               cleanup="fedimg-openstack-cleanup",
               settings="uploader.targets.openstack.config:settings"),
        # Azure takes Fedora's fixed VHD (xz); the target streams it into a page blob itself.
        Target(name="azure", publish="uploader.targets.azure:publish_azure",
               takes=Takes(("vhd-compressed",), arches=frozenset({"x86_64", "aarch64"}),
                           clouds=frozenset({"Azure", None})),
               section="azure", needs="file", messages=("fedimg.image.published.v1.azure",),
               cleanup="fedimg-azure-cleanup",
               settings="uploader.targets.azure.settings:azure_config"),
        # GCE takes the image as a tar.gz holding disk.raw: Fedora's GCE image, uploaded as is.
        Target(name="gcp", publish="uploader.targets.gcp:publish_gcp",
               takes=Takes(("tar-gz",), arches=frozenset({"x86_64", "aarch64"}),
                           clouds=frozenset({"GCE", None})),
               section="gcp", needs="file", messages=("fedimg.image.published.v1.gcp",),
               cleanup="fedimg-gcp-cleanup",
               settings="uploader.targets.gcp.settings:gcp_config"),
        # the arches Fedora builds container images for (each needs an OCI platform)
        Target(name="containers", publish="uploader.targets.containers:publish_containers",
               takes=Takes(CONTAINER_TYPES,
                           arches=frozenset({"x86_64", "aarch64", "ppc64le", "s390x"})),
               section="containers", needs="file",
               messages=("fedimg.image.published.v1.container",)),
    )
}


def get_target(name: str) -> Target:
    """The registered target `name`; TargetUnavailable listing the known ones."""
    try:
        return TARGETS[name]
    except KeyError:
        raise TargetUnavailable(
            f"unknown target {name!r} (known: {', '.join(sorted(TARGETS))})"
        ) from None


def targets_for(image_type: str | None, identity: ImageIdentity,
                names: list[str] | tuple[str, ...]) -> dict[str, str | None]:
    """For each configured target, in order: None if it takes the image, else why not."""
    return {n: get_target(n).takes.refusal(image_type, identity.arch, identity.cloud)
            for n in names}


def needs_raw(names: list[str] | tuple[str, ...]) -> bool:
    """Whether any of these targets reads a raw disk (so intake must decompress; a stream
    target reads one when its image cannot be streamed)."""
    return any(get_target(n).needs in ("raw", "stream") for n in names)


def get_handler(name: str) -> TargetHandler:
    """The handler of target `name`; TargetUnavailable naming what is missing."""
    return get_target(name).handler()


def get_handlers(names: list[str] | tuple[str, ...]) -> dict[str, TargetHandler]:
    """Handlers for every name, in order; raises on the first that is unavailable."""
    return {name: get_handler(name) for name in names}


def check_config(config: Config, names: list[str] | tuple[str, ...]) -> None:
    """ConfigError if a target is unknown, its own section is unusable, or an image type is
    taken by no registered target."""
    for name in names:
        if name not in TARGETS:
            raise ConfigError(config.path, "uploader.targets",
                              f"unknown target {name!r} (known: {', '.join(sorted(TARGETS))})")
        TARGETS[name].check_settings(config)
    known = sorted(set().union(*(t.takes.image_types for t in TARGETS.values())))
    for i, itype in enumerate(config.uploader.image_types):
        if itype not in known:
            raise ConfigError(config.path, f"uploader.image_types[{i}]",
                              f"no target takes {itype!r} (known: {', '.join(known)})")
