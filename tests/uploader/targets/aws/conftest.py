"""Helpers for the AWS target tests: an image, a config and a session whose requests are logged."""

from __future__ import annotations

import dataclasses
import hashlib
import pathlib

import boto3
import pytest

from shared.config import AwsConfig, Config
from shared.images import identify
from tests.uploader.targets.aws.wire import WireLog
from uploader.model import Clients, ImageSource, VerifiedImage
from uploader.targets.aws import blocks

NIGHTLY = "Fedora-Cloud-Base-AmazonEC2-Rawhide-20261125.n.0.x86_64"


def make_image(raw_path, name: str = NIGHTLY, **source) -> VerifiedImage:
    defaults = {"koji_task_id": 139876543, "sha256": "ab" * 32}
    src = ImageSource(identity=identify(name), filename=f"{name}.raw.xz",
                      url=f"https://kojipkgs.example.org/work/{name}.raw.xz",
                      image_type="raw-xz", **{**defaults, **source})
    return VerifiedImage(source=src, raw_path=raw_path)


def non_zero_blocks(raw: pathlib.Path) -> dict[int, bytes]:
    """{block index: raw SHA-256} of every block of a raw disk that is not all zeros, read
    naively (the independent expectation of what an upload must send)."""
    found = {}
    with open(raw, "rb") as f:
        index = 0
        while chunk := f.read(blocks.BLOCK_SIZE):
            chunk = chunk.ljust(blocks.BLOCK_SIZE, b"\0")
            if any(chunk):
                found[index] = hashlib.sha256(chunk).digest()
            index += 1
    return found


def make_config(**aws) -> Config:
    # max_attempts 2: a region that answers 500 fails fast; progress every second in logs.
    defaults = {"base_region": "us-east-1", "regions": ["us-east-1", "eu-west-1"],
                "max_attempts": 2, "upload_workers": 4, "progress_interval": 1,
                "read_timeout": 30}
    return Config(aws=dataclasses.replace(AwsConfig(), **{**defaults, **aws}))


@dataclasses.dataclass
class Run:
    session: boto3.Session
    wire: WireLog
    messages: list

    @property
    def clients(self) -> Clients:
        return Clients(aws=self.session)

    def topics(self) -> list[str]:
        return [m.topic for m in self.messages]


@pytest.fixture
def run(aws) -> Run:
    """A fresh boto3 Session on the moto server with a wire log, and a list that collects emits."""
    session = boto3.Session()
    return Run(session, WireLog(session), [])
