"""Issue 4's "done when": `fedimg-upload --koji-task ID` against the Koji stand-in publishes the
qcow2, the raw.tar.xz and the CHECKSUM into a directory and into a moto S3 bucket, with the
messages on real RabbitMQ; a second run changes nothing and announces no download again."""

from __future__ import annotations

import hashlib
import os
import pathlib
import subprocess
import sys

import pytest

from tests.uploader.conftest import REPO_ROOT, config_dict, toml_text
from uploader.targets.downloads.checksum import parse

pytestmark = pytest.mark.slow

NAME = "Fedora-Cloud-Base-Rawhide-20261125.n.0.x86_64"
PUBLISHED = "fedimg.image.published.v1.downloads.*"
FILES = [f"{NAME}.qcow2", f"{NAME}.raw.tar.xz"]


def _upload(koji_hub, tmp_path: pathlib.Path, task_id: int, destination: str):
    cfg = tmp_path / "fedimg.toml"
    raw = config_dict(koji_hub, tmp_path / "work", uploader={"targets": ["downloads"]},
                      downloads={"destination": destination,
                                 "base_url": "https://dl.example.org/pub/alt/cloud"})
    cfg.write_text(toml_text(raw))
    # FEDORA_MESSAGING_CONF (and AWS_ENDPOINT_URL) come from the amqp_config (and aws) fixtures
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    return subprocess.run(
        [sys.executable, "-m", "uploader.cli", "--config", str(cfg), "--koji-task", str(task_id)],
        capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path,
    )


def _task(koji_hub, raw_xz_image) -> int:
    return koji_hub.add_image_task(
        release="20261125.n.0", arches=["x86_64"],
        files={"x86_64": {"Fedora-Cloud-Base-Rawhide-20261125.n.0.x86_64.raw.xz":
                          raw_xz_image.path}})


def _assert_announced(bus, checksum: dict, count: int = 2) -> None:
    messages = bus.wait_for(PUBLISHED, count=count)
    assert sorted(m.body["format"] for m in messages) == ["qcow2", "raw.tar.xz"]
    for m in messages:
        entry = checksum[f"{NAME}.{m.body['format']}"]
        assert (m.body["size"], m.body["sha256"]) == (entry.size, entry.sha256)
        assert m.body["url"].startswith("https://dl.example.org/pub/alt/cloud/Rawhide/nightly/")


def test_koji_task_to_directory_once(koji_hub, raw_xz_image, amqp_config, bus, tmp_path):
    task_id = _task(koji_hub, raw_xz_image)
    dest = tmp_path / "pub"

    first = _upload(koji_hub, tmp_path, task_id, str(dest))
    assert first.returncode == 0, first.stderr

    out = dest / "Rawhide" / "nightly"
    assert sorted(p.name for p in out.iterdir()) == ["CHECKSUM", *FILES]
    check = subprocess.run(["sha256sum", "--strict", "-c", "CHECKSUM"], cwd=out,
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    subprocess.run(["qemu-img", "compare", "-f", "raw", "-F", "qcow2",
                    str(raw_xz_image.raw.path), str(out / FILES[0])], check=True)
    _assert_announced(bus, parse((out / "CHECKSUM").read_text()))

    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    second = _upload(koji_hub, tmp_path, task_id, str(dest))
    assert second.returncode == 0, second.stderr
    bus.wait_for("fedimg.image.accepted.v1.*", count=2)  # the second run did run
    assert len(bus.wait_for(PUBLISHED, count=2)) == 2
    assert len([m for m in bus.messages() if m.topic.startswith(PUBLISHED[:-2])]) == 2
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_koji_task_to_s3_once(koji_hub, raw_xz_image, aws, amqp_config, bus, tmp_path):
    task_id = _task(koji_hub, raw_xz_image)
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="fedimg-dl")

    first = _upload(koji_hub, tmp_path, task_id, "s3://fedimg-dl/pub/alt/cloud")
    assert first.returncode == 0, first.stderr

    prefix = "pub/alt/cloud/Rawhide/nightly/"
    objects = {o["Key"][len(prefix):]: o for o in
               s3.list_objects_v2(Bucket="fedimg-dl", Prefix=prefix)["Contents"]}
    assert sorted(objects) == ["CHECKSUM", *FILES]
    checksum = parse(s3.get_object(Bucket="fedimg-dl", Key=prefix + "CHECKSUM")["Body"]
                     .read().decode())
    for name in FILES:
        data = s3.get_object(Bucket="fedimg-dl", Key=prefix + name)["Body"].read()
        assert (len(data), hashlib.sha256(data).hexdigest()) == \
            (checksum[name].size, checksum[name].sha256) and objects[name]["Size"] == len(data)
    _assert_announced(bus, checksum)

    etags = {k: o["ETag"] for k, o in objects.items()}
    second = _upload(koji_hub, tmp_path, task_id, "s3://fedimg-dl/pub/alt/cloud")
    assert second.returncode == 0, second.stderr
    bus.wait_for("fedimg.image.accepted.v1.*", count=2)
    assert len([m for m in bus.messages() if m.topic.startswith(PUBLISHED[:-2])]) == 2
    after = s3.list_objects_v2(Bucket="fedimg-dl", Prefix=prefix)["Contents"]
    assert {o["Key"][len(prefix):]: o["ETag"] for o in after} == etags
