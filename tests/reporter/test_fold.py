"""The fold: three families into one image model, and its algebra (order, duplicates, splits)."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reporter.families import Unreadable, read_row, topic_base
from reporter.fold import (
    FoldState,
    fold,
    fold_onto,
    image_records,
    state_from_json,
    state_to_json,
)
from standins.datagrepper_emulator import row
from tests.reporter.histories import (
    IMAGES_IN_MIXED,
    SKIPPED_IN_MIXED,
    as_rows,
    check_report,
    mixed_history,
)


def _report(state: FoldState) -> dict:
    return {"images": image_records(state), "read": state.read, "skipped": state.skipped,
            "last": state.last_timestamp}


def test_mixed_history_of_three_families(samples_dir):
    specs, expected = mixed_history(samples_dir)
    state = fold(as_rows(specs))
    report = _report(state)
    check_report(report, expected)
    assert len(report["images"]) == IMAGES_IN_MIXED
    assert state.skipped == SKIPPED_IN_MIXED
    assert state.read == len(specs)


def test_topic_base_strips_any_deployment_prefix():
    assert topic_base("org.fedoraproject.prod.fedimg.image.upload") == "fedimg.image.upload"
    assert topic_base("org.fedoraproject.stg.fedimg.image.promoted.v1.release.C.41.x86_64") == \
        "fedimg.image.promoted.v1.release.C.41.x86_64"
    assert topic_base("fedora_image_uploader.published.v1.aws") == \
        "fedora_image_uploader.published.v1.aws"
    assert topic_base("org.fedoraproject.prod.buildsys.tag") == ""


def test_legacy_destinations_and_nested_compose_id():
    base = {"image_name": "Fedora-Cloud-Base-24-20160710.0.x86_64", "status": "completed",
            "extra": {"id": "ami-1234abcd"}, "compose": {"compose_id": "Fedora-24-20160710.0"}}
    for dest in ("EC2 (us-east-1)", "EC2-us-east-1", "us-east-1"):
        [obs] = read_row(row("x", 1, "org.fedoraproject.prod.fedimg.image.upload",
                             {**base, "destination": dest}))
        assert obs.sets == (("aws", "us-east-1", {"ami": "ami-1234abcd"}),)
        assert obs.source["compose_id"] == "Fedora-24-20160710.0"
    for dest in ("EC2 (us-east-1) and more", "not-a-region", 7):
        try:
            read_row(row("x", 1, "org.fedoraproject.prod.fedimg.image.upload",
                         {**base, "destination": dest}))
        except Unreadable as e:
            assert "destination" in str(e)
        else:
            raise AssertionError(f"{dest!r} was accepted")


def test_arm64_becomes_aarch64(samples_dir):
    body = json.loads(next(samples_dir.glob("fedora_image_uploader.published.v1.aws*"))
                      .read_text())
    body["architecture"] = "arm64"
    [obs] = read_row(row("x", 1, "org.fedoraproject.prod.fedora_image_uploader.published.v1.aws",
                         body))
    assert obs.identity["arch"] == "aarch64"
    assert obs.name == "Fedora-Cloud-Base-AmazonEC2-40-20240501.n.0.aarch64"


def test_hostile_rows_are_skipped_and_counted_never_fatal():
    topic = "org.fedoraproject.prod.fedimg.image.published.v1.downloads.qcow2.x.y.z.w"
    good = {"name": "Fedora-Cloud-Base-Generic-41-1.4.x86_64", "release": "41",
            "subvariant": "Cloud_Base", "arch": "x86_64", "channel": "candidate",
            "compose_id": None, "koji_task_id": None, "koji_build_id": None,
            "format": "qcow2", "url": "https://dl.example.org/a.qcow2", "size": 1,
            "sha256": "0" * 64}
    rows = [
        row("ok", 10, topic, good),
        row("js-url", 11, topic, {**good, "url": "javascript:alert(1)"}),
        row("bad-sha", 12, topic, {**good, "sha256": "zz"}),
        row("list-body", 13, topic, ["not", "an", "object"]),
        row("no-name", 14, topic, {k: v for k, v in good.items() if k != "name"}),
        row("unknown-release", 15, topic, {**good, "name": "Fedora-Thing", "release": "<b>"}),
        {"msg_id": "no-ts", "topic": topic, "msg": good},
    ]
    state = fold(rows)
    # the row without a time cannot be placed: counted per run, not in the report's totals
    assert state.read == 6 and state.skipped == 5 and state.unplaced == 1
    [img] = image_records(state)
    assert img["downloads"] == [{"format": "qcow2", "url": "https://dl.example.org/a.qcow2",
                                 "size": 1, "sha256": "0" * 64, "checksum_url": None}]


def test_later_success_supersedes_failure_but_not_the_other_way():
    ident = {"name": "Fedora-Cloud-Base-AmazonEC2-Rawhide-20250601.n.0.x86_64",
             "release": "Rawhide", "subvariant": "Cloud_Base", "arch": "x86_64",
             "channel": "nightly", "compose_id": None, "koji_task_id": 5, "koji_build_id": None}
    fail = {**ident, "target": "aws", "destination": "eu-west-1", "error_kind": "aws",
            "error": "boom", "retryable": True}
    ok = {**ident, "region": "eu-west-1", "ami": "ami-0abc", "public": True}
    ft = "org.fedoraproject.prod.fedimg.image.failed.v1.aws.eu-west-1"
    ot = "org.fedoraproject.prod.fedimg.image.published.v1.aws.eu-west-1"
    [img] = image_records(fold([row("f", 10, ft, fail), row("o", 20, ot, ok)]))
    assert img["failures"] == [] and img["aws"] == {"eu-west-1": {"ami": "ami-0abc"}}
    [img] = image_records(fold([row("o", 10, ot, ok), row("f", 20, ft, fail)]))
    assert [f["destination"] for f in img["failures"]] == ["eu-west-1"]


@given(st.permutations(["candidate", "release", "published"]))
def test_an_image_shows_the_most_official_channel_it_reached(order):
    """A promotion to release wins over the candidate it came from, whatever arrives first."""
    name = "Fedora-Cloud-Base-AmazonEC2.x86_64-41-1.4"
    ident = {"name": name, "release": "41", "subvariant": "Cloud_Base", "arch": "x86_64",
             "channel": "candidate", "compose_id": None, "koji_task_id": 7,
             "koji_build_id": None}
    p = "org.fedoraproject.prod.fedimg.image."
    rows = {
        "candidate": row("c", 10, p + "accepted.v1", {**ident, "targets": ["aws"],
                                                      "source_url": "https://k.example/x",
                                                      "size": 1, "sha256": "0" * 64}),
        "release": row("r", 20, p + "promoted.v1.x", {
            **{k: ident[k] for k in ("name", "release", "subvariant", "arch")},
            "channel": "release", "official": True, "agent": "releng", "note": None}),
        "published": row("p", 30, p + "published.v1.aws.eu-west-1",
                         {**ident, "region": "eu-west-1", "ami": "ami-0abc", "public": True}),
    }
    [img] = image_records(fold([rows[k] for k in order]))
    assert (img["channel"], img["official"]) == ("release", True)


# ---- algebra: property tests --------------------------------------------------------------------

_NAMES = ["Fedora-Cloud-Base-AmazonEC2-Rawhide-20250601.n.0.x86_64",
          "Fedora-Cloud-Base-AmazonEC2.x86_64-41-1.4",
          "Fedora-Cloud-Base-Generic-41-1.4.aarch64"]
_REGIONS = ["us-east-1", "eu-west-1", "ap-south-1"]


def _synthetic(i: int, kind: int, name: int, region: int, ts: int, ami: int) -> dict:
    """One row of a small vocabulary, so that conflicting writes (same register) are common."""
    img = _NAMES[name]
    ident = {"name": img, "release": "Rawhide" if "Rawhide" in img else "41",
             "subvariant": "Cloud_Base", "arch": "aarch64" if "aarch64" in img else "x86_64",
             "channel": "nightly" if "Rawhide" in img else "candidate",
             "compose_id": None, "koji_task_id": ts, "koji_build_id": None}
    p = "org.fedoraproject.prod."
    if kind == 0:
        body = {**ident, "region": _REGIONS[region], "ami": f"ami-{ami:08x}", "public": True}
        return row(f"m{i}", ts, p + "fedimg.image.published.v1.aws.x", body)
    if kind == 1:
        body = {**ident, "target": "aws", "destination": _REGIONS[region], "error_kind": "aws",
                "error": f"e{ami}", "retryable": bool(ami % 2)}
        return row(f"m{i}", ts, p + "fedimg.image.failed.v1.x", body)
    if kind == 2:
        body = {**ident, "result": ["passed", "failed"][ami % 2], "test_suite": f"s{region}",
                "agent": "qa"}
        return row(f"m{i}", ts, p + "fedimg.image.tested.v1.x", body)
    if kind == 3:
        body = {**ident, "channel": "release", "official": True, "agent": "r", "note": str(ami)}
        return row(f"m{i}", ts, p + "fedimg.image.promoted.v1.x", body)
    if kind == 4:
        body = {"image_name": img, "status": "completed",
                "destination": f"EC2 ({_REGIONS[region]})", "extra": {"id": f"ami-{ami:08x}"}}
        return row(f"m{i}", ts, p + "fedimg.image.copy", body)
    return row(f"m{i}", ts, p + "fedimg.image.nonsense", {"x": ami})


_row_specs = st.lists(
    st.tuples(st.integers(0, 5), st.integers(0, 2), st.integers(0, 2), st.integers(1, 4),
              st.integers(0, 50)),
    min_size=1, max_size=40,
)


def _rows(specs) -> list[dict]:
    return [_synthetic(i, *s) for i, s in enumerate(specs)]


@settings(max_examples=150, deadline=None)
@given(_row_specs, st.randoms(use_true_random=False))
def test_order_of_arrival_does_not_matter(specs, rnd):
    rows = _rows(specs)
    shuffled = rows[:]
    rnd.shuffle(shuffled)
    assert _report(fold(shuffled)) == _report(fold(rows))


@settings(max_examples=150, deadline=None)
@given(_row_specs, st.lists(st.integers(0, 39), max_size=20), st.randoms(use_true_random=False))
def test_duplicates_do_not_matter(specs, dup_idx, rnd):
    rows = _rows(specs)
    dups = rows + [rows[i % len(rows)] for i in dup_idx]
    rnd.shuffle(dups)
    assert _report(fold(dups)) == _report(fold(rows))


@settings(max_examples=150, deadline=None)
@given(_row_specs, st.integers(0, 40), st.randoms(use_true_random=False))
def test_splitting_anywhere_gives_the_same_state(specs, cut, rnd):
    rows = _rows(specs)
    rnd.shuffle(rows)
    cut = cut % (len(rows) + 1)
    first = fold(rows[:cut])
    again = fold_onto(first, rows[cut:])
    assert _report(again) == _report(fold(rows))
    assert _report(first) == _report(fold(rows[:cut])), "fold_onto must not change its input"


@settings(max_examples=100, deadline=None)
@given(_row_specs, st.integers(1, 4), st.integers(0, 3))
def test_checkpoint_round_trip_then_overlap_refetch_equals_full_fold(specs, cut_ts, overlap):
    """What an incremental run does: persist, reload, fold [last - overlap, ...] on top."""
    rows = sorted(_rows(specs), key=lambda r: (r["timestamp"], r["msg_id"]))
    before = [r for r in rows if r["timestamp"] <= cut_ts]
    state = fold(before)
    saved = json.loads(json.dumps(state_to_json(state, "https://dg", overlap)))
    restored = state_from_json(saved)
    horizon = (state.last_timestamp or 0) - overlap
    refetch = [r for r in rows if state.last_timestamp is None or r["timestamp"] >= horizon]
    assert _report(fold_onto(restored, refetch)) == _report(fold(rows))


def test_same_second_conflict_is_decided_by_msg_id_not_arrival():
    rows = [_synthetic(i, 0, 0, 0, 5, ami) for i, ami in ((1, 0xA), (2, 0xB))]
    for order in (rows, rows[::-1]):
        [img] = image_records(fold(order))
        assert img["aws"]["us-east-1"]["ami"] == "ami-0000000b"  # "m2" > "m1"
    random.seed(1)


def test_fedora_image_uploader_fields_missing_from_a_body_come_from_the_topic_words():
    """2024 topics end in <subvariant>.<release>.<arch>, later ones in <channel>.<sub>.<arch>."""
    prod = "org.fedoraproject.prod.fedora_image_uploader.published.v1"
    body = {"compose_id": "Fedora-Rawhide-20250101.n.0", "image_name": "Fedora-Cloud-AmazonEC2",
            "regions": {"us-east-1": "ami-0123456789abcdef0"}}
    (obs,) = read_row({"topic": f"{prod}.aws.Cloud_Base.Rawhide.aarch64", "msg": body})
    assert obs.derived_name  # a generic image_name gives way to a derived one
    assert (obs.name, obs.identity["release"], obs.identity["subvariant"],
            obs.identity["arch"], obs.identity["channel"]) == (
        "Fedora-Cloud-Base-AmazonEC2-Rawhide-20250101.n.0.aarch64", "Rawhide", "Cloud_Base",
        "aarch64", "nightly")
    named = {**body, "image_name": "Fedora-Cloud-Base-AmazonEC2.aarch64-42-1.1",
             "compose_id": "Fedora-42-20250409.0"}
    (obs,) = read_row({"topic": f"{prod}.aws.rc.Cloud_Base.aarch64", "msg": named})
    assert not obs.derived_name and obs.name == named["image_name"]
    assert (obs.identity["release"], obs.identity["channel"]) == ("42", "candidate")
    with pytest.raises(Unreadable, match="'architecture'"):
        read_row({"topic": f"{prod}.aws", "msg": body})  # no arch in body nor topic
