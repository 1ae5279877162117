"""The three sources against the real koji client and the Koji hub stand-in (files and XML-RPC)."""

from __future__ import annotations

import json
import logging

import koji
import pytest

from shared.errors import BadInput, TransientError, Unwanted
from shared.files import sha256_file
from standins.koji_hub import TASK_STATES
from tests.uploader.conftest import COMPOSE_43, COMPOSE_RAWHIDE, compose_sample, serve_compose
from uploader.intake import build_images, compose_images, task_images
from uploader.intake.compose import compose_dirs

PUNGI_SAMPLE = ("pungi__tests-test_koji_wrapper__getTaskChildren_getTaskResult_12387273_"
                "Fedora-Cloud-Base-23.json")
NIGHTLY = "Fedora-Cloud-Base-Rawhide-20261125.n.0"


def _file_requests(hub):
    return [p for m, p in hub.requests if m == "GET"]


# --- scratch image tasks ---------------------------------------------------------------------

def test_task_images_come_from_the_hub_with_pathinfo_urls_and_sizes(koji_hub, config, clients):
    tid = koji_hub.add_image_task(arches=["x86_64", "aarch64"])
    sources = task_images(tid, config=config, session=clients.koji)

    children = {koji_hub.tasks[c]["arch"]: c for c in koji_hub.tasks[tid]["children"]}
    assert [s.identity.arch for s in sources] == ["x86_64", "aarch64"]  # by child id
    for s in sources:
        child = children[s.identity.arch]
        assert s.filename == f"{NIGHTLY}.{s.identity.arch}.raw.xz"
        assert s.url == f"{koji_hub.topurl}/work/tasks/{child % 10000}/{child}/{s.filename}"
        assert s.size == koji_hub.file_path(s.url).stat().st_size
        assert s.sha256 is None  # Koji records no checksum for task outputs
        assert s.koji_task_id == tid and s.koji_build_id is None and s.compose_id is None
        assert (s.identity.release, s.identity.subvariant, s.identity.channel) == (
            "Rawhide", "Cloud_Base", "nightly")
        assert s.image_type == "raw-xz"
    assert _file_requests(koji_hub) == []  # listing images fetches nothing


def test_task_image_types_and_subvariants_come_from_config(koji_hub, make_config):
    files = {"x86_64": {f"{NIGHTLY}.x86_64.raw.xz": None, f"{NIGHTLY}.x86_64.qcow2": None,
                        "Fedora-Container-Base-Rawhide-20261125.n.0.x86_64.raw.xz": None}}
    tid = koji_hub.add_image_task(files=files)
    cfg = make_config()
    session = koji_hub.client()
    assert [s.filename for s in task_images(tid, config=cfg, session=session)] == [
        f"{NIGHTLY}.x86_64.raw.xz"]
    cfg = make_config(uploader={"image_types": ["raw-xz", "qcow2"],
                                "subvariants": ["Cloud_Base", "Container_Base"]})
    assert sorted(s.filename for s in task_images(tid, config=cfg, session=session)) == sorted(
        files["x86_64"])


def test_task_from_the_pungi_sample_shape_is_wanted_with_an_inferred_channel(
        koji_hub, config, clients, samples_dir, caplog):
    """The real F23 scratch task: its bare-date name says no channel, so the rule gives one."""
    real = json.loads((samples_dir / PUNGI_SAMPLE).read_text())["data"]["getTaskResult"]
    x86 = real["12387277"]
    files = {"x86_64": {f: None for f in x86["files"]}}
    tid = koji_hub.add_image_task(name=x86["name"], version=x86["version"],
                                  release=x86["release"], files=files, extra_outputs=False)
    with caplog.at_level(logging.INFO):
        sources = task_images(tid, config=config, session=clients.koji)
    assert [s.filename for s in sources] == ["Fedora-Cloud-Base-23-20160103.x86_64.raw.xz"]
    ident = sources[0].identity
    assert (ident.release, ident.subvariant, ident.arch, ident.channel) == (
        "23", "Cloud_Base", "x86_64", "nightly")
    assert ident.channel_inferred == "scratch Koji task"
    assert sources[0].body()["channel_inferred"] == "scratch Koji task"
    assert "cannot tell its channel" not in caplog.text
    assert "Fedora-Cloud-Base-23-20160103.x86_64.qcow2: image type qcow2 not in" in caplog.text


