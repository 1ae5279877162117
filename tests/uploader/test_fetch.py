"""Verified fetch from the Koji stand-in: checksums, redirects, sparse raw, cleanup."""

from __future__ import annotations

import dataclasses
import pathlib
import subprocess

import pytest

from shared.errors import BadInput, TransientError, VerificationFailed
from shared.files import sha256_file
from standins.disk_images import MiB, allocated_bytes, data_extents, make_xz_bomb
from standins.koji_hub import KojiHub
from uploader.intake import build_images, fetched, task_images

NAME = "Fedora-Cloud-Base-Rawhide-20261125.n.0"


def _work_entries(config):
    from pathlib import Path

    base = Path(config.uploader.work_dir)
    return sorted(p.name for p in base.iterdir()) if base.exists() else []


@pytest.fixture
def xz_build(koji_hub, raw_xz_image):
    """An image build whose x86_64 raw.xz is the harness's real disk image."""
    bid = koji_hub.add_image_build(files={"x86_64": {f"{NAME}.x86_64.raw.xz": raw_xz_image.path}})
    return bid


def test_build_image_is_fetched_verified_and_decompressed_sparse(koji_hub, config, clients,
                                                                 xz_build, raw_xz_image):
    (source,) = build_images(xz_build, config=config, session=clients.koji)
    with fetched(source, config=config, clients=clients) as image:
        raw = image.raw_path
        assert raw.name == f"{NAME}.x86_64.raw"
        assert sha256_file(raw) == raw_xz_image.raw.sha256
        assert raw.stat().st_size == raw_xz_image.raw.size
        # sparse: far less allocated than the apparent size, and holes between data ranges
        assert allocated_bytes(raw) < raw_xz_image.raw.size // 4
        assert len(data_extents(raw)) > 1
        assert image.source.sha256 == raw_xz_image.sha256 == source.sha256
        assert image.source.size == raw_xz_image.size
        assert list(raw.parent.iterdir()) == [raw]  # the compressed copy is gone already
        work = raw.parent
    assert not work.exists() and _work_entries(config) == []


def test_task_image_without_checksum_is_size_checked_and_measured(koji_hub, config, clients,
                                                                  raw_xz_image):
    tid = koji_hub.add_image_task(files={"x86_64": {f"{NAME}.x86_64.raw.xz": raw_xz_image.path}})
    (source,) = task_images(tid, config=config, session=clients.koji)
    assert source.sha256 is None and source.size == raw_xz_image.size
    with fetched(source, config=config, clients=clients) as image:
        assert image.source.sha256 == raw_xz_image.sha256  # measured while streaming
        assert sha256_file(image.raw_path) == raw_xz_image.raw.sha256


def test_work_dir_is_removed_when_the_caller_fails(koji_hub, config, clients, xz_build):
    (source,) = build_images(xz_build, config=config, session=clients.koji)
    with pytest.raises(RuntimeError, match="target blew up"), \
            fetched(source, config=config, clients=clients) as image:
        assert image.raw_path.exists()
        raise RuntimeError("target blew up")
    assert _work_entries(config) == []


@pytest.mark.parametrize("mode", ["flip", "size"])
def test_checksum_or_size_mismatch_is_a_verification_failure(koji_hub, config, clients,
                                                             xz_build, mode):
    (source,) = build_images(xz_build, config=config, session=clients.koji)
    if mode == "flip":
        koji_hub.corrupt(source.url, "flip")
        expect = "sha256 mismatch"
    else:
        source = dataclasses.replace(source, size=source.size - 1)
        expect = "server announces"
    with pytest.raises(VerificationFailed, match=expect), \
            fetched(source, config=config, clients=clients):
        pytest.fail("a corrupt image must never be yielded")
    assert _work_entries(config) == []


def test_truncated_download_is_retried_then_transient(koji_hub, config, clients, xz_build):
    (source,) = build_images(xz_build, config=config, session=clients.koji)
    koji_hub.corrupt(source.url, "truncate")
    with pytest.raises(TransientError, match="gave up after 2 attempts"), \
            fetched(source, config=config, clients=clients):
        pytest.fail("unreachable")
    gets = [p for m, p in koji_hub.requests if m == "GET"]
    assert len(gets) == 2  # fetch_retries = 1
    assert _work_entries(config) == []


def test_http_503_is_transient_and_404_is_bad_input(koji_hub, config, clients, xz_build):
    (source,) = build_images(xz_build, config=config, session=clients.koji)
    koji_hub.down = True
    with pytest.raises(TransientError, match="HTTP 503"), \
            fetched(source, config=config, clients=clients):
        pytest.fail("unreachable")
    gets = [p for m, p in koji_hub.requests if m == "GET"]
    assert len(gets) == 2 and len(set(gets)) == 1  # fetch_retries = 1: the same file once more
    koji_hub.down = False
    koji_hub.remove_file(source.url)
    with pytest.raises(BadInput, match="HTTP 404"), \
            fetched(source, config=config, clients=clients):
        pytest.fail("unreachable")


