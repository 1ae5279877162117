"""The [azure] section and the gallery names: owned by the target, validated, documented."""

import dataclasses
import pathlib
import tomllib

import pytest

from shared.config import parse_config
from shared.errors import BadInput, ConfigError
from tests.uploader.targets.azure.conftest import Vhd, make_image
from uploader.targets.azure import naming
from uploader.targets.azure.settings import AzureConfig, azure_config
from uploader.targets.azure.vhd import nonzero_runs

EXAMPLE = pathlib.Path(__file__).resolve().parents[4] / "deploy" / "fedimg.toml.example"
CFG = AzureConfig(subscription_id="s", resource_group="rg", gallery="g", storage_account="a")


def test_example_documents_every_key_and_loads():
    raw = tomllib.loads(EXAMPLE.read_text())
    assert set(raw["azure"]) == {f.name for f in dataclasses.fields(AzureConfig)}
    cfg = azure_config(parse_config(raw, str(EXAMPLE)))
    assert cfg.gallery and cfg.sharing == "community"


def test_a_bad_value_names_file_and_key():
    cfg = parse_config({"uploader": {"targets": ["azure"]}, "azure": {
        "subscription_id": "s", "resource_group": "rg", "gallery": "g", "storage_account": "a",
        "sharing": "public"}}, "fedimg.toml")
    with pytest.raises(ConfigError, match="fedimg.toml: azure.sharing: expected 'private' or "
                       "'community'"):
        azure_config(cfg)


@pytest.mark.parametrize("name, compose_id, definition, version", [
    ("Fedora-Cloud-Base-Azure-43-1.6.x86_64", "Fedora-43-20251023.0", "Fedora-Cloud-43-x64",
     "43.20251023.0"),
    ("Fedora-Cloud-Base-Azure-43-1.6.aarch64", None, "Fedora-Cloud-43-Arm64", "43.1.6"),
    ("Fedora-Cloud-Base-Azure-Rawhide-20240829.n.1.aarch64", "Fedora-Rawhide-20240829.n.1",
     "Fedora-Cloud-Rawhide-Nightly-Arm64", "0.20240829.1"),
    ("Fedora-Cloud-Base-Azure-Rawhide-weekly.20261125.x86_64", None,
     "Fedora-Cloud-Rawhide-Weekly-x64", "0.20261125.0"),
])
def test_definition_and_version_names(name, compose_id, definition, version, tmp_path):
    source = make_image(Vhd(tmp_path, "ab" * 32, tmp_path), name, compose_id=compose_id).source
    assert (naming.definition_name(source, CFG), naming.version_name(source)) == (definition,
                                                                                 version)


def test_an_image_with_no_date_or_label_cannot_name_a_version(tmp_path):
    source = make_image(Vhd(tmp_path, "ab" * 32, tmp_path),
                        "Fedora-Cloud-Base-Azure-Rawhide.x86_64", compose_id=None).source
    with pytest.raises(BadInput):
        naming.version_name(source)


def test_nonzero_runs_merge_neighbours_and_skip_zero_pages():
    page = b"\1" * 512
    data = page + page + bytes(1024) + page
    assert nonzero_runs(data, 4096) == [(4096, page * 2), (4096 + 2048, page)]
    assert nonzero_runs(bytes(8192), 0) == []
