"""Container images in the report, from fedimg's and fedora_image_uploader's messages: every
arch shows the manifest list, tags move to the newest list, hostile values never get through."""

from __future__ import annotations

import copy
import json

from reporter.fold import fold, fold_onto, image_records, state_from_json, state_to_json
from shared.messages import ContainerPublishedV1
from standins.datagrepper_emulator import row
from tests.reporter.histories import CONTAINER, CONTAINER_IDENTITY, PROD, QUAY

REF = f"{QUAY}/fedora:43-20251023.0"


def _digest(n: int) -> str:
    return f"sha256:{n:064x}"


def _message(arch: str, digest: str, *, listed: dict | None = None, tags=(), name=CONTAINER,
             compose="Fedora-43-20251023.0", tag_of_compose="43-20251023.0", **extra) -> dict:
    body = {**CONTAINER_IDENTITY, "compose_id": compose, "name": f"{name}.{arch}", "arch": arch,
            "registry": QUAY, "repository": "fedora",
            "reference": f"{QUAY}/fedora:{tag_of_compose}-{arch}", "digest": digest,
            "manifest_list": listed, "tags": list(tags), "kept_tags": {},
            "pending_arches": [], **extra}
    ContainerPublishedV1.from_body(body).validate()  # what the target sends, nothing looser
    return body


def _row(msg_id: str, ts: float, body: dict) -> dict:
    return row(msg_id, ts, PROD + ContainerPublishedV1.from_body(body).topic, body)


def _containers(rows: list[dict]) -> dict[str, list]:
    return {i["name"]: i["containers"] for i in image_records(fold(rows))}


def _compose(first: float, n: int, compose: str, tag: str, moving=("43", "latest")):
    """Two arches of a compose: x86_64 without the list, then aarch64 with it."""
    x86, arm, lst = _digest(n), _digest(n + 1), _digest(n + 2)
    name = f"Fedora-Container-Base-Generic-43-{compose.split('-', 2)[2]}"  # ...-43-20251023.0
    listed = {"digest": lst, "manifests": {"x86_64": x86, "aarch64": arm}}
    return [
        _row(f"{compose}-x", first, _message("x86_64", x86, name=name, compose=compose,
                                             tag_of_compose=tag)),
        _row(f"{compose}-a", first + 1, _message("aarch64", arm, listed=listed,
                                                 tags=(tag, *moving), name=name,
                                                 compose=compose, tag_of_compose=tag)),
    ], name, (x86, arm, lst)


def test_every_arch_shows_the_list_whatever_order_the_messages_came_in():
    rows, name, (x86, arm, lst) = _compose(100, 1, "Fedora-43-20251023.0", "43-20251023.0")
    # the race: the x86_64 message (no list yet) sent after the aarch64 one that made the list
    late = copy.deepcopy(rows[0])
    late["timestamp"] = 500
    for history in (rows, rows[::-1], [rows[1], late]):
        got = _containers(history)
        for arch, digest in (("x86_64", x86), ("aarch64", arm)):
            assert got[f"{name}.{arch}"] == [{
                "registry": QUAY, "repository": "fedora",
                "reference": f"{QUAY}/fedora:43-20251023.0-{arch}", "digest": digest,
                "manifest_list": lst, "tags": ["43", "43-20251023.0", "latest"]}]


def test_a_newer_compose_takes_the_moving_tags_and_the_older_keeps_its_own():
    old, old_name, _ = _compose(100, 1, "Fedora-43-20251023.0", "43-20251023.0")
    new, new_name, _ = _compose(200, 10, "Fedora-43-20251102.n.0", "43-20251102.n.0")
    full = image_records(fold(old + new))
    by_name = {i["name"]: i["containers"][0]["tags"] for i in full}
    assert by_name[f"{old_name}.x86_64"] == by_name[f"{old_name}.aarch64"] == ["43-20251023.0"]
    assert by_name[f"{new_name}.x86_64"] == ["43", "43-20251102.n.0", "latest"]
    # an incremental run (and a restored state) gives exactly the same
    state = fold_onto(fold(old), new)
    restored = state_from_json(json.loads(json.dumps(state_to_json(state, "dg", 3600))))
    assert image_records(state) == image_records(restored) == full


def test_a_list_claimed_by_fedora_image_uploader_loses_tags_to_ours_per_registry(samples_dir):
    fiu = json.loads(next(samples_dir.glob(
        "fedora_image_uploader.published.v1.container*")).read_text())
    rows = [row("fiu", 50, "org.fedoraproject.prod.fedora_image_uploader.published.v1."
                           "container", fiu)]
    rows += _compose(100, 1, "Fedora-43-20251023.0", "43-20251023.0")[0]
    got = _containers(rows)["Fedora-Container-Base-40-20240501.n.0.x86_64"]
    assert {c["registry"]: c["tags"] for c in got} == {
        QUAY: ["40"], "registry.fedoraproject.org": ["40", "latest"]}
    assert all(c["digest"] is None and c["reference"] is None for c in got)


def test_hostile_container_values_are_not_read():
    good = _message("x86_64", _digest(1))
    state = fold([
        _row("a", 1, {**good, "registry": "javascript:alert(1)"}),
        _row("b", 2, {**good, "reference": "evil.example.org/fedora:43-20251023.0-x86_64"}),
        _row("c", 3, {**good, "digest": "sha256:<script>"}),
        _row("d", 4, {**good, "manifest_list": {"digest": _digest(2), "manifests": "x"},
                      "tags": ["43"]}),
    ])
    assert state.skipped == 4 and image_records(state) == []
    tags = fold([_row("e", 5, {**good, "manifest_list": {
        "digest": _digest(2), "manifests": {"x86_64": _digest(1), "<b>": _digest(3)}},
        "tags": ["43", "<script>", "x" * 200]})])
    (img,) = image_records(tags)  # no image for an arch that is no arch
    assert img["containers"][0]["tags"] == ["43"]