def test_redirect_to_another_host_is_refused_and_never_followed(koji_hub, config, clients,
                                                                xz_build, tmp_path):
    other = KojiHub(workdir=tmp_path / "other")  # a second server: another origin (port)
    try:
        (source,) = build_images(xz_build, config=config, session=clients.koji)
        evil = other.add_file("evil.raw.xz", koji_hub.file_path(source.url))
        koji_hub.redirect(source.url, evil)
        with pytest.raises(VerificationFailed, match="refusing redirect .* another host"), \
                fetched(source, config=config, clients=clients):
            pytest.fail("unreachable")
        assert other.requests == []
    finally:
        other.close()


def test_redirect_within_the_same_host_is_followed(koji_hub, config, clients, xz_build,
                                                   raw_xz_image):
    (source,) = build_images(xz_build, config=config, session=clients.koji)
    moved = koji_hub.add_file("moved/elsewhere.raw.xz", koji_hub.file_path(source.url))
    koji_hub.redirect(source.url, "/kojifiles/moved/elsewhere.raw.xz", status=301)
    with fetched(source, config=config, clients=clients) as image:
        assert sha256_file(image.raw_path) == raw_xz_image.raw.sha256
    assert ("GET", "/kojifiles/moved/elsewhere.raw.xz") in koji_hub.requests
    assert moved.endswith("/kojifiles/moved/elsewhere.raw.xz")


@pytest.mark.parametrize("url_kind", ["other-host", "traversal", "query"])
def test_urls_outside_the_configured_locations_are_never_requested(koji_hub, config, clients,
                                                                   xz_build, url_kind):
    (source,) = build_images(xz_build, config=config, session=clients.koji)
    url = {
        "other-host": "http://127.0.0.2:9/kojifiles/x.raw.xz",
        "traversal": f"{koji_hub.topurl}/packages/../../etc/x.raw.xz",
        "query": f"{source.url}?x=1",
    }[url_kind]
    with pytest.raises(VerificationFailed, match="refusing to fetch"), \
            fetched(dataclasses.replace(source, url=url), config=config, clients=clients):
        pytest.fail("unreachable")
    assert [r for r in koji_hub.requests if r[0] == "GET"] == []


@pytest.mark.parametrize("filename", ["../x.raw.xz", "a/b.raw.xz", "..", ".hidden.raw.xz"])
def test_unsafe_file_names_never_reach_the_disk(koji_hub, config, clients, xz_build, filename):
    (source,) = build_images(xz_build, config=config, session=clients.koji)
    with pytest.raises(BadInput, match="unsafe file name"), \
            fetched(dataclasses.replace(source, filename=filename), config=config,
                    clients=clients):
        pytest.fail("unreachable")
    assert [r for r in koji_hub.requests if r[0] == "GET"] == []


@pytest.mark.slow  # runs qemu-img
def test_raw_and_qcow2_sources_become_sparse_raw(koji_hub, make_config, clients, raw_image,
                                                 tmp_path):
    cfg = make_config(uploader={"image_types": ["raw", "qcow2"]})
    qcow2 = tmp_path / f"{NAME}.x86_64.qcow2"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw_image.path),
                    str(qcow2)], check=True)
    plain = tmp_path / "plain.raw"
    subprocess.run(["cp", "--sparse=never", str(raw_image.path), str(plain)], check=True)
    assert allocated_bytes(plain) >= raw_image.size  # fully allocated on the server side
    bid = koji_hub.add_image_build(files={"x86_64": {f"{NAME}.x86_64.raw": plain,
                                                     qcow2.name: qcow2}})
    sources = build_images(bid, config=cfg, session=clients.koji)
    assert sorted(s.image_type for s in sources) == ["qcow2", "raw"]
    for source in sources:
        with fetched(source, config=cfg, clients=clients) as image:
            assert sha256_file(image.raw_path) == raw_image.sha256
            assert allocated_bytes(image.raw_path) < raw_image.size // 4


@pytest.mark.parametrize("claim", [None, 4 * MiB], ids=["honest index", "lying index"])
def test_an_xz_bomb_is_refused_without_filling_the_work_dir(koji_hub, make_config, clients,
                                                            tmp_path, claim, monkeypatch):
    """1 GiB (honest) or 128 MiB (index says 4 MiB) from a few hundred KB, limit 64 MiB."""
    cfg = make_config(uploader={"max_disk_mib": 64})
    bomb = make_xz_bomb(tmp_path / f"{NAME}.x86_64.raw.xz",
                        1024 * MiB if claim is None else 128 * MiB, claim=claim)
    bid = koji_hub.add_image_build(files={"x86_64": {bomb.name: bomb}})
    (source,) = build_images(bid, config=cfg, session=clients.koji)
    written = []
    real_run = clients.run

    def run(args, **kwargs):  # the real tools; note how much each xz -d left on the disk
        proc = real_run(args, **kwargs)
        if "--decompress" in args:
            written.append(pathlib.Path(kwargs["stdout"].name).stat().st_size)
        return proc

    monkeypatch.setattr(clients, "run", run)
    expect = ("would be 1073741824 bytes, more than uploader.max_disk_mib" if claim is None
              else "decompresses past uploader.max_disk_mib .64 MiB. although its index")
    with pytest.raises(VerificationFailed, match=expect), \
            fetched(source, config=cfg, clients=clients):
        pytest.fail("unreachable")
    # the honest bomb is refused from its index before xz -d runs; the liar is cut at 64 MiB
    assert written == ([] if claim is None else [64 * MiB])
    assert _work_entries(cfg) == []


