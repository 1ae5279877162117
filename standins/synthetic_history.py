"""A synthetic message history of any size, in the shapes of all three families, for benchmarks
and for tests that need history in bulk.

The mix follows Fedora's own: the first 30% of the time span is the fedmsg era (legacy
``fedimg.image.upload/copy/publish/test``, one message per region and step), the next 20% is the
production ``fedora_image_uploader`` (one message per image and cloud, containers per arch), and
the rest is fedimg's own schemas (accepted, one published message per region, completed, two
downloads, and now and then a failure, a QE result, a promotion). Nightly Rawhide builds for two
arches dominate, with weekly builds and release candidates of numbered releases between them;
about 25 messages per image. ``rows(n, ...)`` yields exactly n rows in time order; the same
arguments always give the same rows (seeded).
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Iterator
from typing import Any

from standins.datagrepper_emulator import row

PREFIX = "org.fedoraproject.prod."
REGIONS = ("us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "eu-west-1",
           "eu-west-2", "eu-west-3", "eu-central-1", "eu-north-1", "eu-south-1", "ap-south-1",
           "ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ap-southeast-1",
           "ap-southeast-2", "sa-east-1", "me-south-1", "af-south-1")
ARCHES = ("x86_64", "aarch64")


class _Build:
    """One image's identity at a point in time."""

    def __init__(self, rnd: random.Random, when: float, serial: int) -> None:
        day = dt.datetime.fromtimestamp(when, dt.UTC)
        self.date = f"{day:%Y%m%d}"
        self.arch = ARCHES[serial % 2]
        self.release = str(20 + int((day.year - 2014) * 2 + day.month / 6.5))  # 2 per year
        kind = rnd.random()
        self.channel = "nightly" if kind < 0.75 else "weekly" if kind < 0.9 else "candidate"
        self.respin = serial // 2 % 3
        self.task = 10_000_000 + serial
        self.rnd = rnd

    def ours_name(self) -> str:
        if self.channel == "nightly":
            return f"Fedora-Cloud-Base-AmazonEC2-Rawhide-{self.date}.n.{self.respin}.{self.arch}"
        if self.channel == "weekly":
            return f"Fedora-Cloud-Base-Rawhide-weekly.{self.date}.{self.respin}.{self.arch}"
        return f"Fedora-Cloud-Base-AmazonEC2.{self.arch}-{self.release}-1.{self.respin + 1}"

    def legacy_name(self) -> str:
        if self.channel == "candidate":
            return f"Fedora-Cloud-Base-{self.release}-{self.date}.{self.respin}.{self.arch}"
        return f"Fedora-Cloud-Base-Rawhide-{self.date}.{self.arch}"

    def ami(self) -> str:
        return f"ami-{self.rnd.getrandbits(68):017x}"


def _legacy(b: _Build, msg: Any) -> None:
    name = b.legacy_name()
    base = {"image_name": name, "image_url": f"https://kojipkgs.example.org/{name}.raw.xz",
            "service": "EC2", "compose": {"compose_id": f"Fedora-{b.release}-{b.date}.0"}}
    msg("fedimg.image.upload", {**base, "destination": "EC2 (us-east-1)", "status": "started",
                                "extra": {}})
    msg("fedimg.image.upload", {**base, "destination": "EC2 (us-east-1)", "status": "completed",
                                "extra": {"id": b.ami()}})
    for region in REGIONS[1:12]:
        for event in ("copy", "publish"):
            msg(f"fedimg.image.{event}", {**base, "destination": f"EC2 ({region})",
                                          "status": "completed", "extra": {"id": b.ami()}})
    if b.rnd.random() < 0.3:
        msg("fedimg.image.test", {**base, "destination": "EC2 (us-east-1)",
                                  "status": "success", "extra": {}})


