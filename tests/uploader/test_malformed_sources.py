"""Answers of the wrong shape from the Koji hub or images.json: each is BadInput naming the
field (a Drop for the consumer), never a TypeError/KeyError/OverflowError (a Nack), and none
of them fetches a file."""

from __future__ import annotations

import logging

import pytest

from shared.errors import BadInput
from tests.uploader.conftest import COMPOSE_43, compose_sample, serve_compose
from uploader.intake import build_images, compose_images, task_images

NIGHTLY = "Fedora-Cloud-Base-Rawhide-20261125.n.0"


def _gets(hub):
    return [p for m, p in hub.requests if m == "GET"]


def _task(hub):
    tid = hub.add_image_task()
    return tid, hub.tasks[tid]["children"][0]


def _set_result(hub, cid, **fields):
    hub.set_task_result(cid, dict(hub.task_result(cid), **fields))


TASK_CASES = {
    "NUL in a file name": (lambda h, t, c: _set_result(h, c, files=[f"{NIGHTLY}\x00.raw.xz"]),
                           "unreadable answer to getTaskResult"),
    "method is a list": (lambda h, t, c: h.tasks[t].update(method=["image"]),
                         "the hub's 'method' is not text"),
    "state is text": (lambda h, t, c: h.tasks[t].update(state="CLOSED"),
                      "the hub's 'state' is not a number"),
    "owner is a list": (lambda h, t, c: h.tasks[t].update(owner=["releng"]),
                        "task owner must be a Koji id"),
    "owner id past 32 bits": (lambda h, t, c: h.tasks[t].update(owner=2**40),
                              "task owner must be a Koji id"),
    "child id is text": (lambda h, t, c: h.tasks[c].update(id="x"),
                         "a child task's id must be a Koji id"),
    "arch is a list": (lambda h, t, c: _set_result(h, c, arch=["x86_64"]),
                       "the hub's 'arch' is not text"),
    "version is a record": (lambda h, t, c: _set_result(h, c, version={"v": 1}),
                            "the hub's 'version' is not text"),
    "release is a huge number": (lambda h, t, c: _set_result(h, c, release=2**62),
                                 "the hub's 'release' is not text"),
}


@pytest.mark.parametrize("case", TASK_CASES)
def test_task_answers_of_the_wrong_shape_are_bad_input(koji_hub, config, clients, case):
    mutate, expect = TASK_CASES[case]
    tid, cid = _task(koji_hub)
    mutate(koji_hub, tid, cid)
    with pytest.raises(BadInput, match=expect) as caught:
        task_images(tid, config=config, session=clients.koji)
    assert "\n" not in str(caught.value)
    assert _gets(koji_hub) == []


@pytest.mark.parametrize("task_id", [0, -1, 2**31, 2**63, 2**70, True, "140000001"])
def test_task_ids_no_hub_can_hold_are_refused_before_asking(koji_hub, config, clients, task_id):
    with pytest.raises(BadInput, match="Koji task id must be a Koji id"):
        task_images(task_id, config=config, session=clients.koji)
    assert koji_hub.calls == []


def test_a_result_naming_a_file_outside_its_task_directory_is_not_fetched(
        koji_hub, config, clients, caplog):
    tid, cid = _task(koji_hub)
    name = f"{NIGHTLY}.x86_64.raw.xz"
    koji_hub.remove_file(koji_hub.task_url(cid, name))  # listed in the result, not on disk
    with caplog.at_level(logging.WARNING):
        assert task_images(tid, config=config, session=clients.koji) == []
    assert f"ignoring {name}: not in the task's output directory" in caplog.text
    assert _gets(koji_hub) == []


def _archive(hub, bid):
    return next(a for a in hub.archives if a["build_id"] == bid)


BUILD_CASES = {
    "NUL in an archive name": (lambda h, b: _archive(h, b).update(filename="x\x00.raw.xz"),
                               "unreadable answer to listArchives"),
    "size is text": (lambda h, b: _archive(h, b).update(size="big"),
                     "recorded size is not a number of bytes"),
    "size is negative": (lambda h, b: _archive(h, b).update(size=-5),
                         "recorded size is not a number of bytes"),
    "checksum is a list": (lambda h, b: _archive(h, b).update(checksum=["abc"]),
                           "recorded sha256 is not 64 hex digits"),
    "type_name is a list": (lambda h, b: _archive(h, b).update(type_name=["raw-xz"]),
                            "the hub's 'type_name' is not text"),
    "build id is text": (lambda h, b: h.builds[b].update(id="x"),
                         "the hub's build id must be a Koji id"),
    "state is a list": (lambda h, b: h.builds[b].update(state=[1]),
                        "the hub's 'state' is not a number"),
    "owner is a list": (lambda h, b: h.builds[b].update(owner_name=["releng"]),
                        "the hub's 'owner_name' is not text"),
    "name climbs out of packages/": (lambda h, b: h.builds[b].update(name="../../x"),
                                     "build name '../../x' cannot be part of a file path"),
    "volume climbs out": (lambda h, b: h.builds[b].update(volume_name="../x"),
                          "build volume_name '../x' cannot be part of a file path"),
    "task id is text": (lambda h, b: h.builds[b].update(task_id="x"),
                        "the hub's task id must be a Koji id"),
}


@pytest.mark.parametrize("case", BUILD_CASES)
def test_build_answers_of_the_wrong_shape_are_bad_input(koji_hub, config, clients, case):
    mutate, expect = BUILD_CASES[case]
    bid = koji_hub.add_image_build()
    mutate(koji_hub, bid)
    with pytest.raises(BadInput, match=expect) as caught:
        build_images(bid, config=config, session=clients.koji)
    assert "\n" not in str(caught.value)
    assert _gets(koji_hub) == []


COMPOSE_CASES = {
    "sha256 is a number": ({"checksums": {"sha256": 5}}, "recorded sha256 is not 64 hex"),
    "sha256 is short": ({"checksums": {"sha256": "abc"}}, "recorded sha256 is not 64 hex"),
    "size is negative": ({"size": -1}, "recorded size is not a number of bytes"),
    "size is text": ({"size": "big"}, "unusable images.json"),
    "path is a number": ({"path": 5}, "unusable images.json"),
    "arch is a list": ({"arch": ["x86_64"]}, "unusable images.json"),
}


@pytest.mark.parametrize("case", COMPOSE_CASES)
def test_images_json_entries_of_the_wrong_shape_are_bad_input(koji_hub, config, clients,
                                                              samples_dir, case):
    fields, expect = COMPOSE_CASES[case]
    images = compose_sample(samples_dir, COMPOSE_43)
    for entry in images["payload"]["images"]["Cloud"]["x86_64"]:
        entry.update(fields)
    serve_compose(koji_hub, images, "43/Fedora-43-20251023.0")
    with pytest.raises(BadInput, match=expect):
        compose_images("Fedora-43-20251023.0", config=config, clients=clients)
    assert [p for p in _gets(koji_hub) if not p.endswith("/images.json")] == []
