"""publish_openstack against two real glance-api processes: one image per cloud, read back with
openstacksdk; a redelivery uploads nothing; leftovers of ours go, other people's images stay."""

from __future__ import annotations

import hashlib

import pytest

from shared.errors import CloudError
from tests.uploader.targets.downloads.conftest import Recorder
from tests.uploader.targets.openstack.conftest import COMPOSE, GENERIC, make_config, make_image
from uploader.targets.openstack import glance, publish_openstack
from uploader.targets.openstack.config import settings

pytestmark = pytest.mark.slow

PUBLISHED = "fedimg.image.published.v1.openstack"


def ours(conn, name=GENERIC):
    return list(conn.image.images(name=name, visibility="all"))


def test_generic_qcow2_becomes_one_public_image_in_each_cloud(glance_clouds, qcow2_image):
    emit = Recorder()
    outcome = publish_openstack(make_image(qcow2_image), config=make_config(glance_clouds.names),
                                clients=None, emit=emit)
    assert outcome.ok and outcome.published == ["cloud-a", "cloud-b"]
    bodies = {b["cloud"]: b for b in emit.bodies(PUBLISHED)}
    assert sorted(bodies) == ["cloud-a", "cloud-b"]
    for cloud in glance_clouds.names:
        conn = glance_clouds.connect(cloud)
        (image,) = ours(conn)
        assert bodies[cloud]["image_id"] == image.id
        assert (image.status, image.visibility) == ("active", "public")
        assert (image.disk_format, image.container_format) == ("qcow2", "bare")
        assert (image.os_distro, image.os_version, image.architecture) == (
            "fedora", "rawhide", "x86_64")
        props = image.properties
        assert props["fedimg_compose_id"] == COMPOSE
        assert props["fedimg_source"] == f"compose:{COMPOSE}"
        assert props[glance.SHA256_PROPERTY] == qcow2_image.sha256
        assert props["fedimg_channel"] == "nightly"
        assert set(image.tags) == {"fedora", "nightly", "release-rawhide"}
        data = hashlib.sha256(conn.image.download_image(image).content).hexdigest()
        assert data == qcow2_image.sha256  # Glance holds exactly the verified qcow2
        assert bodies[cloud]["size"] == qcow2_image.size
    topics = [m.topic for m in emit.messages]
    assert f"{PUBLISHED}.cloud-a.nightly.Cloud_Base.Rawhide.x86_64" in topics


def test_a_redelivery_uploads_nothing(glance_clouds, qcow2_image):
    cfg = make_config(glance_clouds.names)
    first = Recorder()
    before = glance_clouds.uploads()
    publish_openstack(make_image(qcow2_image), config=cfg, clients=None, emit=first)
    assert glance_clouds.uploads(since=before) == {"cloud-a": 1, "cloud-b": 1}
    again = Recorder()
    before = glance_clouds.uploads()
    outcome = publish_openstack(make_image(qcow2_image), config=cfg, clients=None, emit=again)
    assert outcome.ok
    assert glance_clouds.uploads(since=before) == {"cloud-a": 0, "cloud-b": 0}
    assert {b["image_id"] for b in again.bodies(PUBLISHED)} == \
        {b["image_id"] for b in first.bodies(PUBLISHED)}
    for cloud in glance_clouds.names:
        assert len(ours(glance_clouds.connect(cloud))) == 1


def test_a_rerun_with_other_settings_fixes_visibility_and_tags_only(glance_clouds, qcow2_image):
    cloud = glance_clouds.names[0]
    first = Recorder()
    publish_openstack(make_image(qcow2_image), config=make_config([cloud]), clients=None,
                      emit=first)
    (body_id,) = [b["image_id"] for b in first.bodies(PUBLISHED)]
    before = glance_clouds.uploads()
    emit = Recorder()
    publish_openstack(make_image(qcow2_image),
                      config=make_config([cloud], visibility="community", tags=["cloud-sig"]),
                      clients=None, emit=emit)
    (image,) = ours(glance_clouds.connect(cloud))
    assert image.visibility == "community"
    assert {"cloud-sig", "fedora", "nightly"} <= set(image.tags)
    assert image.id == body_id
    (body,) = emit.bodies(PUBLISHED)
    assert body["visibility"] == "community"
    assert glance_clouds.uploads(since=before)[cloud] == 0


