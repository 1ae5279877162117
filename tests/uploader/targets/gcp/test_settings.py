"""The [gcp] section: owned by the target, validated with shared.config.section, documented."""

import dataclasses
import pathlib
import tomllib

import pytest

from shared.config import parse_config
from shared.errors import ConfigError
from tests.uploader.targets.gcp.conftest import Archive, make_image
from uploader.targets.gcp import naming
from uploader.targets.gcp.settings import GcpConfig, GcpGuestOsFeatures, gcp_config

EXAMPLE = pathlib.Path(__file__).resolve().parents[4] / "deploy" / "fedimg.toml.example"


def test_example_documents_every_key_and_loads():
    raw = tomllib.loads(EXAMPLE.read_text())["gcp"]
    assert set(raw) == {f.name for f in dataclasses.fields(GcpConfig)}
    assert set(raw["guest_os_features"]) == {f.name for f in dataclasses.fields(
        GcpGuestOsFeatures)}
    cfg = gcp_config(parse_config(tomllib.loads(EXAMPLE.read_text()), str(EXAMPLE)))
    assert cfg.project and cfg.bucket and cfg.public


@pytest.mark.parametrize("table, key, expected", [
    ({"bucket": "b"}, "gcp.project", "missing (required)"),
    ({"project": "p", "bucket": "b", "public": "yes"}, "gcp.public", "expected true or false"),
    ({"project": "p", "bucket": "b", "regions": []}, "gcp.regions", "unknown key"),
    ({"project": "p", "bucket": "b", "guest_os_features": {"s390x": []}},
     "gcp.guest_os_features.s390x", "unknown key"),
])
def test_bad_section_names_file_and_key(table, key, expected):
    cfg = parse_config({"uploader": {"targets": ["gcp"]}, "gcp": table}, "fedimg.toml")
    with pytest.raises(ConfigError) as err:
        gcp_config(cfg)
    assert str(err.value).startswith(f"fedimg.toml: {key}: {expected}")


@pytest.mark.parametrize("name, channel_family", [
    ("Fedora-Cloud-Base-GCE-43-1.6.x86_64", ("fedora-cloud-base-gce-43-1-6-x86-64",
                                            "fedora-cloud-43")),
    ("Fedora-Cloud-Base-GCE-43-1.6.aarch64", ("fedora-cloud-base-gce-43-1-6-aarch64",
                                             "fedora-cloud-43-arm64")),
    ("Fedora-Cloud-Base-GCE-Rawhide-20240829.n.1.aarch64",
     ("fedora-cloud-base-gce-rawhide-20240829-n-1-aarch64", "fedora-cloud-rawhide-nightly-arm64")),
])
def test_names_and_families(name, channel_family, tmp_path):
    source = make_image(Archive(tmp_path / "x", "ab" * 32), name,
                        compose_id="Fedora-43-20251023.0").source
    gcp = GcpConfig(project="p", bucket="b")
    assert (naming.image_name(source), naming.family(source, gcp)) == channel_family


def test_a_long_name_is_cut_with_a_hash_and_stays_valid(tmp_path):
    long = "Fedora-Cloud-Base-GCE-Rawhide-20240829.n.1-with-a-much-longer-label-than-usual.x86_64"
    a = make_image(Archive(tmp_path / "x", "ab" * 32), long).source
    name = naming.image_name(a)
    assert len(name) <= 63 and name[0].isalpha() and name[-1].isalnum()
    assert naming.labels(a)[naming.LABEL_SHA256] == ("ab" * 32)[:63]
