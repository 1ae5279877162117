"""The `[containers]` section: registries, the subvariant -> repository map, the tag rule's input.

    [containers]
    latest_release = "43"            # composes of this release also move `latest`
    [[containers.registries]]
    name = "quay.io/fedora"          # host[:port] and the namespace repositories go below
    authfile = "/etc/fedimg/quay-auth.json"
    [containers.repositories]        # merged over DEFAULT_REPOSITORIES; "" drops a subvariant
    Container_Toolbox = "fedora-toolbox"

Credentials are files named here (a containers-auth.json authfile, a cert dir with the registry's
CA and any client certificate), read by skopeo itself; nothing about a registry ever comes from a
message.
"""

from __future__ import annotations

import dataclasses
import re

from shared.config import Config, section
from shared.errors import ConfigError

SECTION = "containers"

# productmd subvariant -> repository below each registry, as Fedora names them
DEFAULT_REPOSITORIES: dict[str, str] = {
    "Container_Base": "fedora",
    "Container_Minimal_Base": "fedora-minimal",
    "Container_Toolbox": "fedora-toolbox",
    "bootc": "fedora-bootc",
    "Silverblue": "fedora-silverblue",
    "Kinoite": "fedora-kinoite",
}

# a registry host (optionally :port) and namespace path; a repository path (the distribution
# spec's grammar, lower case)
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REGISTRY = re.compile(rf"[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?(?::[0-9]{{1,5}})?(?:/{_COMPONENT})*")
_REPOSITORY = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_RELEASE = re.compile(r"[1-9][0-9]{0,2}")


@dataclasses.dataclass(frozen=True)
class RegistryConfig:
    """One registry every container image is pushed to."""

    name: str
    authfile: str = ""  # containers-auth.json; "" = skopeo's own lookup (XDG_RUNTIME_DIR, ...)
    cert_dir: str = ""  # *.crt CAs, *.cert/*.key client certificate; "" = system CAs
    tls_verify: bool = True


@dataclasses.dataclass(frozen=True)
class ContainersConfig:
    registries: list[RegistryConfig] = dataclasses.field(default_factory=list)
    repositories: dict[str, str] = dataclasses.field(default_factory=dict)
    latest_release: str = ""  # "" = no compose moves `latest`
    timeout: int = 1800  # seconds for one skopeo command
    retries: int = 3  # skopeo --retry-times for registry calls

    def repository(self, subvariant: str | None) -> str | None:
        """The repository for a subvariant (configured over the defaults), None if it has none."""
        merged = {**DEFAULT_REPOSITORIES, **self.repositories}
        return merged.get(subvariant or "") or None


def containers_config(config: Config) -> ContainersConfig:
    """The validated [containers] section; ConfigError naming the file and key."""
    cfg = section(config, SECTION, ContainersConfig)
    path = config.path or "<config>"
    if not isinstance(cfg.repositories, dict):
        raise ConfigError(path, f"{SECTION}.repositories", "expected a table")
    for subvariant, repo in cfg.repositories.items():
        if not isinstance(repo, str) or (repo and not _REPOSITORY.fullmatch(repo)):
            raise ConfigError(path, f"{SECTION}.repositories.{subvariant}",
                              f"expected a repository name like 'fedora-minimal', got {repo!r}")
    names = [r.name for r in cfg.registries]
    for i, registry in enumerate(cfg.registries):
        if not _REGISTRY.fullmatch(registry.name):
            raise ConfigError(path, f"{SECTION}.registries[{i}].name",
                              f"expected host[:port][/namespace], got {registry.name!r}")
        if names.index(registry.name) != i:
            raise ConfigError(path, f"{SECTION}.registries[{i}].name",
                              f"{registry.name!r} is listed twice")
    if cfg.latest_release and not _RELEASE.fullmatch(cfg.latest_release):
        raise ConfigError(path, f"{SECTION}.latest_release",
                          f"expected a release number like \"43\" or \"\", got "
                          f"{cfg.latest_release!r}")
    for key in ("timeout", "retries"):
        if getattr(cfg, key) < (1 if key == "timeout" else 0):
            raise ConfigError(path, f"{SECTION}.{key}", f"too small: {getattr(cfg, key)}")
    return cfg