def test_a_bare_date_build_is_a_candidate_with_an_inferred_channel(koji_hub, config, clients):
    """A manual non-scratch build whose release is a plain date is processed as a candidate."""
    bid = koji_hub.add_image_build(name="Fedora-Cloud-Base", version="23", release="20151030")
    sources = build_images(bid, config=config, session=clients.koji)
    assert sources, "the build's Cloud Base image must be wanted"
    for s in sources:
        assert (s.identity.release, s.identity.channel, s.identity.channel_inferred) == (
            "23", "candidate", "Koji build")


@pytest.mark.parametrize("case", ["open", "failed", "owner", "method", "child", "not-scratch"])
def test_tasks_that_are_not_for_us_are_unwanted_and_fetch_nothing(koji_hub, config, clients,
                                                                  case):
    if case == "open":
        tid = koji_hub.add_image_task(state=TASK_STATES["OPEN"])
        expect = "state OPEN, not CLOSED"
    elif case == "failed":
        tid = koji_hub.add_image_task(state=TASK_STATES["FAILED"])
        expect = "state FAILED"
    elif case == "owner":
        tid = koji_hub.add_image_task(owner="nobody-special")
        expect = "owner 'nobody-special' not in koji.owners"
    elif case == "method":
        tid = koji_hub.add_task("build", ["git+https://src/rpms/x.git#abc", "rawhide",
                                          {"scratch": True}], state=TASK_STATES["CLOSED"])
        expect = "method 'build' does not build images"
    elif case == "child":
        parent = koji_hub.add_image_task()
        tid = koji_hub.tasks[parent]["children"][0]
        expect = f"a child task of {parent}"
    else:
        tid = koji_hub.add_image_task(scratch=False)
        expect = "not a scratch build"
    with pytest.raises(Unwanted, match=expect):
        task_images(tid, config=config, session=clients.koji)
    assert koji_hub.calls_to("getTaskChildren") == []
    assert _file_requests(koji_hub) == []


def test_children_not_closed_and_unsafe_names_are_skipped(koji_hub, config, clients, caplog):
    files = {"x86_64": {"../../../etc/Fedora-Cloud-Base-Rawhide-20261125.n.0.x86_64.raw.xz": b"x",
                        f"sub/{NIGHTLY}.x86_64.raw.xz": b"y"},
             "aarch64": {f"{NIGHTLY}.aarch64.raw.xz": None}}
    tid = koji_hub.add_image_task(arches=["x86_64", "aarch64", "ppc64le"], files=files)
    ppc = [c for c in koji_hub.tasks[tid]["children"] if koji_hub.tasks[c]["arch"] == "ppc64le"]
    koji_hub.set_task_state(ppc[0], TASK_STATES["FAILED"])
    with caplog.at_level(logging.INFO):
        sources = task_images(tid, config=config, session=clients.koji)
    assert [s.filename for s in sources] == [f"{NIGHTLY}.aarch64.raw.xz"]
    assert "ignoring unsafe file name '../../../etc/" in caplog.text
    assert f"ignoring unsafe file name 'sub/{NIGHTLY}" in caplog.text
    assert f"child {ppc[0]} (createImage): ignoring: state FAILED" in caplog.text


def test_unknown_task_is_bad_input_and_hub_outage_is_transient(koji_hub, config, clients):
    with pytest.raises(BadInput, match="no such task"):
        task_images(99, config=config, session=clients.koji)
    tid = koji_hub.add_image_task()
    koji_hub.down = True
    with pytest.raises(TransientError, match="Koji hub"):
        task_images(tid, config=config, session=clients.koji)
    koji_hub.down = False
    koji_hub.stop()
    with pytest.raises(TransientError, match="unreachable"):
        task_images(tid, config=config, session=clients.koji)
    koji_hub.start()
    assert len(task_images(tid, config=config, session=clients.koji)) == 1


