"""Property: whatever body arrives on a routed topic, the consumer's callback ends in ack or Drop.

Hypothesis writes bodies for the three topics the uploader handles (Koji task state change,
Koji build state change, Pungi compose status), mixing the ids of real objects on the Koji hub
stand-in and a compose server (good ones and hostile ones) with values of every JSON type, huge
numbers and planted URLs, and runs each through `Uploader.__call__` as fedora-messaging would.
With both servers healthy nothing is transient, so:

- no exception other than Drop escapes (a Nack would be a malformed input taken for a fault);
- no connection or name lookup goes anywhere but the hub and the compose server;
- an image is accepted only for the good objects, every message sent passes its schema, and
  the work directory is empty afterwards.
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import pathlib

import pytest
from fedora_messaging.exceptions import Drop, Nack
from fedora_messaging.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.config import parse_config
from shared.koji import MAX_ID
from standins.koji_hub import TASK_STATES, KojiHub
from standins.net_audit import off_host, watching
from tests.uploader.conftest import COMPOSE_43, compose_sample, serve_compose
from tests.uploader.hostile import tiny_raw_xz
from uploader.consumer import Uploader
from uploader.intake.wanted import IMAGE_METHODS

NIGHTLY = "Fedora-Cloud-Base-Rawhide-20261125.n.0"
GOOD_COMPOSE = "Fedora-43-20251023.0"
TOPICS = {
    "task": "buildsys.task.state.change",
    "build": "buildsys.build.state.change",
    "compose": "pungi.compose.status.change",
}
PREFIXES = ["org.fedoraproject.prod.", "org.fedoraproject.stg.", "", "x."]


@dataclasses.dataclass
class World:
    hub: KojiHub
    composes: KojiHub
    evil: KojiHub
    uploader: Uploader
    work: pathlib.Path
    emitted: list
    good: dict[str, set]  # what may be accepted: task ids, build ids, compose ids
    ids: dict[str, list]  # every id worth naming, per topic

    @property
    def allowed(self) -> set[tuple[str, int]]:
        return {("127.0.0.1", self.hub.port), ("127.0.0.1", self.composes.port)}


def _tasks(hub: KojiHub, evil: KojiHub, xz: bytes) -> tuple[set, list]:
    files = {a: {f"{NIGHTLY}.{a}.raw.xz": xz} for a in ("x86_64", "aarch64")}
    good = hub.add_image_task(arches=["x86_64", "aarch64"], files=files)
    other_owner = hub.add_image_task(owner="nobody-special", files=files)
    still_open = hub.add_image_task(state=TASK_STATES["OPEN"])
    nul = hub.add_image_task(files=files)
    nul_child = hub.tasks[nul]["children"][0]
    hub.set_task_result(nul_child, dict(hub.task_result(nul_child),
                                        files=[f"{NIGHTLY}\x00.x86_64.raw.xz"]))
    redirected = hub.add_image_task(files=files)
    rchild = hub.tasks[redirected]["children"][0]
    hub.redirect(hub.task_url(rchild, f"{NIGHTLY}.x86_64.raw.xz"),
                 evil.add_file("work/evil.raw.xz", xz))
    traversal = hub.add_image_task()
    tchild = hub.tasks[traversal]["children"][0]
    hub.set_task_result(tchild, dict(hub.task_result(tchild),
                                     files=[f"../../{NIGHTLY}.x86_64.raw.xz",
                                            f"{NIGHTLY}.x86_64.raw.xz\u202e", "x" * 10_000]))
    return {good}, [good, other_owner, still_open, nul, redirected, traversal,
                    hub.tasks[good]["children"][0]]


def _builds(hub: KojiHub, xz: bytes) -> tuple[set, list]:
    files = {"x86_64": {f"{NIGHTLY}.x86_64.raw.xz": xz}}
    good = hub.add_image_build(files=files)
    flipped = hub.add_image_build(release="20261126.n.0", files={
        "x86_64": {"Fedora-Cloud-Base-Rawhide-20261126.n.0.x86_64.raw.xz": xz}})
    hub.corrupt(hub.build_url(flipped, "Fedora-Cloud-Base-Rawhide-20261126.n.0.x86_64.raw.xz"))
    bad_size = hub.add_image_build(release="20261127.n.0")
    next(a for a in hub.archives if a["build_id"] == bad_size)["size"] = "big"
    rpm = hub.add_image_build(name="libfreehand", files={}, task=False)
    return {good}, [good, flipped, bad_size, rpm]


def _composes(server: KojiHub, evil: KojiHub, samples: pathlib.Path, xz: bytes) -> list:
    images = compose_sample(samples, COMPOSE_43)
    paths = [e["path"] for arch in images["payload"]["images"]["Cloud"].values() for e in arch
             if e["type"] == "raw-xz"]
    serve_compose(server, images, f"43/{GOOD_COMPOSE}", files={p: xz for p in paths})
    serve_compose(server, copy.deepcopy(images), "43/Fedora-43-20251024.0")  # says ...23.0
    truncated = copy.deepcopy(images)
    truncated["payload"]["compose"]["id"] = "Fedora-43-20251025.0"
    serve_compose(server, truncated, "43/Fedora-43-20251025.0",
                  files={p: xz[: len(xz) // 2] for p in paths})
    moved = copy.deepcopy(images)
    moved["payload"]["compose"]["id"] = "Fedora-43-20251026.0"
    cdir = serve_compose(server, moved, "43/Fedora-43-20251026.0", files={p: xz for p in paths})
    for path in paths:
        server.redirect(f"{cdir}/compose/{path}", evil.add_file("compose/evil.raw.xz", xz))
    return [GOOD_COMPOSE, "Fedora-43-20251024.0", "Fedora-43-20251025.0",
            "Fedora-43-20251026.0", "Fedora-43-20251027.0"]


@pytest.fixture(scope="module")
def world(tmp_path_factory, samples_dir):
    root = tmp_path_factory.mktemp("fuzz")
    hub, composes, evil = (KojiHub(workdir=root / n) for n in ("hub", "composes", "evil"))
    try:
        xz = tiny_raw_xz(b"fedimg fuzz ")
        good_tasks, task_ids = _tasks(hub, evil, xz)
        good_builds, build_ids = _builds(hub, xz)
        compose_ids = _composes(composes, evil, samples_dir, xz)
        work = root / "work"
        config = parse_config({
            "koji": {"hub": hub.url, "topurl": hub.topurl, "owners": ["releng"], "timeout": 10,
                     "retries": 0, "retry_interval": 0},
            "uploader": {"targets": [], "work_dir": str(work), "fetch_timeout": 5,
                         "fetch_retries": 0, "retry_delay": 0, "max_deliveries": 3,
                         "max_disk_mib": 16},
            "compose": {"base_url": composes.topurl + "/compose"},
        }, "fuzz.toml")
        emitted: list = []
        uploader = Uploader(config=config, emit=emitted.append)
        yield World(hub, composes, evil, uploader, work, emitted,
                    {"task": good_tasks, "build": good_builds, "compose": {GOOD_COMPOSE}},
                    {"task": task_ids, "build": build_ids, "compose": compose_ids})
    finally:
        for server in (hub, composes, evil):
            server.close()


# --- bodies ---------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**80), 2**80) | st.floats()
    | st.text(max_size=30) | st.sampled_from(["", "x" * 10_000, "a\x00b", "\u202eexe.raw.xz"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=3),
    max_leaves=8,
)
EVIL_URLS = ["http://203.0.113.7/kojifiles", "https://evil.example.invalid/compose",
             "file:///etc/passwd", "../../../../etc"]


def _ids(world_ids: list) -> st.SearchStrategy:
    return (st.sampled_from(world_ids) | st.sampled_from([0, -1, MAX_ID, MAX_ID + 1, 2**63,
                                                          2**70, True, 1.0, "1"])
            | json_values)


def _body(fields: dict[str, st.SearchStrategy]) -> st.SearchStrategy:
    """A body with any subset of the read fields, plus planted URLs and other junk."""
    planted = st.dictionaries(
        st.sampled_from(["url", "base_url", "files_base_url", "location", "info", "request",
                         "task", "files"]),
        st.sampled_from(EVIL_URLS) | json_values, max_size=3)
    return st.builds(lambda read, extra: {**extra, **read},
                     st.fixed_dictionaries({}, optional=fields), planted)


def bodies(world: World, kind: str) -> st.SearchStrategy:
    """A good body, a good body with one field replaced or removed, or anything at all."""
    owners = st.sampled_from(["releng", "nobody-special"]) | json_values
    if kind == "task":
        good = {"id": min(world.good["task"]), "new": "CLOSED", "method": "image",
                "owner": "releng"}
        fields = {"id": _ids(world.ids["task"]),
                  "new": st.sampled_from(["CLOSED", "OPEN", "FAILED"]) | json_values,
                  "method": st.sampled_from(sorted(IMAGE_METHODS) + ["build"]) | json_values,
                  "owner": owners}
    elif kind == "build":
        good = {"build_id": min(world.good["build"]), "new": 1, "owner": "releng"}
        fields = {"build_id": _ids(world.ids["build"]),
                  "new": st.sampled_from([0, 1, 2, 3, 4]) | json_values, "owner": owners}
    else:
        good = {"compose_id": GOOD_COMPOSE, "status": "FINISHED"}
        fields = {"compose_id": st.sampled_from(world.ids["compose"])
                  | st.sampled_from(["a/b", "../43", f"{GOOD_COMPOSE}/..", ".", "x" * 300])
                  | st.from_regex(r"[A-Za-z0-9._/-]{1,40}", fullmatch=True) | json_values,
                  "status": st.sampled_from(["FINISHED", "FINISHED_INCOMPLETE", "STARTED",
                                             "DOOMED"]) | json_values}
    one_off = st.sampled_from(sorted(fields)).flatmap(
        lambda key: st.one_of(st.just(None), fields[key]).map(
            lambda value: ({k: v for k, v in good.items() if k != key} if value is None
                           else {**good, key: value})))
    return st.one_of(st.just(good), one_off, _body(fields),
                     json_values.filter(lambda v: not isinstance(v, dict)))


SOURCE_KEY = {"task": "koji_task_id", "build": "koji_build_id", "compose": "compose_id"}


@pytest.mark.parametrize("kind", sorted(TOPICS))
def test_any_body_on_a_routed_topic_is_acked_or_dropped_and_stays_on_host(world, kind,
                                                                          terminal_summary):
    outcomes: collections.Counter = collections.Counter()

    @settings(max_examples=120, suppress_health_check=[HealthCheck.too_slow,
                                                      HealthCheck.data_too_large])
    @given(st.sampled_from(PREFIXES), bodies(world, kind))
    def check(prefix, body):
        message = Message(topic=prefix + TOPICS[kind], body=body)
        before = len(world.emitted)
        with watching() as contacts:
            try:
                world.uploader(message)
                outcome = "ack"
            except Drop:
                outcome = "drop"
            except Nack:
                pytest.fail(f"Nack for {body!r}: nothing is transient while both servers run")
        assert off_host(contacts, world.allowed) == []
        sent = world.emitted[before:]
        for m in sent:
            m.validate()
        accepted = [m for m in sent if m.topic.startswith("fedimg.image.accepted.")]
        assert {m.body[SOURCE_KEY[kind]] for m in accepted} <= world.good[kind], body
        assert not world.work.exists() or list(world.work.iterdir()) == []
        if outcome == "ack":
            outcome += ", images accepted" if accepted else ", nothing accepted"
        failed = any(m.topic.startswith("fedimg.image.failed.") for m in sent)
        outcomes[outcome + (", failure announced" if failed else "")] += 1

    check()
    terminal_summary(f"fuzzed {kind} bodies",
                     ", ".join(f"{n} {what}" for what, n in sorted(outcomes.items())))
    assert world.evil.requests == []
    # the property was exercised on both sides: images accepted and bodies dropped
    assert outcomes["ack, images accepted"] and outcomes["drop"], outcomes