def test_half_done_images_of_ours_are_deleted_others_are_left_alone(glance_clouds, qcow2_image):
    cloud = glance_clouds.names[0]
    conn = glance_clouds.connect(cloud)
    # what a run killed between creating the record and sending the data leaves behind
    dead = conn.image.create_image(GENERIC, disk_format="qcow2", container_format="bare",
                                   allow_duplicates=True,
                                   **{glance.SHA256_PROPERTY: qcow2_image.sha256})
    # somebody else's image of the same name: not ours, never touched
    foreign = conn.image.create_image(GENERIC, disk_format="qcow2", container_format="bare",
                                      allow_duplicates=True)
    assert conn.image.get_image(dead.id).status == "queued"
    outcome = publish_openstack(make_image(qcow2_image), config=make_config([cloud]),
                                clients=None, emit=Recorder())
    assert outcome.ok
    left = {i.id: i.status for i in ours(conn)}
    assert dead.id not in left and left.pop(foreign.id) == "queued"
    assert list(left.values()) == ["active"]


def test_data_that_is_not_qcow2_is_refused_by_glance_and_leaves_nothing(glance_clouds,
                                                                       raw_image, tmp_path):
    fake = tmp_path / f"{GENERIC}.qcow2"
    fake.write_bytes(raw_image.path.read_bytes()[:8 << 20])  # raw bytes named .qcow2
    emit = Recorder()
    outcome = publish_openstack(make_image(fake), config=make_config(glance_clouds.names),
                                clients=None, emit=emit)
    assert outcome.failed == ["cloud-a", "cloud-b"] and not outcome.published
    failures = emit.bodies("fedimg.image.failed.v1")
    assert sorted(f["destination"] for f in failures) == ["cloud-a", "cloud-b"]
    for failure in failures:
        assert failure["target"] == "openstack"
        assert (failure["error_kind"], failure["retryable"]) == ("cloud", False)
        assert "415" in failure["error"]
    for cloud in glance_clouds.names:
        assert ours(glance_clouds.connect(cloud)) == []


def test_a_cloud_missing_from_clouds_yaml_fails_alone(glance_clouds, qcow2_image):
    emit = Recorder()
    outcome = publish_openstack(make_image(qcow2_image),
                                config=make_config(["cloud-a", "no-such-cloud"]),
                                clients=None, emit=emit)
    assert (outcome.published, outcome.failed) == (["cloud-a"], ["no-such-cloud"])
    (failure,) = emit.bodies("fedimg.image.failed.v1")
    assert failure["destination"] == "no-such-cloud" and failure["retryable"] is False
    assert "clouds.yaml" in failure["error"]


def test_an_unreachable_cloud_is_a_transient_failure(glance_clouds, qcow2_image, tmp_path,
                                                     monkeypatch):
    from standins.glance import clouds_yaml
    from standins.processes import free_port

    path = tmp_path / "down.yaml"
    path.write_text(clouds_yaml({"down": f"http://127.0.0.1:{free_port()}"}))
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(path))
    emit = Recorder()
    outcome = publish_openstack(make_image(qcow2_image), config=make_config(["down"]),
                                clients=None, emit=emit)
    assert outcome.failed == ["down"]
    (failure,) = emit.bodies("fedimg.image.failed.v1")
    assert failure["retryable"] is True and failure["error_kind"] == "cloud"


def test_settings_name_the_key_that_cannot_be_used():
    with pytest.raises(CloudError.__mro__[-2]) as info:  # ConfigError, a FedimgError
        settings(make_config([]))
    assert "openstack.clouds" in str(info.value)
