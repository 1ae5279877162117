"""fedimg-gcp-cleanup: the newest N nightlies of each family stay, other channels are never
touched, stale staging objects go; --dry-run changes nothing."""

import datetime

import pytest

from tests.uploader.targets.gcp.conftest import make_config, make_image
from tests.uploader.targets.gcp.test_publish import _gcp
from uploader.model import Clients
from uploader.targets.gcp import publish_gcp
from uploader.targets.gcp.cleanup import cleanup, main
from uploader.targets.gcp.clients import make_clients

pytestmark = pytest.mark.slow


def nightly(day, arch="x86_64"):
    return f"Fedora-Cloud-Base-GCE-Rawhide-202611{day:02d}.n.0.{arch}"


def publish_all(archive, names):
    for name in names:
        compose = "Fedora-43-20251023.0" if "-43-" in name else None
        extra = {"compose_id": compose} if compose else {}
        assert publish_gcp(make_image(archive, name, **extra), config=make_config(),
                           clients=Clients(), emit=lambda m: None).ok


def test_keeps_the_newest_nightlies_per_family_and_never_a_release(gcp, gce_archive):
    names = [nightly(d) for d in (21, 22, 23)] + [nightly(d, "aarch64") for d in (22, 23)] + [
        "Fedora-Cloud-Base-GCE-43-1.6.x86_64"]
    publish_all(gce_archive, names)
    lines = []
    found = cleanup(make_clients(_gcp()), _gcp(), keep=1, say=lines.append)
    removed = sorted(r.name for r in found)
    assert removed == ["fedora-cloud-base-gce-rawhide-20261121-n-0-x86-64",
                       "fedora-cloud-base-gce-rawhide-20261122-n-0-aarch64",
                       "fedora-cloud-base-gce-rawhide-20261122-n-0-x86-64"]
    assert sorted(gcp.images()) == ["fedora-cloud-base-gce-43-1-6-x86-64",
                                    "fedora-cloud-base-gce-rawhide-20261123-n-0-aarch64",
                                    "fedora-cloud-base-gce-rawhide-20261123-n-0-x86-64"]
    assert lines[-1].startswith("removed 3 nightly image(s)")
    assert all(line.startswith("removed image ") for line in lines[:-1])


def test_dry_run_changes_nothing_and_old_staging_objects_go(gcp, gce_archive):
    publish_all(gce_archive, [nightly(21), nightly(22)])
    gc = make_clients(_gcp())
    gc.storage.bucket(gcp.bucket).blob("fedimg-staging/orphan.tar.gz").upload_from_string(b"x")
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=2)
    lines = []
    found = cleanup(gc, _gcp(), keep=1, dry_run=True, now=later, say=lines.append)
    assert {(r.kind, r.name) for r in found} == {
        ("image", "fedora-cloud-base-gce-rawhide-20261121-n-0-x86-64"),
        ("object", f"gs://{gcp.bucket}/fedimg-staging/orphan.tar.gz")}
    assert len(gcp.images()) == 2 and len(gcp.objects()) == 1
    assert all(line.startswith("would remove") for line in lines)
    cleanup(gc, _gcp(), keep=1, now=later, say=lines.append)
    assert len(gcp.images()) == 1 and gcp.objects() == []


def test_command_exits_2_on_a_bad_config_naming_the_key(tmp_path, capsys):
    cfg = tmp_path / "fedimg.toml"
    cfg.write_text('[uploader]\ntargets = ["gcp"]\n[gcp]\nbucket = "b"\n')
    assert main(["--config", str(cfg), "--dry-run"]) == 2
    assert "gcp.project: missing (required)" in capsys.readouterr().err


def test_a_negative_keep_is_refused_before_anything_is_listed(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--keep", "-1"])
    assert exited.value.code == 2
    assert "--keep must not be negative" in capsys.readouterr().err
