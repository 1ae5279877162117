"""The `[gcp]` section: where the gcp target stages archives and makes images.

Owned by the target (read with `shared.config.section(config, "gcp", GcpConfig)`); every key is
documented in docs/configuration.md and docs/gcp.md. Credentials are never here: they come from
Google's Application Default Credentials (see docs/gcp.md).
"""

from __future__ import annotations

import dataclasses

from shared.config import Config, section


@dataclasses.dataclass(frozen=True)
class GcpGuestOsFeatures:
    """Guest OS features per Fedora arch: what Fedora's GCE image of that arch supports."""

    x86_64: list[str] = dataclasses.field(default_factory=lambda: [
        "UEFI_COMPATIBLE", "VIRTIO_SCSI_MULTIQUEUE", "GVNIC", "SEV_CAPABLE"])
    aarch64: list[str] = dataclasses.field(default_factory=lambda: [
        "UEFI_COMPATIBLE", "VIRTIO_SCSI_MULTIQUEUE", "GVNIC"])


@dataclasses.dataclass(frozen=True)
class GcpConfig:
    project: str
    bucket: str
    staging_prefix: str = "fedimg-staging"
    storage_locations: list[str] = dataclasses.field(default_factory=lambda: ["us"])
    family_prefix: str = "fedora-cloud"
    public: bool = True
    public_member: str = "allAuthenticatedUsers"
    guest_os_features: GcpGuestOsFeatures = dataclasses.field(
        default_factory=GcpGuestOsFeatures)
    nightly_keep: int = 7
    upload_chunk_mib: int = 32
    operation_timeout: int = 1800
    timeout: int = 120


def gcp_config(config: Config) -> GcpConfig:
    """The validated `[gcp]` section; ConfigError naming the key if it is wrong or missing."""
    return section(config, "gcp", GcpConfig)
