"""The AWS target streams: blocks reach EBS (moto) while the Koji stand-in is still sending.

Through the real pipeline (process_image) with the real handlers: the snapshot holds exactly the
non-zero blocks, nothing is completed before the download is verified, a download failing
verification leaves no snapshot, and the downloads target in the same process gets its raw
file from the same single fetch.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import os
import shutil
import urllib.parse

import pytest

from shared.config import parse_config
from shared.errors import VerificationFailed
from tests.uploader.conftest import config_dict
from tests.uploader.targets.aws.conftest import non_zero_blocks
from uploader.intake import build_images
from uploader.pipeline import make_clients, process_image
from uploader.targets import get_handlers
from uploader.targets.aws import naming

pytestmark = pytest.mark.slow

NAME = "Fedora-Cloud-Base-Rawhide-20261125.n.0"


def _config(hub, tmp_path, targets):
    raw = config_dict(hub, tmp_path / "work", uploader={"targets": targets},
                      aws={"base_region": "us-east-1", "regions": ["us-east-1"],
                           "upload_workers": 4, "progress_interval": 1},
                      downloads={"destination": str(tmp_path / "pub"),
                                 "base_url": "https://dl.example.org/pub"})
    return parse_config(raw, "test.toml")


def _ours(aws):
    ec2 = aws.direct_client("ec2", "us-east-1")
    return [s for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
            if any(t["Key"] == naming.TAG_UPLOAD for t in s.get("Tags", []))]


def _run(hub, run, config, source_path, *, corrupt_at: float | None = None):
    copy = config.uploader.work_dir + ".served.raw.xz"  # the hub serves files in place
    shutil.copyfile(source_path, copy)
    bid = hub.add_image_build(files={"x86_64": {f"{NAME}.x86_64.raw.xz": copy}})
    clients = dataclasses.replace(make_clients(config, []), aws=run.session)
    (source,) = build_images(bid, config=config, session=clients.koji)
    if corrupt_at is not None:  # the served bytes change; the build still records the old sha
        served = hub.file_path(source.url)
        with open(served, "r+b") as f:
            f.seek(int(served.stat().st_size * corrupt_at))
            byte = f.read(1)
            f.seek(-1, os.SEEK_CUR)
            f.write(bytes([byte[0] ^ 0xFF]))
    at_accept = {}

    def emit(message):
        message.validate()
        if ".accepted." in message.topic:
            at_accept.update({a: len(run.wire.calls(a))
                              for a in ("PutSnapshotBlock", "CompleteSnapshot")})
        run.messages.append(message)

    report = process_image(source, config=config, clients=clients, emit=emit,
                           handlers=get_handlers(config.uploader.targets))
    return source, report, at_accept


def test_blocks_go_out_during_the_download_and_complete_only_after_it_is_verified(
        koji_hub, aws, run, raw_xz_image, tmp_path):
    config = _config(koji_hub, tmp_path, ["aws", "downloads"])
    source, report, at_accept = _run(koji_hub, run, config, raw_xz_image.path)
    assert report.ok, report.summary()

    expected = non_zero_blocks(raw_xz_image.raw.path)
    # every block was sent before the image was announced as verified; none completed before
    assert at_accept == {"PutSnapshotBlock": len(expected), "CompleteSnapshot": 0}
    puts = run.wire.calls("PutSnapshotBlock")
    assert {int(p.params["index"]): p.body_sha256 for p in puts} == expected
    assert len(puts) == len(expected)  # zero blocks never sent, none twice
    (start,) = run.wire.calls("StartSnapshot")
    assert start.params["VolumeSize"] == "1"  # from the xz index: 64 MiB rounds up to 1 GiB
    (done,) = run.wire.calls("CompleteSnapshot")
    linear = hashlib.sha256(b"".join(d for _, d in sorted(expected.items()))).digest()
    assert done.params["x-amz-changedblockscount"] == str(len(expected))
    assert done.params["x-amz-checksum"] == base64.b64encode(linear).decode()
    (snap,) = _ours(aws)
    assert {"Key": naming.TAG_UPLOAD, "Value": naming.UPLOAD_COMPLETE} in snap["Tags"]

    # the downloads target of the same process got its raw file from the same single fetch
    assert any(o.target == "downloads" and o.published for o in report.outcomes)
    path = urllib.parse.unquote(urllib.parse.urlsplit(source.url).path)
    assert koji_hub.served_bytes[path] <= raw_xz_image.size + 260 * 1024


def test_a_download_failing_verification_leaves_no_snapshot(koji_hub, aws, run, raw_xz_image,
                                                            tmp_path):
    config = _config(koji_hub, tmp_path, ["aws"])
    source, report, at_accept = _run(koji_hub, run, config, raw_xz_image.path, corrupt_at=0.7)
    assert not report.accepted and at_accept == {}
    (error,) = report.errors
    assert isinstance(error, VerificationFailed) and "sha256 mismatch" in str(error)
    assert run.wire.calls("PutSnapshotBlock")  # blocks had gone out before the mismatch showed
    assert not run.wire.calls("CompleteSnapshot")
    assert _ours(aws) == []  # the pending snapshot was deleted
    (failure,) = [m for m in run.messages if ".failed." in m.topic]
    assert failure.body["target"] == "intake" and "sha256 mismatch" in failure.body["error"]
    assert not list((tmp_path / "work").iterdir())
