"""`fedimg-upload --compose ID` against the Koji/compose stand-in and two real Glance clouds:
the compose's Generic qcow2 becomes one public image in each cloud, announced on real RabbitMQ;
the compose's EC2 image is not the openstack target's; a second run uploads nothing."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.uploader.conftest import REPO_ROOT, config_dict, serve_compose, toml_text

pytestmark = pytest.mark.slow

COMPOSE_ID = "Fedora-Rawhide-20261125.n.0"
GENERIC = "Fedora-Cloud-Base-Generic-Rawhide-20261125.n.0.x86_64"
EC2 = "Fedora-Cloud-Base-AmazonEC2-Rawhide-20261125.n.0.x86_64"
PUBLISHED = "fedimg.image.published.v1.openstack"


def _entry(filename: str, image_type: str, fmt: str) -> dict:
    return {"arch": "x86_64", "bootable": False, "disc_count": 1, "disc_number": 1,
            "format": fmt, "implant_md5": None, "mtime": 1764028800,
            "path": f"Cloud/x86_64/images/{filename}", "size": 0, "subvariant": "Cloud_Base",
            "type": image_type, "volume_id": None, "checksums": {"sha256": ""}}


def _images_json(entries: list[dict]) -> dict:
    return {"header": {"type": "productmd.images", "version": "1.2"},
            "payload": {"compose": {"date": "20261125", "id": COMPOSE_ID, "respin": 0,
                                    "type": "nightly"},
                        "images": {"Cloud": {"x86_64": entries}}}}


def _upload(koji_hub, tmp_path, clouds):
    cfg = tmp_path / "fedimg.toml"
    cfg.write_text(toml_text(config_dict(
        koji_hub, tmp_path / "work",
        uploader={"targets": ["openstack"], "image_types": ["raw-xz", "qcow2"]},
        openstack={"clouds": clouds})))
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))  # OS_CLIENT_CONFIG_FILE from the fixture
    return subprocess.run(
        [sys.executable, "-m", "uploader.cli", "--config", str(cfg), "--compose", COMPOSE_ID],
        capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)


def test_compose_generic_qcow2_to_two_clouds_once(koji_hub, glance_clouds, qcow2_image,
                                                  raw_xz_image, amqp_config, bus, tmp_path):
    serve_compose(koji_hub, _images_json([
        _entry(f"{GENERIC}.qcow2", "qcow2", "qcow2"),
        _entry(f"{EC2}.raw.xz", "raw-xz", "raw.xz"),
    ]), f"rawhide/{COMPOSE_ID}", files={
        f"Cloud/x86_64/images/{GENERIC}.qcow2": qcow2_image.path,
        f"Cloud/x86_64/images/{EC2}.raw.xz": raw_xz_image.path,
    })
    first = _upload(koji_hub, tmp_path, glance_clouds.names)
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"{EC2}.raw.xz: openstack left out" in first.stderr

    messages = bus.wait_for(f"{PUBLISHED}.*", count=2)
    ids = {m.body["cloud"]: m.body["image_id"] for m in messages}
    assert sorted(ids) == glance_clouds.names
    for cloud, image_id in ids.items():
        conn = glance_clouds.connect(cloud)
        (image,) = conn.image.images(name=GENERIC, visibility="all")
        assert image.id == image_id
        assert (image.status, image.visibility, image.disk_format) == ("active", "public",
                                                                       "qcow2")
        assert (image.os_distro, image.os_version, image.architecture) == ("fedora", "rawhide",
                                                                           "x86_64")
        assert image.properties["fedimg_compose_id"] == COMPOSE_ID
        assert image.properties["fedimg_source_sha256"] == qcow2_image.sha256
        assert list(conn.image.images(name=EC2, visibility="all")) == []
    (accepted,) = bus.wait_for("fedimg.image.accepted.v1.*", count=1)
    assert accepted.body["targets"] == ["openstack"] and accepted.body["name"] == GENERIC

    before = glance_clouds.uploads()
    second = _upload(koji_hub, tmp_path, glance_clouds.names)
    assert second.returncode == 0, second.stdout + second.stderr
    bus.wait_for("fedimg.image.accepted.v1.*", count=2)  # the second run did run
    again = bus.wait_for(f"{PUBLISHED}.*", count=4)
    assert {m.body["image_id"] for m in again} == set(ids.values())
    assert glance_clouds.uploads(since=before) == {c: 0 for c in glance_clouds.names}
