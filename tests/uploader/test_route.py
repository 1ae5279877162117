"""Bus message -> the one identifier we trust, on the real sample bodies and broken ones."""

from __future__ import annotations

import importlib.metadata
import json
import re

import pytest

from shared.config import parse_config
from shared.errors import BadInput, ConfigError, Unwanted
from shared.messages import UploadFailedV1
from uploader.intake.route import Request, request_from_message
from uploader.targets import TARGETS, check_config

PREFIX = "org.fedoraproject.prod."
TASK = PREFIX + "buildsys.task.state.change"
BUILD = PREFIX + "buildsys.build.state.change"
COMPOSE = PREFIX + "pungi.compose.status.change"


def _data(samples_dir, name):
    return json.loads((samples_dir / name).read_text())


def test_real_rpm_task_and_build_bodies_are_unwanted(samples_dir):
    rpm_task = _data(samples_dir, "koji-fedoramessaging-messages__tests-test_task__"
                                  "buildsys.task.state.change.json")["data"]
    bodies = _data(samples_dir, "koji-fedoramessaging__tests-test_task__expected_task_state_"
                                "change_bodies.json")["data"]
    with pytest.raises(Unwanted, match="method .build. does not build images"):
        request_from_message(TASK, rpm_task)
    with pytest.raises(Unwanted, match="method 'build' does not build images"):
        request_from_message(TASK, bodies["close"])
    for state in ("open", "fail", "cancel"):
        with pytest.raises(Unwanted, match="not CLOSED"):
            request_from_message(TASK, bodies[state])
    rpm_build = _data(samples_dir, "koji-fedoramessaging-messages__tests-test_build__"
                                   "buildsys.build.state.change__rpm.json")["data"]
    # a COMPLETE RPM build passes the message check; the hub later finds no image archives,
    # but with koji.owners the body's owner already ends it without a hub call
    assert request_from_message(BUILD, rpm_build) == Request("build", 1478312)
    with pytest.raises(Unwanted, match="owner 'spot' not in koji.owners"):
        request_from_message(BUILD, rpm_build, owners=["releng"])
    with pytest.raises(Unwanted, match="owner 'koschei'"):
        request_from_message(TASK, dict(rpm_task, method="image"), owners=["releng"])


def test_image_task_build_and_compose_bodies_give_their_ids(samples_dir):
    bodies = _data(samples_dir, "koji-fedoramessaging__tests-test_task__expected_task_state_"
                                "change_bodies.json")["data"]
    image_close = dict(bodies["close"], method="image", id=140000001)
    assert request_from_message(TASK, image_close) == Request("task", 140000001)
    assert request_from_message("buildsys.task.state.change", image_close).ident == 140000001

    live = _data(samples_dir, "koji-fedoramessaging-messages__tests-test_build__"
                              "buildsys.build.state.change__livemedia.json")["data"]
    with pytest.raises(Unwanted, match="not COMPLETE"):  # the sample moves 1 -> 2 (DELETED)
        request_from_message(BUILD, live)
    assert request_from_message(BUILD, dict(live, new=1)) == Request("build", 2339329)

    for name, ident in [
        ("pungi.compose.status.change-FINISHED-F28-production-from-fedimg-tests.json",
         "Fedora-28-20180425.0"),
        ("pungi.compose.status.change-FINISHED_INCOMPLETE-Rawhide-from-fedimg-tests.json",
         "Fedora-Rawhide-20180426.n.0"),
    ]:
        row = _data(samples_dir, name)
        assert request_from_message(row["topic"], row["body"]["msg"]) == Request("compose",
                                                                                 ident)
    for name in ("pungi.compose.status.change-STARTED-F28-nightly-from-fedimg-tests.json",
                 "pungi.compose.status.change-TERMINATED-from-fedmsg_meta-compose2.json"):
        row = _data(samples_dir, name)
        body = row["body"]["msg"] if "body" in row else row["msg"]
        with pytest.raises(Unwanted, match="not FINISHED"):
            request_from_message(row["topic"], body)


KOJI_ID = "must be a Koji id"


