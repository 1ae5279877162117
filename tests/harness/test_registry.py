"""Self-tests of the registry stand-in and the container archives: a real registry that wants
TLS and credentials, real skopeo, archives that are deterministic and what they claim to be."""

from __future__ import annotations

import hashlib
import json
import lzma
import subprocess
import tarfile

import pytest
import requests

pytestmark = pytest.mark.slow


def _skopeo(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["skopeo", "--insecure-policy", *args], capture_output=True, text=True,
                          timeout=120)


def test_registry_wants_our_ca_and_credentials(registry):
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{registry.url}/v2/", timeout=10)  # system CAs do not know the stand-in's
    anonymous = requests.get(f"{registry.url}/v2/", verify=str(registry.ca_path), timeout=10)
    assert anonymous.status_code == 401
    assert "basic" in anonymous.headers["WWW-Authenticate"].lower()
    wrong = requests.get(f"{registry.url}/v2/", verify=str(registry.ca_path), timeout=10,
                         auth=(registry.user, "wrong"))
    assert wrong.status_code == 401
    right = requests.get(f"{registry.url}/v2/", verify=str(registry.ca_path), timeout=10,
                         auth=(registry.user, registry.password))
    assert right.status_code == 200


def test_archives_are_deterministic_and_differ_by_arch_and_seed(container_archive_factory):
    a = container_archive_factory("a/x.oci.tar.xz", "x86_64")
    again = container_archive_factory("b/x.oci.tar.xz", "x86_64")
    arm = container_archive_factory("c/x.oci.tar.xz", "aarch64")
    other = container_archive_factory("d/x.oci.tar.xz", "x86_64", seed=1)
    assert a.path.read_bytes() == again.path.read_bytes()
    assert (a.sha256, a.size) == (hashlib.sha256(a.path.read_bytes()).hexdigest(),
                                  a.path.stat().st_size)
    assert len({a.manifest_digest, arm.manifest_digest, other.manifest_digest}) == 3


def test_oci_archive_is_an_oci_layout_with_the_platform_in_its_config(container_archive_factory):
    arc = container_archive_factory("x.oci.tar.xz", "aarch64", label="Rawhide")
    with tarfile.open(fileobj=lzma.open(arc.path)) as tar:
        layout = json.load(tar.extractfile("oci-layout"))
        index = json.load(tar.extractfile("index.json"))
        blob = index["manifests"][0]["digest"].removeprefix("sha256:")
        manifest_bytes = tar.extractfile(f"blobs/sha256/{blob}").read()
        manifest = json.loads(manifest_bytes)
        config = json.load(tar.extractfile(
            "blobs/sha256/" + manifest["config"]["digest"].removeprefix("sha256:")))
    assert layout == {"imageLayoutVersion": "1.0.0"}
    assert "sha256:" + hashlib.sha256(manifest_bytes).hexdigest() == arc.manifest_digest
    assert (config["architecture"], config["os"], config["variant"]) == ("arm64", "linux", "v8")
    assert config["config"]["Labels"]["version"] == "Rawhide"


@pytest.mark.parametrize("kind, transport", [("oci", "oci-archive"),
                                             ("docker", "docker-archive")])
def test_skopeo_pushes_each_kind_of_archive_to_the_registry(registry, container_archive_factory,
                                                            kind, transport):
    arc = container_archive_factory(f"img.{kind}.tar.xz", "x86_64", kind=kind)
    dest = f"docker://{registry.host}/fedora:{kind}"
    pushed = _skopeo("copy", "--dest-authfile", str(registry.authfile), "--dest-cert-dir",
                     str(registry.cert_dir), f"{transport}:{arc.path}", dest)
    assert pushed.returncode == 0, pushed.stderr
    assert registry.tags("fedora") == [kind]
    digest, manifest = registry.manifest("fedora", kind)
    if kind == "oci":  # an OCI archive keeps its manifest, hence its digest
        assert digest == arc.manifest_digest
    config = json.loads(registry.blob("fedora", manifest["config"]["digest"]))
    assert config["architecture"] == "amd64"
    # skopeo reads it back with the authfile and the CA in the cert dir
    inspect = _skopeo("inspect", "--authfile", str(registry.authfile), "--cert-dir",
                      str(registry.cert_dir), dest)
    assert inspect.returncode == 0, inspect.stderr
    assert json.loads(inspect.stdout)["Digest"] == digest


def test_a_stopped_registry_keeps_its_content_when_started_again(registry,
                                                                 container_archive_factory):
    arc = container_archive_factory("img.oci.tar.xz", "x86_64")
    assert _skopeo("copy", "--dest-authfile", str(registry.authfile), "--dest-cert-dir",
                   str(registry.cert_dir), f"oci-archive:{arc.path}",
                   f"docker://{registry.host}/fedora:1").returncode == 0
    registry.stop()
    with pytest.raises(requests.ConnectionError):
        registry.tags("fedora")
    registry.start()
    assert registry.manifest("fedora", "1")[0] == arc.manifest_digest

