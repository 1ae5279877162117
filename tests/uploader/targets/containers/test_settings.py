"""The [containers] section: defaults, the repository map, and one clear line for a bad value."""

from __future__ import annotations

import pytest

from shared.config import parse_config
from shared.errors import ConfigError
from uploader.targets.containers.settings import DEFAULT_REPOSITORIES, containers_config


def _config(**containers):
    return parse_config({"uploader": {"targets": ["containers"]}, "containers": containers},
                        "fedimg.toml")


def test_defaults_name_fedoras_repositories():
    cfg = containers_config(_config())
    assert cfg.registries == [] and cfg.latest_release == ""
    assert cfg.repository("Container_Base") == "fedora"
    assert cfg.repository("Container_Minimal_Base") == "fedora-minimal"
    assert cfg.repository("Container_Toolbox") == "fedora-toolbox"
    assert cfg.repository("bootc") == "fedora-bootc"
    assert cfg.repository("Cloud_Base") is None and cfg.repository(None) is None


def test_configured_repositories_are_merged_over_the_defaults():
    cfg = containers_config(_config(repositories={"Container_Toolbox": "", "WSL_Base": "wsl"}))
    assert cfg.repository("Container_Toolbox") is None  # "" drops a default
    assert cfg.repository("WSL_Base") == "wsl"
    assert cfg.repository("Container_Base") == DEFAULT_REPOSITORIES["Container_Base"]


def test_registries_with_their_credential_files():
    cfg = containers_config(_config(registries=[
        {"name": "quay.io/fedora", "authfile": "/etc/fedimg/quay.json"},
        {"name": "127.0.0.1:5000", "cert_dir": "/etc/fedimg/certs.d", "tls_verify": False}]))
    assert [(r.name, r.authfile, r.cert_dir, r.tls_verify) for r in cfg.registries] == [
        ("quay.io/fedora", "/etc/fedimg/quay.json", "", True),
        ("127.0.0.1:5000", "", "/etc/fedimg/certs.d", False)]


@pytest.mark.parametrize("containers, key, problem", [
    ({"registries": [{"name": "https://quay.io"}]}, "containers.registries[0].name",
     "host[:port][/namespace]"),
    ({"registries": [{"name": "quay.io"}, {"name": "quay.io"}]}, "containers.registries[1].name",
     "listed twice"),
    ({"registries": [{"authfile": "/x"}]}, "containers.registries[0].name", "missing"),
    ({"registries": [{"name": "quay.io", "password": "x"}]},
     "containers.registries[0].password", "unknown key"),
    ({"repositories": {"Container_Base": "Fedora Base"}}, "containers.repositories.Container_Base",
     "repository name"),
    ({"latest_release": "rawhide"}, "containers.latest_release", "release number"),
    ({"timeout": 0}, "containers.timeout", "too small"),
])
def test_a_bad_value_is_one_line_naming_file_and_key(containers, key, problem):
    with pytest.raises(ConfigError) as info:
        containers_config(_config(**containers))
    assert info.value.key == key and problem in info.value.problem
    assert str(info.value).startswith(f"fedimg.toml: {key}: ")


def test_the_deploy_example_documents_every_key_and_is_valid():
    import dataclasses
    import pathlib
    import tomllib

    from shared.config import load_config
    from uploader.targets.containers.settings import ContainersConfig, RegistryConfig

    example = pathlib.Path(__file__).resolve().parents[4] / "deploy" / "fedimg.toml.example"
    raw = tomllib.loads(example.read_text())["containers"]
    assert set(raw) == {f.name for f in dataclasses.fields(ContainersConfig)}
    assert set(raw["registries"][0]) == {f.name for f in dataclasses.fields(RegistryConfig)}
    cfg = containers_config(load_config(example))
    assert [r.name for r in cfg.registries] == ["registry.fedoraproject.org", "quay.io/fedora"]
    assert cfg.latest_release == "43"