@pytest.mark.parametrize(("topic", "body", "match"), [
    (TASK, {"new": "CLOSED", "method": "image"}, f"'id' {KOJI_ID}.*got None"),
    (TASK, {"id": "123", "new": "CLOSED", "method": "image"}, f"'id' {KOJI_ID}"),
    (TASK, {"id": True, "new": "CLOSED", "method": "image"}, f"'id' {KOJI_ID}"),
    (TASK, {"id": -4, "new": "CLOSED", "method": "image"}, f"'id' {KOJI_ID}"),
    (TASK, {"id": 2**31, "new": "CLOSED", "method": "image"}, f"'id' {KOJI_ID}.*2147483648"),
    (TASK, {"id": 2**63, "new": "CLOSED", "method": "image"}, f"'id' {KOJI_ID}"),
    (TASK, {"id": 2**70, "new": "CLOSED", "method": "image"}, f"'id' {KOJI_ID}"),
    (TASK, {"id": 1.5, "new": "CLOSED", "method": "image"}, f"'id' {KOJI_ID}"),
    (TASK, {"id": 5, "new": "CLOSED"}, "'method' must be a string, got None"),
    (TASK, {"id": 5, "new": "CLOSED", "method": ["image"]}, "'method' must be a string"),
    (TASK, {"id": 5, "new": "CLOSED", "method": {"image": 1}}, "'method' must be a string"),
    (TASK, {"id": 5, "new": ["CLOSED"], "method": "image"}, "'new' must be a string"),
    (TASK, {"id": 5, "new": "CLOSED", "method": "image", "owner": ["releng"]},
     "'owner' must be a string"),
    (BUILD, {"new": 1}, f"'build_id' {KOJI_ID}"),
    (BUILD, {"build_id": 2**63, "new": 1}, f"'build_id' {KOJI_ID}"),
    (BUILD, {"build_id": 2**70, "new": 1}, f"'build_id' {KOJI_ID}"),
    (BUILD, {"build_id": 5, "new": [1]}, "'new' must be a build state number"),
    (BUILD, {"build_id": 5, "new": True}, "'new' must be a build state number"),
    (BUILD, {"build_id": 5, "new": 1, "owner": {"name": "releng"}}, "'owner' must be a string"),
    (COMPOSE, {"status": "FINISHED"}, "needs 'compose_id' and 'status'"),
    (COMPOSE, {"compose_id": "../../x", "status": "FINISHED"}, "invalid compose id"),
    (COMPOSE, {"compose_id": "Fedora-41-20241024.0", "status": ["FINISHED"]},
     "'status' must be a string"),
    (COMPOSE, {"compose_id": "Fedora-41-20241024.0", "status": {"FINISHED": 1}},
     "'status' must be a string"),
    (TASK, ["not", "an", "object"], "not a JSON object"),
    (TASK, "text", "not a JSON object"),
])
def test_malformed_bodies_are_bad_input(topic, body, match):
    with pytest.raises(BadInput, match=match) as caught:
        request_from_message(topic, body)
    assert "\n" not in str(caught.value)


def test_a_huge_field_is_named_in_a_short_line():
    with pytest.raises(BadInput) as caught:
        request_from_message(TASK, {"id": "9" * 10_000, "new": "CLOSED", "method": "image"})
    assert "'id' must be a Koji id" in str(caught.value) and len(str(caught.value)) < 300


def test_other_topics_are_unwanted_including_look_alikes():
    for topic in ("org.fedoraproject.prod.fedimg.image.accepted.v1.nightly.x.y.z",
                  "org.fedoraproject.prod.xbuildsys.task.state.change",
                  "buildsys.task.state.change.extra"):
        with pytest.raises(Unwanted, match="not one the uploader handles"):
            request_from_message(topic, {"id": 1, "new": "CLOSED", "method": "image"})


def test_check_config_names_unknown_targets_and_image_types_no_target_takes():
    cfg = parse_config({"uploader": {"targets": ["aws", "nosuchcloud"]}})
    with pytest.raises(ConfigError, match=r"uploader.targets.*unknown target 'nosuchcloud'"):
        check_config(cfg, cfg.uploader.targets)
    cfg = parse_config({"uploader": {"targets": ["aws"], "image_types": ["raw-xz", "vhdx"]}})
    with pytest.raises(ConfigError, match=r"uploader.image_types\[1\].*no target takes 'vhdx'"):
        check_config(cfg, cfg.uploader.targets)
    check_config(parse_config({}), ["aws", "downloads"])  # the defaults are consistent