@pytest.mark.slow  # runs qemu-img
def test_a_qcow2_larger_than_the_limit_is_refused_before_converting(
        koji_hub, make_config, clients, tmp_path):
    cfg = make_config(uploader={"image_types": ["qcow2"], "max_disk_mib": 64})
    big = tmp_path / f"{NAME}.x86_64.qcow2"
    subprocess.run(["qemu-img", "create", "-f", "qcow2", str(big), "100T"], check=True,
                   capture_output=True)
    bid = koji_hub.add_image_build(files={"x86_64": {big.name: big}})
    (source,) = build_images(bid, config=cfg, session=clients.koji)
    with pytest.raises(VerificationFailed, match="would be 109951162777600 bytes"), \
            fetched(source, config=cfg, clients=clients):
        pytest.fail("unreachable")
    assert _work_entries(cfg) == []


@pytest.mark.slow  # runs qemu-img
def test_qcow2_with_a_backing_file_is_refused(koji_hub, make_config, clients, raw_image,
                                              tmp_path):
    cfg = make_config(uploader={"image_types": ["qcow2"]})
    overlay = tmp_path / f"{NAME}.x86_64.qcow2"
    subprocess.run(["qemu-img", "create", "-f", "qcow2", "-F", "raw", "-b",
                    str(raw_image.path), str(overlay)], check=True, capture_output=True)
    bid = koji_hub.add_image_build(files={"x86_64": {overlay.name: overlay}})
    (source,) = build_images(bid, config=cfg, session=clients.koji)
    # made into a raw disk, or kept as fetched for a target that reads the file (Glance)
    for raw, keep_file in ((True, False), (False, True)):
        with pytest.raises(VerificationFailed, match="backing or data file"), \
                fetched(source, config=cfg, clients=clients, raw=raw, keep_file=keep_file):
            pytest.fail("unreachable")
        assert _work_entries(cfg) == []


@pytest.mark.slow  # runs qemu-img
def test_a_kept_file_is_the_verified_download_beside_the_raw_disk(koji_hub, make_config,
                                                                   clients, raw_image, tmp_path):
    cfg = make_config(uploader={"image_types": ["raw", "qcow2"]})
    qcow2 = tmp_path / f"{NAME}.x86_64.qcow2"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw_image.path),
                    str(qcow2)], check=True)
    bid = koji_hub.add_image_build(files={"x86_64": {f"{NAME}.x86_64.raw": raw_image.path,
                                                     qcow2.name: qcow2}})
    served = {"raw": raw_image.sha256, "qcow2": sha256_file(qcow2)}
    for source in build_images(bid, config=cfg, session=clients.koji):
        for raw in (True, False):
            with fetched(source, config=cfg, clients=clients, raw=raw,
                         keep_file=True) as image:
                # a plain raw is linked into the raw disk, not moved away from file_path
                assert sha256_file(image.file_path) == served[source.image_type]
                assert image.source.sha256 == served[source.image_type]
                if raw:
                    assert sha256_file(image.raw_path) == raw_image.sha256
                else:
                    assert image.raw_path is None
        assert _work_entries(cfg) == []


def test_files_on_a_tls_hub_are_fetched_with_koji_serverca(make_config, raw_xz_image):
    """topurl on a hub with a private CA: koji.serverca verifies the file server too, and
    without it the certificate is refused (no silent fallback to an unverified fetch)."""
    from uploader.pipeline import make_clients

    hub = KojiHub(tls=True)
    try:
        tid = hub.add_image_task(files={"x86_64": {f"{NAME}.x86_64.raw.xz": raw_xz_image.path}})
        base = {"hub": hub.url, "topurl": hub.topurl}
        trusted = make_config(koji={**base, "serverca": hub.ca_cert})
        clients = make_clients(trusted, [])
        (source,) = task_images(tid, config=trusted, session=clients.koji)
        with fetched(source, config=trusted, clients=clients) as image:
            assert sha256_file(image.raw_path) == raw_xz_image.raw.sha256

        untrusted = make_config(koji={**base, "serverca": ""})
        untrusted_clients = make_clients(untrusted, [])
        with (pytest.raises((TransientError, VerificationFailed, BadInput)) as err,
              fetched(source, config=untrusted, clients=untrusted_clients)):
            pass
        assert "certificate" in str(err.value).lower() or "ssl" in str(err.value).lower()
    finally:
        hub.close()