def _fiu(b: _Build, msg: Any) -> None:
    compose = f"Fedora-{b.release}-{b.date}.n.{b.respin}"
    head = "fedora_image_uploader.published.v1."
    msg(head + "aws", {"architecture": b.arch, "compose_id": compose, "release": int(b.release),
                       "subvariant": "Cloud_Base", "image_name": "Fedora-Cloud-AmazonEC2",
                       "regions": {r: b.ami() for r in REGIONS}})
    if b.arch == "x86_64":
        msg(head + "azure", {"architecture": "x86_64", "compose_id": compose,
                             "release": int(b.release), "subvariant": "Cloud_Base",
                             "image_definition_name": f"Fedora-Cloud-{b.release}-x64",
                             "image_version_name": f"{b.release}.{b.date}.{b.respin}",
                             "image_resource_id": f"/subscriptions/x/images/{b.date}",
                             "regions": ["eastus", "westus2", "westeurope"]})
        msg(head + "gcp", {"architecture": "x86_64", "compose_id": compose,
                           "release": int(b.release), "subvariant": "Cloud_Base",
                           "image_name": f"fedora-cloud-{b.release}-{b.date}-x86-64",
                           "family": f"fedora-cloud-{b.release}", "storage_locations": ["us"]})
        msg(head + "container", {"architectures": list(ARCHES), "compose_id": compose,
                                 "registries": ["quay.io/fedora", "registry.fedoraproject.org"],
                                 "repository": "fedora", "tags": [b.release, "latest"]})


def _ours(b: _Build, msg: Any) -> None:
    name = b.ours_name()
    release = "Rawhide" if b.channel in ("nightly", "weekly") else b.release
    ident = {"name": name, "release": release, "subvariant": "Cloud_Base", "arch": b.arch,
             "channel": b.channel, "compose_id": None, "koji_task_id": b.task,
             "koji_build_id": None, "agent": "fedimg"}
    sha = f"{b.rnd.getrandbits(256):064x}"
    msg("fedimg.image.accepted.v1", {**ident, "targets": ["aws", "downloads"],
                                     "source_url": f"https://kojipkgs.example.org/{name}.raw.xz",
                                     "size": 501538584, "sha256": sha})
    amis = {}
    for region in REGIONS:
        if b.rnd.random() < 0.04:
            msg("fedimg.image.failed.v1.aws", {
                **ident, "target": "aws", "destination": region, "error_kind": "timeout",
                "error": f"copy to {region} did not become available within 2700 s",
                "retryable": True})
            continue
        amis[region] = b.ami()
        msg(f"fedimg.image.published.v1.aws.{region}", {
            **ident, "region": region, "ami": amis[region], "snapshot_id": None, "public": True,
            "ami_name": f"{name}-hvm-gp3"})
    msg("fedimg.image.completed.v1.aws", {**ident, "regions": amis, "failed_regions": []})
    for fmt in ("qcow2", "raw.tar.xz"):
        msg(f"fedimg.image.published.v1.downloads.{fmt}", {
            **ident, "format": fmt, "url": f"https://dl.example.org/cloud/{name}.{fmt}",
            "size": 500_000_000 + b.task, "sha256": sha,
            "checksum_url": "https://dl.example.org/cloud/CHECKSUM"})
    if b.channel != "nightly" or b.rnd.random() < 0.2:
        msg("fedimg.image.tested.v1", {
            **{k: ident[k] for k in ("name", "release", "subvariant", "arch", "channel")},
            "result": "passed" if b.rnd.random() < 0.9 else "failed",
            "test_suite": "openqa-cloud", "url": None, "agent": "openqa", "note": None})
    if b.channel == "candidate" and b.rnd.random() < 0.1:
        msg("fedimg.image.promoted.v1", {
            **{k: ident[k] for k in ("name", "release", "subvariant", "arch")},
            "channel": "release", "official": True, "agent": "releng", "note": "GA"})


def rows(n: int, start: float, span: float, seed: int = 7) -> Iterator[dict[str, Any]]:
    """Exactly ``n`` rows between ``start`` and ``start + span``, evenly spaced, in time order.

    Whole-second timestamps, as datagrepper renders them; the era of a row is its place in time.
    """
    rnd = random.Random(seed)
    made = 0
    serial = 0
    while made < n:
        when = start + span * made / n
        b = _Build(rnd, when, serial)
        out: list[tuple[str, dict]] = []
        era = made / n
        (_legacy if era < 0.3 else _fiu if era < 0.5 else _ours)(
            b, lambda topic, body, out=out: out.append((topic, body)))
        for topic, body in out:
            if made == n:
                return
            msg_id = str(uuid.UUID(int=rnd.getrandbits(128), version=4))
            yield row(msg_id, float(int(start + span * made / n)), PREFIX + topic, body)
            made += 1
        serial += 1