def test_each_registered_target_declares_a_loadable_handler_and_its_topics():
    entry_points = {ep.name for ep in importlib.metadata.entry_points(group="fedora.messages")}
    for name, target in TARGETS.items():
        assert target.name == name
        assert callable(target.handler())
        assert target.needs in ("raw", "file", "stream")
        # a stream target names its sink opener, and only a stream target does
        assert (target.stream is not None) == (target.needs == "stream")
        if target.stream is not None:
            assert callable(target.stream_opener())
        assert set(target.messages) <= entry_points, (name, set(target.messages) - entry_points)
        # the failure and accepted schemas name targets by this pattern, not by a list
        assert re.fullmatch(UploadFailedV1.body_schema["properties"]["target"]["pattern"], name)


def test_each_target_takes_its_own_image_of_a_compose(koji_hub, make_config, samples_dir):
    from tests.uploader.conftest import COMPOSE_RAWHIDE, compose_sample, serve_compose
    from uploader.intake.route import find_images
    from uploader.pipeline import make_clients

    serve_compose(koji_hub, compose_sample(samples_dir, COMPOSE_RAWHIDE),
                  "rawhide/Fedora-Rawhide-20240829.n.1")
    cfg = make_config(uploader={"targets": ["aws", "downloads", "openstack"],
                                "image_types": ["raw-xz", "qcow2"]},
                      openstack={"clouds": ["cloud-a"]})
    sources = find_images(Request("compose", "Fedora-Rawhide-20240829.n.1"), config=cfg,
                          clients=make_clients(cfg, []))
    taken = {s.filename: s.targets for s in sources}
    rel = "Rawhide-20240829.n.1"
    # EC2 gets the AmazonEC2 image only, Glance the Generic qcow2 only, of every arch it runs
    assert taken[f"Fedora-Cloud-Base-AmazonEC2-{rel}.x86_64.raw.xz"] == ("aws", "downloads")
    assert taken[f"Fedora-Cloud-Base-Generic-{rel}.x86_64.qcow2"] == ("downloads", "openstack")
    assert taken[f"Fedora-Cloud-Base-Generic-{rel}.s390x.qcow2"] == ("downloads", "openstack")
    assert all("aws" not in t for f, t in taken.items() if "Generic" in f)


def test_one_image_shipped_twice_goes_to_each_target_once(koji_hub, make_config, caplog):
    from uploader.intake.route import find_images
    from uploader.pipeline import make_clients

    name = "Fedora-Cloud-Base-Rawhide-20261125.n.0.x86_64"  # a Koji build: no cloud word
    tid = koji_hub.add_image_task(release="20261125.n.0", arches=["x86_64"], files={
        "x86_64": {f"{name}.raw.xz": b"x" * 10, f"{name}.qcow2": b"y" * 10}})
    cfg = make_config(uploader={"targets": ["aws", "downloads", "openstack"],
                                "image_types": ["raw-xz", "qcow2"]},
                      openstack={"clouds": ["cloud-a"]})
    with caplog.at_level("INFO"):
        sources = find_images(Request("task", tid), config=cfg, clients=make_clients(cfg, []))
    # the same disk once per target: the raw.xz for EC2 and the downloads, the qcow2 for Glance
    assert {s.filename: s.targets for s in sources} == {
        f"{name}.raw.xz": ("aws", "downloads"), f"{name}.qcow2": ("openstack",)}
    assert f"{name}.qcow2: aws left out: it takes {name}.raw.xz of the same image" in caplog.text


@pytest.mark.parametrize("image_type, arch, cloud, why", [
    ("qcow2", "x86_64", "Generic", None),
    ("qcow2", "x86_64", None, None),  # our own Koji builds' names carry no cloud word
    ("raw-xz", "x86_64", "Generic", "does not take raw-xz images"),
    ("qcow2", "x86_64", "UEFI-UKI", "does not take UEFI-UKI images"),
])
def test_openstack_takes_the_generic_qcow2(image_type, arch, cloud, why):
    assert TARGETS["openstack"].takes.refusal(image_type, arch, cloud) == why
    assert TARGETS["aws"].takes.refusal("qcow2", "x86_64", "Generic") == \
        "does not take Generic images"
    assert TARGETS["aws"].takes.refusal("raw-xz", "x86_64", None) is None


def test_a_target_section_that_cannot_be_used_stops_the_start():
    cfg = parse_config({"uploader": {"targets": ["openstack"]}, "openstack": {"clouds": []}},
                       "fedimg.toml")
    with pytest.raises(ConfigError, match=r"fedimg.toml: openstack.clouds: name at least one"):
        check_config(cfg, cfg.uploader.targets)
    cfg = parse_config({"uploader": {"targets": ["openstack"]},
                        "openstack": {"clouds": ["a"], "visiblity": "public"}}, "fedimg.toml")
    with pytest.raises(ConfigError, match=r"openstack.visiblity: unknown key"):
        check_config(cfg, cfg.uploader.targets)


