"""The containers target against a real registry: each arch pushed, then one multi-arch manifest
list under the compose's tags; any order, redelivery pushes nothing, tags only move forward.

Everything is checked by reading the registry back over its API (manifests, tags, platforms)
and its access log (whether anything was written)."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.uploader.targets.containers.conftest import (
    FAILED,
    PUBLISHED,
    registry_entry,
    run_compose,
)

pytestmark = pytest.mark.slow

F43 = "Fedora-43-20251023.0"
LIST_TAGS = ["43", "43-20251023.0", "latest"]
ARCH_TAGS = ["43-20251023.0-aarch64", "43-20251023.0-x86_64"]


def _platforms(registry, repo: str, tag: str) -> dict[str, str]:
    """(architecture[/variant]) -> digest of the manifest list at tag."""
    digest, index = registry.manifest(repo, tag)
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    return {"/".join(filter(None, [m["platform"]["architecture"],
                                   m["platform"].get("variant")])): m["digest"]
            for m in index["manifests"]}


def _state(registry, repo: str = "fedora") -> dict[str, str]:
    return {tag: registry.manifest(repo, tag)[0] for tag in registry.tags(repo)}


def test_two_arches_end_as_one_manifest_list_under_the_compose_tags(
        registry, make_compose, containers_config, emit):
    compose = make_compose(F43, ["x86_64", "aarch64"])
    config = containers_config([registry_entry(registry)])

    (first,) = run_compose(config, F43, emit, arches=["x86_64"])
    assert first.ok, first.summary()
    assert registry.tags("fedora") == ["43-20251023.0-x86_64"]
    assert registry.manifest("fedora", "43-20251023.0-x86_64")[0] == \
        compose.archives["x86_64"].manifest_digest
    (body,) = emit.bodies(PUBLISHED)
    assert (body["manifest_list"], body["tags"], body["pending_arches"]) == (None, [],
                                                                             ["aarch64"])
    assert body["reference"] == f"{registry.host}/fedora:43-20251023.0-x86_64"

    (second,) = run_compose(config, F43, emit, arches=["aarch64"])
    assert second.ok, second.summary()
    assert registry.tags("fedora") == sorted(LIST_TAGS + ARCH_TAGS)
    state = _state(registry)
    assert len({state[t] for t in LIST_TAGS}) == 1  # every list tag names the one list
    assert _platforms(registry, "fedora", "latest") == {
        "amd64": compose.archives["x86_64"].manifest_digest,
        "arm64/v8": compose.archives["aarch64"].manifest_digest}
    _, index = registry.manifest("fedora", "43")
    assert index["annotations"]["org.fedoraproject.compose.id"] == F43

    last = emit.bodies(PUBLISHED)[-1]
    assert last["arch"] == "aarch64" and last["pending_arches"] == []
    assert last["manifest_list"] == {"digest": state["43"], "manifests": {
        "aarch64": compose.archives["aarch64"].manifest_digest,
        "x86_64": compose.archives["x86_64"].manifest_digest}}
    assert sorted(last["tags"]) == LIST_TAGS and last["kept_tags"] == {}
    assert last["registry"] == registry.host and last["repository"] == "fedora"
    assert last["compose_id"] == F43 and last["subvariant"] == "Container_Base"

    # skopeo resolves the list for each platform to that arch's image
    for arch, oci in (("x86_64", "amd64"), ("aarch64", "arm64")):
        out = subprocess.run(
            ["skopeo", "inspect", "--override-arch", oci, "--authfile", str(registry.authfile),
             "--cert-dir", str(registry.cert_dir), f"docker://{registry.host}/fedora:latest"],
            capture_output=True, text=True, timeout=60, check=True).stdout
        assert json.loads(out)["Architecture"] == oci
        assert json.loads(out)["Layers"] == [compose.archives[arch].layer_digest]
        assert json.loads(out)["Labels"]["version"] == F43


def test_a_redelivery_in_any_order_pushes_nothing_and_moves_no_tag(
        registry, make_compose, containers_config, emit):
    make_compose(F43, ["x86_64", "aarch64"])
    config = containers_config([registry_entry(registry)])
    # both arches in one message, the last arch of images.json first
    reports = run_compose(config, F43, emit, arches=["aarch64", "x86_64"])
    assert all(r.ok for r in reports)
    before, writes = _state(registry), registry.writes()
    assert sorted(before) == sorted(LIST_TAGS + ARCH_TAGS) and writes > 0
    assert len(emit.bodies(PUBLISHED)) == 2
    emit.messages.clear()

    for arches in (["x86_64", "aarch64"], ["aarch64"], ["x86_64"]):
        reports = run_compose(config, F43, emit, arches=arches)
        assert all(r.ok for r in reports)
    assert _state(registry) == before
    assert registry.writes() == writes  # not one blob, manifest or tag written again
    assert emit.bodies(PUBLISHED) == [] and emit.bodies(FAILED) == []
    assert len(emit.bodies("fedimg.image.accepted.v1.")) == 4  # it did run


def test_an_older_compose_never_moves_the_tags_of_a_newer_one(
        registry, make_compose, containers_config, emit):
    newer = "Fedora-43-20251102.n.0"
    make_compose(newer, ["x86_64", "aarch64"], seed=1)
    make_compose(F43, ["x86_64", "aarch64"])
    config = containers_config([registry_entry(registry)])
    assert all(r.ok for r in run_compose(config, newer, emit))
    newer_state = _state(registry)
    emit.messages.clear()

    assert all(r.ok for r in run_compose(config, F43, emit))
    state = _state(registry)
    assert state["43"] == state["latest"] == newer_state["43"]  # still the newer compose's list
    assert state["43-20251023.0"] != newer_state["43"]  # the older one has its own list
    assert registry.manifest("fedora", "43-20251023.0")[1]["annotations"] == {
        "org.fedoraproject.compose.id": F43}
    last = emit.bodies(PUBLISHED)[-1]
    assert last["tags"] == ["43-20251023.0"]
    assert last["kept_tags"] == {"43": newer, "latest": newer}

    # and a newer one moves them on
    newest = "Fedora-43-20251110.n.0"
    make_compose(newest, ["x86_64", "aarch64"], seed=2)
    assert all(r.ok for r in run_compose(config, newest, emit))
    assert registry.manifest("fedora", "latest")[1]["annotations"] == {
        "org.fedoraproject.compose.id": newest}


def test_rawhide_gets_rawhide_and_its_compose_tag_never_latest(
        registry, make_compose, containers_config, emit):
    rawhide = "Fedora-Rawhide-20240829.n.1"
    make_compose(rawhide, ["x86_64"], image_type="docker")  # pungi's type for it in 2024
    config = containers_config([registry_entry(registry)], latest_release="43")
    assert all(r.ok for r in run_compose(config, rawhide, emit))
    # one arch in the compose: its image is the last, so the list comes at once
    assert registry.tags("fedora") == ["rawhide", "rawhide-20240829.n.1",
                                       "rawhide-20240829.n.1-x86_64"]
    (body,) = emit.bodies(PUBLISHED)
    assert sorted(body["tags"]) == ["rawhide", "rawhide-20240829.n.1"]
    assert (body["release"], body["channel"]) == ("Rawhide", "nightly")


def test_a_docker_archive_is_pushed_as_oci(registry, make_compose, containers_config, emit):
    make_compose(F43, ["x86_64", "aarch64"], kind="docker", image_type="docker")
    config = containers_config([registry_entry(registry)])
    assert all(r.ok for r in run_compose(config, F43, emit))
    platforms = _platforms(registry, "fedora", "43")
    assert sorted(platforms) == ["amd64", "arm64/v8"]
    for digest in platforms.values():
        _, manifest = registry.manifest("fedora", digest)
        assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"


def test_a_registry_that_is_down_fails_alone_and_a_redelivery_finishes_it(
        registry_factory, make_compose, containers_config, emit):
    up, down = registry_factory(), registry_factory()
    make_compose(F43, ["x86_64", "aarch64"])
    config = containers_config([registry_entry(up), registry_entry(down)])
    down.stop()

    reports = run_compose(config, F43, emit)
    assert [r.retryable for r in reports] == [True, True]  # the consumer returns the message
    assert sorted(up.tags("fedora")) == sorted(LIST_TAGS + ARCH_TAGS)
    failures = emit.bodies(FAILED)
    assert {(f["target"], f["destination"], f["error_kind"], f["retryable"])
            for f in failures} == {("containers", down.host, "registry", True)}
    assert len(failures) == 2 and all(down.host in f["error"] for f in failures)
    assert {b["registry"] for b in emit.bodies(PUBLISHED)} == {up.host}
    up_writes = up.writes()
    emit.messages.clear()

    down.start()
    reports = run_compose(config, F43, emit)
    assert all(r.ok for r in reports)
    assert sorted(down.tags("fedora")) == sorted(LIST_TAGS + ARCH_TAGS)
    assert _state(down)["latest"] == _state(up)["latest"]  # the same bytes in both
    assert {b["registry"] for b in emit.bodies(PUBLISHED)} == {down.host}
    assert up.writes() == up_writes and emit.bodies(FAILED) == []


def test_a_registry_refusing_the_credentials_leaves_a_failure_naming_it(
        registry, make_compose, containers_config, emit, tmp_path):
    make_compose(F43, ["x86_64"])
    bad = registry.write_authfile(tmp_path / "wrong-auth.json", registry.user, "not-the-password")
    config = containers_config([registry_entry(registry, authfile=str(bad))])
    (report,) = run_compose(config, F43, emit)
    assert not report.ok
    (failure,) = emit.bodies(FAILED)
    assert (failure["destination"], failure["error_kind"]) == (registry.host, "registry")
    assert "unauthorized" in failure["error"] and failure["error"].startswith(registry.host)
    assert registry.catalog() == [] and emit.bodies(PUBLISHED) == []


def test_a_subvariant_without_repository_is_fetched_but_not_pushed(
        registry, koji_hub, containers_config, emit):
    from tests.uploader.conftest import serve_compose
    from tests.uploader.targets.containers.conftest import compose_images_json

    images = compose_images_json(F43, ["x86_64"], subvariants=("Container_Toolbox",))
    path = images["payload"]["images"]["Container"]["x86_64"][0]["path"]
    serve_compose(koji_hub, images, f"43/{F43}", {path: b"not pushed, never even unpacked"})
    config = containers_config([registry_entry(registry)], subvariants=("Container_Toolbox",),
                               repositories={"Container_Toolbox": ""})
    (report,) = run_compose(config, F43, emit)
    assert report.ok and report.outcomes[0].published == []
    assert registry.writes() == 0 and emit.bodies(FAILED) == []
