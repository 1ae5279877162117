"""Fixtures for the downloads target: small real disk images, configs, message recorders and
stand-in tools on PATH (for faults that real tools cannot be made to show on demand: a
conversion that hangs, one that fails)."""

from __future__ import annotations

import dataclasses
import os
import pathlib
import shutil
from collections.abc import Callable
from typing import Any

import pytest

from shared.config import Config, parse_config
from shared.images import identify
from standins.disk_images import DiskImage, MiB
from uploader.model import ImageSource, VerifiedImage

NAME = "Fedora-Cloud-Base-Generic-Rawhide-20261125.n.0.x86_64"
BASE_URL = "https://dl.example.org/pub/alt/cloud"


@dataclasses.dataclass
class Case:
    image: VerifiedImage
    disk: DiskImage


def make_case(disk: DiskImage, name: str = NAME, task_id: int = 139876545) -> Case:
    source = ImageSource(
        identity=identify(name),
        filename=f"{name}.raw.xz",
        url=f"https://kojipkgs.example.org/work/tasks/6545/{task_id}/{name}.raw.xz",
        image_type="raw-xz",
        koji_task_id=task_id,
    )
    return Case(VerifiedImage(source=source, raw_path=disk.path), disk)


@pytest.fixture
def case(disk_image_factory: Callable[..., DiskImage]) -> Case:
    """A 64 MiB GPT + ext4 image with 4 MiB of data, as the intake would hand it over."""
    return make_case(disk_image_factory(name="fetched.raw", size=64 * MiB, data_mib=4))


@pytest.fixture
def dest(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "pub"
    path.mkdir()
    return path


def config_for(destination: str | os.PathLike, **downloads: Any) -> Config:
    return parse_config({"downloads": {"destination": str(destination), "base_url": BASE_URL,
                                       **downloads}})


class Recorder:
    """emit() for tests: validates each message against its schema, as the bus would need."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    def __call__(self, message: Any) -> None:
        message.validate()
        self.messages.append(message)

    def bodies(self, topic_prefix: str) -> list[dict]:
        return [m.body for m in self.messages if m.topic.startswith(topic_prefix)]


@pytest.fixture
def emit() -> Recorder:
    return Recorder()


class FakeTools:
    """Scripts placed before the real tools on PATH. Each records its pid (the script execs,
    so the pid is the tool's) in pids_file, then runs what the test asked for."""

    def __init__(self, directory: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.directory = directory
        self.pids_file = directory / "pids"
        self.pids_file.touch()
        monkeypatch.setenv("PATH", f"{directory}{os.pathsep}{os.environ['PATH']}")

    def install(self, tool: str, body: str) -> None:
        real = shutil.which(tool, path=os.defpath + ":/usr/bin:/bin")
        script = self.directory / tool
        script.write_text(
            "#!/bin/sh\n"
            f'echo "{tool} $$" >> "{self.pids_file}"\n'
            f"REAL={real}\n"
            f"{body}\n"
        )
        script.chmod(0o755)

    def pids(self) -> dict[str, list[int]]:
        found: dict[str, list[int]] = {}
        for line in self.pids_file.read_text().splitlines():
            tool, pid = line.split()
            found.setdefault(tool, []).append(int(pid))
        return found


@pytest.fixture
def fake_tools(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> FakeTools:
    directory = tmp_path / "bin"
    directory.mkdir()
    return FakeTools(directory, monkeypatch)


def alive(pid: int) -> bool:
    """True if the process exists and is not a zombie."""
    try:
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