def test_koji_retries_are_bounded_by_config(koji_hub, make_config):
    from uploader.pipeline import make_clients

    cfg = make_config(koji={"retries": 2, "retry_interval": 0})
    session = make_clients(cfg, []).koji
    koji_hub.down = True
    with pytest.raises(TransientError):
        task_images(5, config=cfg, session=session)
    assert len([r for r in koji_hub.requests if r[0] == "POST"]) == 3  # 1 + 2 retries


# --- image builds ----------------------------------------------------------------------------

def test_build_images_carry_archive_sha256_and_packages_urls(koji_hub, config, clients):
    bid = koji_hub.add_image_build(arches=["x86_64", "aarch64"])
    build = koji_hub.builds[bid]
    for ident in (bid, build["nvr"]):
        sources = build_images(ident, config=config, session=clients.koji)
        assert [s.identity.arch for s in sources] == ["aarch64", "x86_64"]
        for s in sources:
            assert s.url == (f"{koji_hub.topurl}/packages/Fedora-Cloud-Base/Rawhide/"
                             f"20261125.n.0/images/{s.filename}")
            local = koji_hub.file_path(s.url)
            assert (s.size, s.sha256) == (local.stat().st_size, sha256_file(local))
            assert s.koji_build_id == bid and s.koji_task_id == build["task_id"]
            assert s.identity.channel == "nightly"
    assert _file_requests(koji_hub) == []


@pytest.mark.parametrize("case", ["failed", "owner", "rpm"])
def test_builds_that_are_not_for_us_are_unwanted(koji_hub, config, clients, case):
    if case == "failed":
        bid = koji_hub.add_image_build(state=koji.BUILD_STATES["FAILED"])
        expect = "state FAILED, not COMPLETE"
    elif case == "owner":
        bid = koji_hub.add_image_build(owner="nobody-special")
        expect = "owner 'nobody-special'"
    else:
        bid = koji_hub.add_image_build(name="libfreehand", files={}, task=False)
        expect = "no image archives"
    with pytest.raises(Unwanted, match=expect):
        build_images(bid, config=config, session=clients.koji)
    assert _file_requests(koji_hub) == []


def test_unknown_build_is_bad_input(koji_hub, config, clients):
    with pytest.raises(BadInput, match="no such build"):
        build_images("Fedora-Cloud-Base-Rawhide-nope", config=config, session=clients.koji)


# --- composes --------------------------------------------------------------------------------

def test_compose_images_from_the_production_sample(koji_hub, config, clients, samples_dir):
    images = compose_sample(samples_dir, COMPOSE_43)
    cdir = serve_compose(koji_hub, images, "43/Fedora-43-20251023.0")
    sources = compose_images("Fedora-43-20251023.0", config=config, clients=clients)
    assert [s.filename for s in sources] == [
        "Fedora-Cloud-Base-AmazonEC2-43-1.6.aarch64.raw.xz",
        "Fedora-Cloud-Base-AmazonEC2-43-1.6.x86_64.raw.xz",
    ]
    by_path = {e["path"]: e for arch in images["payload"]["images"]["Cloud"].values()
               for e in arch}
    for s in sources:
        entry = by_path[f"Cloud/{s.identity.arch}/images/{s.filename}"]
        assert s.url == f"{cdir}/compose/{entry['path']}"
        assert (s.size, s.sha256) == (entry["size"], entry["checksums"]["sha256"])
        assert (s.identity.release, s.identity.channel, s.compose_id) == (
            "43", "candidate", "Fedora-43-20251023.0")


def test_compose_layouts_are_tried_in_order_below_base_url(koji_hub, make_config, clients,
                                                           samples_dir):
    images = compose_sample(samples_dir, COMPOSE_RAWHIDE)
    cfg = make_config(uploader={"image_types": ["raw-xz", "qcow2"]})
    cdir = serve_compose(koji_hub, images, "rawhide/Fedora-Rawhide-20240829.n.1")
    sources = compose_images("Fedora-Rawhide-20240829.n.1", config=cfg, clients=clients)
    assert len(sources) == 6  # raw-xz x2 + Generic qcow2 x4 (UKI is another subvariant)
    assert all(s.url.startswith(cdir + "/compose/Cloud/") for s in sources)
    assert {s.identity.channel for s in sources} == {"nightly"}
    # branched nightlies are found by the second default layout
    assert compose_dirs("Fedora-41-20240911.n.0", cfg) == [
        f"{koji_hub.topurl}/compose/41/Fedora-41-20240911.n.0",
        f"{koji_hub.topurl}/compose/branched/Fedora-41-20240911.n.0",
        f"{koji_hub.topurl}/compose/Fedora-41-20240911.n.0",
    ]


