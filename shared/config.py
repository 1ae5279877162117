"""fedimg configuration: one TOML file, read once, validated against the dataclasses below.

The dataclasses ARE the contract: every key, its type and its default is declared once here,
documented in deploy/fedimg.toml.example and docs/configuration.md. Unknown keys are errors,
so a typo never silently falls back to a default.

Targets added after AWS and downloads own their section: a top-level table named like a target
listed in `uploader.targets` is kept as `Config.sections[name]` and validated by the target itself
against its own dataclass with `section()`, so adding a cloud needs no edit here.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, Literal

from shared.errors import ConfigError

DEFAULT_PATH = "/etc/fedimg/fedimg.toml"
ENV_VAR = "FEDIMG_CONFIG"
EXIT_CONFIG_ERROR = 2


@dataclasses.dataclass(frozen=True)
class KojiConfig:
    hub: str = "https://koji.fedoraproject.org/kojihub"
    topurl: str = "https://kojipkgs.fedoraproject.org"
    owners: list[str] = dataclasses.field(default_factory=lambda: ["releng"])
    auth: Literal["ssl", "gssapi"] = "ssl"
    cert: str = "/etc/fedimg/koji.pem"
    serverca: str = ""
    principal: str = ""
    keytab: str = ""
    timeout: int = 60
    retries: int = 3
    retry_interval: int = 20


@dataclasses.dataclass(frozen=True)
class UploaderConfig:
    # target names from the uploader's registry (uploader/targets/__init__.py), checked there
    targets: list[str] = dataclasses.field(
        default_factory=lambda: ["aws", "downloads"]
    )
    work_dir: str = "/var/tmp/fedimg"
    # Which images are wanted: productmd subvariants and Koji/productmd image types.
    subvariants: list[str] = dataclasses.field(default_factory=lambda: ["Cloud_Base"])
    # Koji/productmd image types; each must be taken by some registered target (checked there).
    image_types: list[str] = dataclasses.field(
        default_factory=lambda: ["raw-xz"]
    )
    fetch_timeout: int = 60
    fetch_retries: int = 3
    decompress_timeout: int = 1800
    # The largest raw disk an image may have (MiB): a decompression bomb is refused, not written.
    max_disk_mib: int = 65536
    max_deliveries: int = 5
    retry_delay: int = 30


@dataclasses.dataclass(frozen=True)
class ComposeConfig:
    base_url: str = "https://kojipkgs.fedoraproject.org/compose"
    # Where a compose lives below base_url, tried in order (see uploader/intake/compose.py).
    layouts: list[str] = dataclasses.field(
        default_factory=lambda: [
            "{release_lower}/{compose_id}", "branched/{compose_id}", "{compose_id}",
        ]
    )


@dataclasses.dataclass(frozen=True)
class AwsConfig:
    base_region: str = "us-east-1"
    regions: list[str] = dataclasses.field(default_factory=lambda: ["*"])
    public: bool = True
    volume_type: str = "gp3"
    max_parallel_copies: int = 8
    copy_timeout: int = 2700
    region_deadline: int = 300
    nightly_deprecation_days: int = 14
    nightly_retention_days: int = 30
    upload_workers: int = 16
    max_attempts: int = 8
    connect_timeout: int = 10
    read_timeout: int = 60
    snapshot_timeout: int = 3600
    progress_interval: int = 5


@dataclasses.dataclass(frozen=True)
class DownloadsConfig:
    destination: str = "/srv/pub/alt/cloud"
    base_url: str = "https://dl.fedoraproject.org/pub/alt/cloud"
    qcow2_compression: Literal["zlib", "zstd"] = "zlib"
    xz_threads: int = 0
    timeout: int = 3600


@dataclasses.dataclass(frozen=True)
class ReporterConfig:
    datagrepper: str = "https://apps.fedoraproject.org/datagrepper"
    timeout: int = 50
    retries: int = 4
    concurrency: int = 4
    since: str = "2014-01-01"
    overlap: int = 3600
    window_days: int = 90
    max_pages: int = 5
    check_amis: bool = False  # ask EC2 whether reported AMIs exist, are aws_owner's and public
    aws_owner: str = ""  # the account id that owns the reported AMIs (for check_amis)


@dataclasses.dataclass(frozen=True)
class JobConfig:
    name: str
    schedule: Literal["nightly", "weekly", "manual"]
    image_name: str
    version: str
    target: str
    ksurl: str
    kickstart: str
    arches: list[str]
    distro: str = ""
    install_tree: str = ""
    formats: list[str] = dataclasses.field(default_factory=lambda: ["raw-xz", "qcow2"])
    repos: list[str] = dataclasses.field(default_factory=list)
    scratch: bool = True
    method: Literal["image", "livemedia", "appliance"] = "image"
    disk_size: int = 5


@dataclasses.dataclass(frozen=True)
class TriggerConfig:
    jobs: list[JobConfig] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class BusConfig:
    # seconds any fedimg command waits for the broker to confirm a message it publishes
    publish_timeout: int = 30


@dataclasses.dataclass(frozen=True)
class Config:
    path: str = ""
    koji: KojiConfig = dataclasses.field(default_factory=KojiConfig)
    uploader: UploaderConfig = dataclasses.field(default_factory=UploaderConfig)
    compose: ComposeConfig = dataclasses.field(default_factory=ComposeConfig)
    aws: AwsConfig = dataclasses.field(default_factory=AwsConfig)
    downloads: DownloadsConfig = dataclasses.field(default_factory=DownloadsConfig)
    reporter: ReporterConfig = dataclasses.field(default_factory=ReporterConfig)
    trigger: TriggerConfig = dataclasses.field(default_factory=TriggerConfig)
    bus: BusConfig = dataclasses.field(default_factory=BusConfig)
    # raw tables of targets that own their section (see the module docstring)
    sections: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)

    def job(self, name: str) -> JobConfig:
        for job in self.trigger.jobs:
            if job.name == name:
                return job
        known = ", ".join(j.name for j in self.trigger.jobs) or "none configured"
        raise ConfigError(self.path, "trigger.jobs", f"no job named {name!r} (known: {known})")


_URL_KEYS = {
    "koji.hub",
    "koji.topurl",
    "compose.base_url",
    "downloads.base_url",
    "reporter.datagrepper",
}


def resolve_path(explicit: str | os.PathLike | None) -> Path:
    """--config wins, then $FEDIMG_CONFIG, then /etc/fedimg/fedimg.toml."""
    return Path(explicit or os.environ.get(ENV_VAR) or DEFAULT_PATH)


def load_config(path: str | os.PathLike | None = None) -> Config:
    """Read and validate the config file; raise ConfigError naming file, key and expectation."""
    resolved = resolve_path(path)
    try:
        with open(resolved, "rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(resolved, None, "file not found") from None
    except PermissionError:
        raise ConfigError(resolved, None, "not readable (permission denied)") from None
    except IsADirectoryError:
        raise ConfigError(resolved, None, "is a directory, expected a TOML file") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(resolved, None, f"not valid TOML ({e})") from None
    return parse_config(raw, resolved)


def parse_config(raw: dict[str, Any], path: str | os.PathLike = "<config>") -> Config:
    """Build a Config from an already-parsed TOML document."""
    known = {f.name for f in dataclasses.fields(Config)} - {"sections"}
    uploader = raw.get("uploader")
    targets = uploader.get("targets", []) if isinstance(uploader, dict) else []
    own = {k: v for k, v in raw.items()
           if k not in known and isinstance(targets, list) and k in targets}
    core = {k: v for k, v in raw.items() if k not in own}
    cfg = _build(Config, core, str(path), prefix="", skip={"path", "sections"})
    for name, table in own.items():
        if not isinstance(table, dict):
            raise ConfigError(path, name, f"expected a table, got {_describe(table)}")
    return dataclasses.replace(cfg, path=str(path), sections=own)


T = typing.TypeVar("T")


def section(config: Config, name: str, cls: type[T]) -> T:
    """The section `name` of a target that owns it, validated against `cls` (defaults if absent).

    Errors name the file and the key, exactly as for the core sections."""
    return _build(cls, config.sections.get(name, {}), config.path or "<config>",
                  prefix=f"{name}.")


def _build(cls: type, data: Any, path: str, prefix: str, skip: frozenset | set = frozenset()):
    where = prefix.rstrip(".") or None
    if not isinstance(data, dict):
        raise ConfigError(path, where, f"expected a table, got {_describe(data)}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in skip}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            path, f"{prefix}{unknown[0]}", f"unknown key (known: {', '.join(sorted(fields))})"
        )
    hints = typing.get_type_hints(cls)
    values = {}
    for name, field in fields.items():
        key = f"{prefix}{name}"
        if name not in data:
            no_default = (
                field.default is dataclasses.MISSING
                and field.default_factory is dataclasses.MISSING
            )
            if no_default:
                raise ConfigError(path, key, "missing (required)")
            continue
        values[name] = _convert(hints[name], data[name], path, key)
        if key in _URL_KEYS and not str(values[name]).startswith(("http://", "https://")):
            raise ConfigError(path, key, f"expected an http(s) URL, got {data[name]!r}")
    return cls(**values)


def _convert(hint: Any, value: Any, path: str, key: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, path, prefix=f"{key}.")
    if origin is Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            expected = " or ".join(repr(a) for a in allowed)
            raise ConfigError(path, key, f"expected {expected}, got {value!r}")
        return value
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(path, key, f"expected a list, got {_describe(value)}")
        return [_convert(item, v, path, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin in (typing.Union, types.UnionType):
        raise TypeError(f"unsupported config type {hint}")  # keep the schema simple
    # bool is an int subclass in Python; a TOML `true` must not pass as a number, nor 1 as a bool
    if hint is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(path, key, f"expected an integer, got {_describe(value)}")
    if hint is bool and not isinstance(value, bool):
        raise ConfigError(path, key, f"expected true or false, got {_describe(value)}")
    if hint is str and not isinstance(value, str):
        raise ConfigError(path, key, f"expected a string, got {_describe(value)}")
    return value


def _describe(value: Any) -> str:
    kinds = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
             list: "a list", dict: "a table"}
    return f"{kinds.get(type(value), type(value).__name__)} ({value!r})"
