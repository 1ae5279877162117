"""fedimg-azure-cleanup: the newest N nightly versions of each definition stay, releases are
never touched, stale staging blobs go; --dry-run changes nothing."""

import datetime

import pytest

from tests.uploader.targets.azure.conftest import make_config, make_image
from uploader.model import Clients
from uploader.targets.azure import publish_azure
from uploader.targets.azure.cleanup import cleanup, main
from uploader.targets.azure.clients import make_clients
from uploader.targets.azure.settings import azure_config

pytestmark = pytest.mark.slow


def test_keeps_the_newest_nightlies_and_every_release(azure, azure_vhd):
    cfg = make_config(azure.gallery.url)
    for day in (21, 22, 23):
        image = make_image(azure_vhd, f"Fedora-Cloud-Base-Azure-Rawhide-202611{day}.n.0.x86_64")
        assert publish_azure(image, config=cfg, clients=Clients(), emit=lambda m: None).ok
    release = make_image(azure_vhd, "Fedora-Cloud-Base-Azure-43-1.6.x86_64",
                         compose_id="Fedora-43-20251023.0")
    assert publish_azure(release, config=cfg, clients=Clients(), emit=lambda m: None).ok
    azure_cfg = azure_config(cfg)
    ac = make_clients(azure_cfg)
    if not ac.container.exists():
        ac.container.create_container()
    ac.container.upload_blob("orphan.vhd", b"x" * 512)
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=2)
    lines = []
    dry = cleanup(ac, azure_cfg, keep=1, dry_run=True, now=later, say=lines.append)
    assert sorted(r.name for r in dry) == [
        "Fedora-Cloud-Rawhide-Nightly-x64/0.20261121.0",
        "Fedora-Cloud-Rawhide-Nightly-x64/0.20261122.0", "orphan.vhd"]
    assert len(azure.versions()) == 4 and len(azure.blobs()) == 1
    assert all(line.startswith("would remove") for line in lines)
    cleanup(ac, azure_cfg, keep=1, now=later, say=lines.append)
    assert sorted(azure.versions()) == ["Fedora-Cloud-43-x64/43.20251023.0",
                                        "Fedora-Cloud-Rawhide-Nightly-x64/0.20261123.0"]
    assert azure.blobs() == []
    assert lines[-1].startswith("removed 2 nightly image version(s)")


def test_command_exits_2_on_a_bad_config_naming_the_key(tmp_path, capsys):
    cfg = tmp_path / "fedimg.toml"
    cfg.write_text('[uploader]\ntargets = ["azure"]\n[azure]\nsubscription_id = "s"\n')
    assert main(["--config", str(cfg), "--dry-run"]) == 2
    assert "azure.resource_group: missing (required)" in capsys.readouterr().err


def test_a_negative_keep_is_refused_before_anything_is_listed(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--keep", "-1"])
    assert exited.value.code == 2
    assert "--keep must not be negative" in capsys.readouterr().err
