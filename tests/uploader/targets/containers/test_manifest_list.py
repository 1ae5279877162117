"""The manifest list: the same bytes whoever builds it, every arch with its platform."""

from __future__ import annotations

import hashlib
import json

import pytest

from shared.errors import BadInput
from uploader.targets.containers import manifest_list
from uploader.targets.containers.tags import COMPOSE_ANNOTATION, compose_of


def _manifest(n: int) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": manifest_list.OCI_MANIFEST,
                       "config": {"digest": f"sha256:{n:064x}"}}).encode()


def test_the_same_arches_give_the_same_bytes_in_any_order():
    one = manifest_list.build("Fedora-43-20251023.0", {"x86_64": _manifest(1),
                                                       "aarch64": _manifest(2)})
    other = manifest_list.build("Fedora-43-20251023.0", {"aarch64": _manifest(2),
                                                         "x86_64": _manifest(1)})
    assert one.data == other.data
    assert one.digest == "sha256:" + hashlib.sha256(one.data).hexdigest()
    doc = json.loads(one.data)
    assert doc["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert [(m["platform"]["architecture"], m["platform"].get("variant"))
            for m in doc["manifests"]] == [("amd64", None), ("arm64", "v8")]
    assert doc["manifests"][0]["digest"] == "sha256:" + hashlib.sha256(_manifest(1)).hexdigest()
    assert doc["manifests"][0]["size"] == len(_manifest(1))
    assert compose_of(one.data) == "Fedora-43-20251023.0"
    assert doc["annotations"] == {COMPOSE_ANNOTATION: "Fedora-43-20251023.0"}


def test_another_compose_or_arch_gives_another_digest():
    base = manifest_list.build("Fedora-43-20251023.0", {"x86_64": _manifest(1)})
    assert base.digest != manifest_list.build("Fedora-43-20251023.1",
                                              {"x86_64": _manifest(1)}).digest
    assert base.digest != manifest_list.build("Fedora-43-20251023.0",
                                              {"x86_64": _manifest(3)}).digest


def test_the_layout_holds_the_index_alone(tmp_path):
    listed = manifest_list.build("Fedora-43-20251023.0", {"s390x": _manifest(1)})
    layout = manifest_list.write_layout(tmp_path / "list", listed)
    index = json.loads((layout / "index.json").read_text())
    (entry,) = index["manifests"]
    assert entry["digest"] == listed.digest
    assert entry["annotations"]["org.opencontainers.image.ref.name"] == manifest_list.REF
    blobs = sorted(p.name for p in (layout / "blobs" / "sha256").iterdir())
    assert blobs == [listed.digest.removeprefix("sha256:")]


def test_an_image_for_another_platform_than_its_arch_is_refused():
    manifest_list.check_platform("aarch64", {"architecture": "arm64", "os": "linux"}, "img")
    with pytest.raises(BadInput, match="linux/amd64, images.json says aarch64"):
        manifest_list.check_platform("aarch64", {"architecture": "amd64", "os": "linux"}, "img")
    with pytest.raises(BadInput, match="no OCI platform"):
        manifest_list.check_platform("riscv64", {"architecture": "riscv64", "os": "linux"}, "i")