@pytest.mark.parametrize("compose_id", ["../etc", "a/b", "Fedora-43-20251023.0/../x", "", None,
                                        ".hidden", "x" * 300])
def test_compose_ids_that_are_not_one_path_component_are_refused(config, clients, koji_hub,
                                                                 compose_id):
    with pytest.raises(BadInput, match="invalid compose id"):
        compose_images(compose_id, config=config, clients=clients)
    assert koji_hub.requests == []


def test_compose_not_found_mismatched_or_hostile_images_json(koji_hub, config, clients,
                                                             samples_dir, caplog):
    with pytest.raises(BadInput, match="no images.json below"):
        compose_images("Fedora-43-20251023.0", config=config, clients=clients)
    assert len(koji_hub.requests) == 3  # one per layout

    other = compose_sample(samples_dir, COMPOSE_43)
    serve_compose(koji_hub, other, "43/Fedora-43-20251024.0")
    with pytest.raises(BadInput, match="describes compose 'Fedora-43-20251023.0'"):
        compose_images("Fedora-43-20251024.0", config=config, clients=clients)

    hostile = compose_sample(samples_dir, COMPOSE_43)
    hostile["payload"]["compose"]["id"] = "Fedora-43-20251025.0"
    entry = hostile["payload"]["images"]["Cloud"]["x86_64"][0]
    assert entry["type"] == "raw-xz"
    entry["path"] = "../../../../etc/Fedora-Cloud-Base-AmazonEC2-43-1.6.x86_64.raw.xz"
    serve_compose(koji_hub, hostile, "43/Fedora-43-20251025.0")
    with caplog.at_level(logging.WARNING):
        sources = compose_images("Fedora-43-20251025.0", config=config, clients=clients)
    assert [s.identity.arch for s in sources] == ["aarch64"]
    assert "ignoring image with unsafe path '../../../../etc/" in caplog.text

    koji_hub.add_file("compose/43/Fedora-43-20251026.0/compose/metadata/images.json",
                      b"{not json")
    with pytest.raises(BadInput, match="unusable images.json"):
        compose_images("Fedora-43-20251026.0", config=config, clients=clients)


def test_arches_a_target_cannot_take_are_left_out_for_it_before_fetching(koji_hub, make_config,
                                                                         caplog):
    from uploader.intake.route import Request, find_images
    from uploader.pipeline import make_clients

    files = {a: {f"{NIGHTLY}.{a}.raw.xz": None} for a in ("i386", "x86_64", "s390x")}
    tid = koji_hub.add_image_task(arches=["i386", "x86_64", "s390x"], files=files)
    both = make_config(uploader={"targets": ["aws", "downloads"]})
    caplog.set_level(logging.INFO)
    got = find_images(Request("task", tid), config=both, clients=make_clients(both, []))
    assert [(s.identity.arch, s.targets) for s in got] == [
        ("i386", ("downloads",)), ("x86_64", ("aws", "downloads")), ("s390x", ("downloads",))]
    assert caplog.text.count("aws left out: it does not take") == 2
    aws_only = make_config(uploader={"targets": ["aws"]})
    got = find_images(Request("task", tid), config=aws_only, clients=make_clients(aws_only, []))
    assert [s.identity.arch for s in got] == ["x86_64"]
    assert "s390x images; no target left, image dropped" in caplog.text
    none = make_config()  # no target: fetch and verify only, every arch kept
    got = find_images(Request("task", tid), config=none, clients=make_clients(none, []))
    assert [s.targets for s in got] == [(), (), ()]
    assert _file_requests(koji_hub) == []
