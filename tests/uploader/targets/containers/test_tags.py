"""The tag rule: which tags a compose gets, and a tag moves only forward."""

from __future__ import annotations

import datetime
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.errors import BadInput
from uploader.targets.containers.tags import (
    COMPOSE_ANNOTATION,
    compose_key,
    compose_of,
    may_move,
    plan_tags,
)


@pytest.mark.parametrize("compose_id, latest, compose_tag, moving", [
    ("Fedora-43-20251023.0", "43", "43-20251023.0", ("43", "latest")),
    ("Fedora-43-20251023.0", "44", "43-20251023.0", ("43",)),
    ("Fedora-43-20251023.0", "", "43-20251023.0", ("43",)),
    ("Fedora-40-20240501.n.0", "40", "40-20240501.n.0", ("40", "latest")),
    # Rawhide: "rawhide", never "latest", even if someone configures it so
    ("Fedora-Rawhide-20240829.n.1", "43", "rawhide-20240829.n.1", ("rawhide",)),
])
def test_tags_of_a_compose(compose_id, latest, compose_tag, moving):
    plan = plan_tags(compose_id, latest)
    assert (plan.compose_tag, plan.moving) == (compose_tag, moving)
    assert plan.list_tags == (compose_tag, *moving)
    assert plan.arch_tag("aarch64") == f"{compose_tag}-aarch64"


@pytest.mark.parametrize("compose_id", ["Fedora-43", "CentOS-Stream-10-20250101.0", "",
                                        "Fedora-43-20251023.0/../x"])
def test_a_compose_id_that_names_no_tags_is_bad_input(compose_id):
    with pytest.raises(BadInput, match="cannot name its tags"):
        plan_tags(compose_id, "43")


def test_compose_order_is_release_then_date_then_respin():
    ordered = ["Fedora-42-20250409.0", "Fedora-43-20251001.n.0", "Fedora-43-20251023.0",
               "Fedora-43-20251023.1", "Fedora-43-20251102.n.0", "Fedora-44-20260101.n.0"]
    keys = [compose_key(c) for c in ordered]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert compose_key("not a compose") is None


def test_a_tag_moves_only_forward():
    assert may_move("Fedora-43-20251102.n.0", "Fedora-43-20251023.0")
    assert not may_move("Fedora-43-20251023.0", "Fedora-43-20251102.n.0")
    assert not may_move("Fedora-43-20251023.0", "Fedora-44-20260101.n.0")  # `latest` of 44
    assert may_move("Fedora-43-20251023.0", "Fedora-43-20251023.0")  # its own list, refreshed
    assert may_move("Fedora-43-20251023.0", None)  # nothing, or something fedimg did not push
    assert may_move("Fedora-43-20251023.0", "built by hand")
    # the same date and respin in another compose kind is not newer: the tag stays
    assert not may_move("Fedora-43-20251023.n.0", "Fedora-43-20251023.0")


@given(st.sampled_from(["40", "41", "42", "43", "Rawhide"]),
       st.dates(min_value=datetime.date(2000, 1, 1)).map(lambda d: d.strftime("%Y%m%d")),
       st.integers(0, 9),
       st.sampled_from(["", ".n"]))
def test_a_compose_never_moves_a_tag_away_from_a_newer_one(release, date, respin, kind):
    compose = f"Fedora-{release}-{date}{kind}.{respin}"
    newer = f"Fedora-{release}-{date}{kind}.{respin + 1}"
    assert compose_key(compose) is not None
    assert not may_move(compose, newer) and may_move(newer, compose)


def test_the_compose_of_a_list_is_read_from_its_annotation():
    assert compose_of(json.dumps({"annotations": {COMPOSE_ANNOTATION: "Fedora-43-20251023.0"}})
                      .encode()) == "Fedora-43-20251023.0"
    assert compose_of(b'{"schemaVersion": 2, "layers": []}') is None
    assert compose_of(b"not json") is None
    assert compose_of(b'{"annotations": {"org.fedoraproject.compose.id": 43}}') is None