@pytest.mark.parametrize("name, table, key", [
    ("azure", {"subscription_id": "s", "resource_group": "r", "gallery": "g"},
     "azure.storage_account"),
    ("gcp", {"project": "p"}, "gcp.bucket"),
])
def test_a_cloud_section_missing_a_key_stops_the_start(name, table, key):
    cfg = parse_config({"uploader": {"targets": [name]}, name: table}, "fedimg.toml")
    with pytest.raises(ConfigError, match=rf"fedimg.toml: {key}: missing \(required\)"):
        check_config(cfg, cfg.uploader.targets)


@pytest.mark.parametrize("compose_id, layout", [
    ("Fedora-40-20240414.0", "40"),  # Fedora-Cloud-Base-GCE.x86_64-40-1.14.tar.gz
    ("Fedora-41-20241024.0", "41"),  # Fedora-Cloud-Base-GCE-41-1.4.x86_64.tar.gz
])
def test_real_f40_f41_gce_archives_typed_docker_go_to_gcp_only(koji_hub, make_config,
                                                               compose_id, layout):
    """Fedora 40 and 41 list the GCE archive with productmd type docker, like their container
    archives: the GCE archives go to the gcp target only (as tar-gz), the container archives to
    the containers target only."""
    import pathlib

    from tests.uploader.conftest import serve_compose
    from uploader.intake.route import find_images
    from uploader.pipeline import make_clients

    real = pathlib.Path(__file__).parents[1] / "data" / "real" / "composes"
    images = json.loads((real / f"{compose_id}.json").read_text())["images_json"]
    listed = {e["path"].rsplit("/", 1)[1]: (e["type"], e["subvariant"])
              for v in images["payload"]["images"].values() for es in v.values() for e in es}
    gce = sorted(n for n in listed if "-GCE" in n)
    containers = sorted(n for n, t in listed.items() if t == ("docker", "Container_Base"))
    assert len(gce) == 2 and {listed[n] for n in gce} == {("docker", "Cloud_Base")}  # real
    assert len(containers) == 4  # x86_64, aarch64, ppc64le, s390x
    serve_compose(koji_hub, images, f"{layout}/{compose_id}")
    cfg = make_config(uploader={"targets": ["gcp", "containers"],
                                "subvariants": ["Cloud_Base", "Container_Base"],
                                "image_types": ["tar-gz", "docker"]},
                      gcp={"project": "fedimg-test", "bucket": "fedimg-test-staging"})
    sources = find_images(Request("compose", compose_id), config=cfg,
                          clients=make_clients(cfg, []))
    taken = {s.filename: (s.image_type, s.targets) for s in sources}
    assert taken == {**{n: ("tar-gz", ("gcp",)) for n in gce},
                     **{n: ("docker", ("containers",)) for n in containers}}

    # without tar-gz wanted, the GCE archives are not wanted at all: never sent to containers
    cfg = make_config(uploader={"targets": ["containers"], "image_types": ["docker"],
                                "subvariants": ["Cloud_Base", "Container_Base"]})
    sources = find_images(Request("compose", compose_id), config=cfg,
                          clients=make_clients(cfg, []))
    assert sorted(s.filename for s in sources) == containers


@pytest.mark.parametrize("declared, name, want", [
    ("docker", "Fedora-Cloud-Base-GCE-41-1.4.aarch64.tar.gz", "tar-gz"),
    ("docker", "Fedora-Cloud-Base-GCE.x86_64-40-1.14.tar.gz", "tar-gz"),
    ("tar-gz", "Fedora-Cloud-Base-GCE-42-1.1.x86_64.tar.gz", "tar-gz"),
    ("docker", "Fedora-Container-Base-Generic-41-1.4.x86_64.oci.tar.xz", "docker"),
    ("docker", "Fedora-Container-Base-41-1.4.x86_64.tar.gz", "docker"),  # no GCE word
    ("docker", "Fedora-Cloud-Base-GCE-41-1.4.x86_64.tar.xz", "docker"),  # not a GCE archive
    ("container", "Fedora-Cloud-Base-GCE-43-1.6.x86_64.tar.gz", "container"),
])
def test_only_a_docker_typed_gce_archive_is_read_as_tar_gz(declared, name, want):
    from uploader.intake.wanted import declared_type

    assert declared_type(declared, name) == want
