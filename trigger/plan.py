"""What a job asks Koji for: a pure function of the job, the date, the respin and the overrides.

No I/O here, so `--dry-run` (which must not touch the hub) and the real run share one code path,
and the exact hub call can be printed before anything is started.

Release naming (the NVR release field):
  nightly   <YYYYMMDD>.n.<N>     N = respin that day, 0 first (".n." marks a nightly, like Pungi)
  weekly    weekly.<YYYYMMDD>    one per job per date
  manual    <YYYYMMDD>.<N>       like an unlabelled production compose; or --release
A run with any override (--repo, --name, --version, --release) is a hand-made release-candidate
build: its channel is "candidate" whatever the job's schedule.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
from typing import Any, Literal

import koji

from shared.config import JobConfig
from shared.errors import JobError

# Respin counters are parsed back from releases Koji already has; this is the shape they take.
_RESPIN_RELEASE = {
    "nightly": "{date}.n.{n}",
    "manual": "{date}.{n}",
}

Channel = Literal["nightly", "weekly", "candidate"]


@dataclasses.dataclass(frozen=True)
class Overrides:
    """Command-line overrides for hand-started release-candidate builds."""

    repos: tuple[str, ...] | None = None  # replaces the job's repos when given
    name: str | None = None
    version: str | None = None
    release: str | None = None
    scratch: bool | None = None

    @property
    def any(self) -> bool:
        return any(v is not None for v in (self.repos, self.name, self.version, self.release))


@dataclasses.dataclass(frozen=True)
class BuildRequest:
    """One Koji image build, ready to send: the hub method, its positional args and opts."""

    job: str
    schedule: str
    channel: Channel
    method: str  # Koji task method: image | livemedia | appliance
    name: str
    version: str
    release: str
    target: str
    arches: tuple[str, ...]
    ksurl: str
    kickstart: str
    formats: tuple[str, ...]
    scratch: bool
    date: datetime.date
    respin: int | None  # None when the release carries no respin counter
    hub_method: str  # buildImageOz | buildImage
    hub_args: tuple[Any, ...]
    hub_opts: dict[str, Any]

    @property
    def nvr(self) -> str:
        return f"{self.name}-{self.version}-{self.release}"

    def as_json(self) -> dict[str, Any]:
        return {
            "job": self.job, "channel": self.channel, "method": self.method,
            "name": self.name, "version": self.version, "release": self.release,
            "nvr": self.nvr, "target": self.target, "arches": list(self.arches),
            "ksurl": self.ksurl, "kickstart": self.kickstart, "formats": list(self.formats),
            "scratch": self.scratch, "date": self.date.isoformat(),
            "hub_call": {"method": self.hub_method, "args": list(self.hub_args),
                         "opts": self.hub_opts},
        }

    def describe(self) -> str:
        """One line: everything a release engineer checks before a build starts."""
        repos = ",".join(self.hub_opts.get("repo", [])) or "target's build repo"
        return (
            f"{self.job}: {self.hub_method} {self.nvr} channel={self.channel} "
            f"target={self.target} arches={','.join(self.arches)} "
            f"formats={','.join(self.formats) or '-'} scratch={str(self.scratch).lower()} "
            f"ksurl={self.ksurl} kickstart={self.kickstart} repos={repos}"
        )


def channel_of(job: JobConfig, overrides: Overrides) -> Channel:
    if job.schedule == "manual" or overrides.any:
        return "candidate"
    return "nightly" if job.schedule == "nightly" else "weekly"


def uses_respin(job: JobConfig, overrides: Overrides) -> bool:
    """Whether the release carries a respin counter (decided against Koji at run time)."""
    return overrides.release is None and job.schedule in _RESPIN_RELEASE


def release_for(job: JobConfig, date: datetime.date, respin: int, overrides: Overrides) -> str:
    if overrides.release is not None:
        return overrides.release
    day = date.strftime("%Y%m%d")
    if job.schedule == "weekly":
        return f"weekly.{day}"
    return _RESPIN_RELEASE[job.schedule].format(date=day, n=respin)


def respin_of(job: JobConfig, date: datetime.date, release: str) -> int | None:
    """The respin counter of an existing release of this job's shape for `date`, else None."""
    if job.schedule not in _RESPIN_RELEASE:
        return None
    day = date.strftime("%Y%m%d")
    pattern = re.escape(_RESPIN_RELEASE[job.schedule].format(date=day, n="N")).replace(
        "N", "([0-9]{1,6})")
    m = re.fullmatch(pattern, release)
    return int(m.group(1)) if m else None


def plan(job: JobConfig, date: datetime.date, *, respin: int = 0,
         overrides: Overrides = Overrides()) -> BuildRequest:  # noqa: B008 - frozen, immutable
    """The Koji request for `job` on `date` (the respin only matters for respin releases)."""
    name = overrides.name or job.image_name
    version = overrides.version or job.version
    release = release_for(job, date, respin, overrides)
    repos = list(overrides.repos if overrides.repos is not None else job.repos)
    scratch = job.scratch if overrides.scratch is None else overrides.scratch
    # koji's CLI canonicalises arches the same way before calling the hub
    arches = tuple(koji.canonArch(a) for a in job.arches)
    if not arches:
        raise JobError(f"job {job.name}: arches is empty")
    if not job.ksurl or not job.kickstart:
        raise JobError(f"job {job.name}: ksurl and kickstart are both required")

    if job.method == "image":
        if not job.distro:
            raise JobError(f"job {job.name}: distro is required for method 'image' "
                           "(e.g. Fedora-44)")
        if not job.install_tree:
            raise JobError(f"job {job.name}: install_tree is required for method 'image'")
        # the keys koji's `image-build` sends (koji_cli.commands._build_image_oz)
        opts: dict[str, Any] = {
            "ksurl": job.ksurl, "kickstart": job.kickstart, "distro": job.distro,
            "format": list(job.formats), "release": release, "scratch": scratch,
            "disk_size": job.disk_size,
        }
        if repos:
            opts["repo"] = repos
        hub_method = "buildImageOz"
        hub_args: tuple[Any, ...] = (name, version, list(arches), job.target, job.install_tree)
        formats = tuple(job.formats)
    else:
        # `spin-livemedia` / `spin-appliance` (koji_cli.commands._build_image): the kickstart is
        # a path inside the ksurl checkout; livemedia takes a list of arches, appliance one.
        opts = {"ksurl": job.ksurl, "release": release, "scratch": scratch}
        if repos:
            opts["repo"] = repos
        if job.method == "livemedia":
            arch_arg: Any = list(arches)
            if job.install_tree:
                opts["install_tree_url"] = job.install_tree
            formats = ()
        else:
            if len(arches) != 1:
                raise JobError(f"job {job.name}: method 'appliance' builds exactly one arch, "
                               f"got {len(arches)}")
            if len(job.formats) > 1:
                raise JobError(f"job {job.name}: method 'appliance' builds one format, "
                               f"got {len(job.formats)}")
            arch_arg = arches[0]
            formats = tuple(job.formats)
            if formats:
                opts["format"] = formats[0]
        hub_method = "buildImage"
        hub_args = (name, version, arch_arg, job.target, job.kickstart, job.method)

    return BuildRequest(
        job=job.name, schedule=job.schedule, channel=channel_of(job, overrides),
        method=job.method, name=name, version=version, release=release, target=job.target,
        arches=arches, ksurl=job.ksurl, kickstart=job.kickstart, formats=formats,
        scratch=scratch, date=date,
        respin=respin if uses_respin(job, overrides) else None,
        hub_method=hub_method, hub_args=hub_args, hub_opts=opts,
    )
