"""The [openstack] section: which clouds get the image and how it is published there.

Credentials and endpoints are not here: each name in `clouds` is an entry of clouds.yaml, which
openstacksdk reads itself (OS_CLIENT_CONFIG_FILE, ~/.config/openstack/, /etc/openstack/), exactly
as the `openstack` command line does, so fedimg's own config never holds a password.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Literal

from shared.config import Config, section
from shared.errors import ConfigError

SECTION = "openstack"
_CLOUD_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:=+-]{0,254}")


@dataclasses.dataclass(frozen=True)
class OpenStackConfig:
    # clouds.yaml entries, each one Glance that gets every image
    clouds: list[str] = dataclasses.field(default_factory=list)
    visibility: Literal["public", "community"] = "public"
    # Glance tags on every image, beside the ones fedimg adds (channel, release)
    tags: list[str] = dataclasses.field(default_factory=lambda: ["fedora"])
    # seconds one Glance request may go without progress (an upload streams, so this is not a
    # limit on how long a big upload takes)
    timeout: int = 600
    # clouds served at once
    max_parallel: int = 4
    # nightly images kept per family (release, subvariant, arch) by fedimg-openstack-cleanup
    nightly_retention: int = 7


def settings(config: Config) -> OpenStackConfig:
    """The checked [openstack] section; ConfigError naming the key that cannot be used."""
    found = section(config, SECTION, OpenStackConfig)
    path = config.path or "<config>"
    if not found.clouds:
        raise ConfigError(path, "openstack.clouds",
                          "name at least one cloud (an entry of clouds.yaml)")
    for i, name in enumerate(found.clouds):
        if not _CLOUD_NAME.fullmatch(name):
            raise ConfigError(path, f"openstack.clouds[{i}]",
                              f"{name!r} is not a cloud name (letters, digits, '_', '.', '-')")
    if len(set(found.clouds)) != len(found.clouds):
        raise ConfigError(path, "openstack.clouds", "a cloud is named twice")
    for i, tag in enumerate(found.tags):
        if not _TAG.fullmatch(tag):
            raise ConfigError(path, f"openstack.tags[{i}]", f"{tag!r} is not a usable tag")
    for key in ("timeout", "max_parallel"):
        if getattr(found, key) < 1:
            raise ConfigError(path, f"openstack.{key}", "must be at least 1")
    if found.nightly_retention < 0:
        raise ConfigError(path, "openstack.nightly_retention", "must not be negative")
    return found
