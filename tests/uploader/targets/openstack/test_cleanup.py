"""fedimg-openstack-cleanup against real Glance: the newest N nightlies of each family stay."""

from __future__ import annotations

import pytest

from tests.uploader.conftest import toml_text
from tests.uploader.targets.downloads.conftest import Recorder
from tests.uploader.targets.openstack.conftest import make_config, make_image
from uploader.targets.openstack import publish_openstack
from uploader.targets.openstack.cleanup import main

pytestmark = pytest.mark.slow


def nightly(day: int, arch: str = "x86_64") -> str:
    return f"Fedora-Cloud-Base-Generic-Rawhide-202611{day:02d}.n.0.{arch}"


@pytest.fixture
def published(glance_clouds, qcow2_image):
    """Four x86_64 and two aarch64 nightlies, a candidate, and someone else's nightly."""
    names = [nightly(d) for d in (21, 22, 23, 24)] + [nightly(d, "aarch64") for d in (23, 24)]
    names.append("Fedora-Cloud-Base-Generic-43-1.6.x86_64")
    for name in names:  # one after the other: created_at orders them as their dates do
        outcome = publish_openstack(make_image(qcow2_image, name=name),
                                    config=make_config(glance_clouds.names), clients=None,
                                    emit=Recorder())
        assert outcome.ok, name
    for cloud in glance_clouds.names:
        glance_clouds.connect(cloud).image.create_image(
            nightly(20), disk_format="qcow2", container_format="bare", allow_duplicates=True,
            tags=["nightly"], fedimg_channel="nightly")
    return names


def names_in(glance_clouds, cloud):
    return sorted(i["name"] for i in glance_clouds.servers[cloud].images())


def run(tmp_path, glance_clouds, *args):
    cfg = tmp_path / "fedimg.toml"
    cfg.write_text(toml_text({"uploader": {"targets": ["openstack"]},
                              "openstack": {"clouds": glance_clouds.names,
                                            "nightly_retention": 2}}))
    return main(["--config", str(cfg), *args])


def test_keeps_the_newest_nightlies_per_family_in_every_cloud(glance_clouds, published,
                                                             tmp_path, capsys):
    before = {c: names_in(glance_clouds, c) for c in glance_clouds.names}
    assert run(tmp_path, glance_clouds, "--dry-run") == 0
    out = capsys.readouterr().out
    assert out.count("would delete Glance image") == 4  # two old x86_64 per cloud
    assert {c: names_in(glance_clouds, c) for c in glance_clouds.names} == before

    assert run(tmp_path, glance_clouds) == 0
    out = capsys.readouterr().out
    assert out.count("deleted Glance image") == 4 and "Rawhide/Cloud_Base/x86_64" in out
    for cloud in glance_clouds.names:
        assert names_in(glance_clouds, cloud) == sorted([
            nightly(20),  # not ours: never touched
            nightly(23), nightly(24), nightly(23, "aarch64"), nightly(24, "aarch64"),
            "Fedora-Cloud-Base-Generic-43-1.6.x86_64",  # a candidate: never touched
        ])

    assert run(tmp_path, glance_clouds, "--keep", "0") == 0  # every nightly of ours goes
    for cloud in glance_clouds.names:
        assert names_in(glance_clouds, cloud) == [
            "Fedora-Cloud-Base-Generic-43-1.6.x86_64", nightly(20)]


def test_an_unreachable_cloud_is_reported_and_the_others_cleaned(glance_clouds, published,
                                                                 tmp_path, capsys, monkeypatch):
    glance_clouds.clouds_yaml.write_text(glance_clouds.clouds_yaml.read_text().replace(
        glance_clouds.servers["cloud-b"].url, "http://127.0.0.1:9"))
    assert run(tmp_path, glance_clouds) == 1
    out = capsys.readouterr().out
    assert "FAILED to list images in cloud-b" in out
    assert nightly(21) not in names_in(glance_clouds, "cloud-a")
    assert nightly(21) in names_in(glance_clouds, "cloud-b")
