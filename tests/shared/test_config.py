import dataclasses
import subprocess
import sys
import textwrap

import pytest

from shared import config
from shared.config import load_config, parse_config, resolve_path
from shared.errors import ConfigError

GOOD = textwrap.dedent(
    """
    [koji]
    hub = "https://koji.example.org/kojihub"
    topurl = "https://kojipkgs.example.org"
    owners = ["releng", "cloud-sig"]
    auth = "gssapi"
    principal = "fedimg/host@EXAMPLE.ORG"
    keytab = "/etc/fedimg/fedimg.keytab"

    [uploader]
    targets = ["aws"]

    [compose]
    base_url = "https://kojipkgs.example.org/compose"

    [aws]
    base_region = "us-east-2"
    regions = ["us-east-2", "eu-west-1"]
    public = false

    [downloads]
    destination = "s3://bucket/prefix"
    base_url = "https://dl.example.org/pub/alt/cloud"

    [reporter]
    datagrepper = "https://apps.example.org/datagrepper"

    [[trigger.jobs]]
    name = "cloud-base-rawhide-weekly"
    schedule = "weekly"
    image_name = "Fedora-Cloud-Base"
    version = "Rawhide"
    target = "f44"
    ksurl = "git+https://pagure.io/fedora-kickstarts.git?#main"
    kickstart = "fedora-cloud-base.ks"
    arches = ["x86_64", "aarch64"]
    """
)


def write(tmp_path, text):
    p = tmp_path / "fedimg.toml"
    p.write_text(text)
    return p


def test_good_file_loads_every_section(tmp_path):
    cfg = load_config(write(tmp_path, GOOD))
    assert cfg.koji.owners == ["releng", "cloud-sig"]
    assert cfg.koji.auth == "gssapi"
    assert cfg.uploader.targets == ["aws"]
    assert cfg.aws.regions == ["us-east-2", "eu-west-1"] and cfg.aws.public is False
    assert cfg.aws.volume_type == "gp3"  # default kept
    assert cfg.downloads.destination == "s3://bucket/prefix"
    job = cfg.job("cloud-base-rawhide-weekly")
    assert job.arches == ["x86_64", "aarch64"] and job.scratch is True
    assert cfg.path == str(tmp_path / "fedimg.toml")


def test_example_config_in_deploy_is_valid_and_documents_every_key():
    import pathlib
    import tomllib


    example = pathlib.Path(__file__).resolve().parents[2] / "deploy" / "fedimg.toml.example"
    cfg = load_config(example)
    raw = tomllib.loads(example.read_text())
    sections = {
        "koji": config.KojiConfig, "uploader": config.UploaderConfig,
        "compose": config.ComposeConfig, "aws": config.AwsConfig,
        "downloads": config.DownloadsConfig, "reporter": config.ReporterConfig,
        "bus": config.BusConfig,
    }
    for name, cls in sections.items():
        documented = set(raw[name])
        declared = {f.name for f in dataclasses.fields(cls)}
        # ssl and gssapi keys cannot both be active; the inactive ones are commented examples
        assert declared - documented <= {"principal", "keytab"}, (name, declared - documented)
    job_keys = set(raw["trigger"]["jobs"][0])
    assert job_keys == {f.name for f in dataclasses.fields(config.JobConfig)}
    assert cfg.trigger.jobs


@pytest.mark.parametrize(
    "text, key, expected",
    [
        ('[aws]\npublic = "yes"\n', "aws.public", "expected true or false"),
        ("[aws]\nregions = \"us-east-1\"\n", "aws.regions", "expected a list"),
        ("[aws]\nregions = [1]\n", "aws.regions[0]", "expected a string"),
        ("[aws]\nmax_parallel_copies = true\n", "aws.max_parallel_copies", "expected an integer"),
        ('[uploader]\ntargets = [1]\n', "uploader.targets[0]", "expected a string"),
        ('[koji]\nauth = "password"\n', "koji.auth", "expected 'ssl' or 'gssapi'"),
        ('[koji]\nhub = "koji.example.org"\n', "koji.hub", "expected an http(s) URL"),
        ('[koji]\nowner = ["releng"]\n', "koji.owner", "unknown key"),
        ('[kojii]\nhub = "https://x"\n', "kojii", "unknown key"),
        ('koji = 3\n', "koji", "expected a table"),
        ('[[trigger.jobs]]\nname = "x"\n', "trigger.jobs[0].schedule", "missing (required)"),
    ],
)
def test_bad_values_name_file_key_and_expectation(tmp_path, text, key, expected):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert message.startswith(f"{path}: {key}: "), message
    assert expected in message
    assert "\n" not in message


def test_unreadable_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[koji\n"))
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)


def test_unknown_job_is_a_config_error():
    cfg = parse_config({})
    with pytest.raises(ConfigError, match="no job named 'x'"):
        cfg.job("x")


def test_path_resolution_order(monkeypatch, tmp_path):
    monkeypatch.delenv("FEDIMG_CONFIG", raising=False)
    assert str(resolve_path(None)) == "/etc/fedimg/fedimg.toml"
    monkeypatch.setenv("FEDIMG_CONFIG", str(tmp_path / "env.toml"))
    assert resolve_path(None) == tmp_path / "env.toml"
    assert resolve_path(tmp_path / "cli.toml") == tmp_path / "cli.toml"


@pytest.mark.parametrize("script", ["uploader.cli", "reporter.cli", "trigger.cli"])
def test_every_command_exits_2_with_one_line_on_a_bad_config(tmp_path, script):
    path = write(tmp_path, '[aws]\npublic = "yes"\n')
    args = {
        "uploader.cli": ["--koji-task", "1", "--dry-run"],
        "reporter.cli": ["--output", str(tmp_path / "out")],
        "trigger.cli": ["--dry-run"],
    }[script]
    proc = subprocess.run(
        [sys.executable, "-m", script, "--config", str(path), *args],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    expected = (f"error: config: {path}: aws.public: expected true or false, got a string "
                "('yes') (named by --config)")
    assert lines == [expected]


def test_configuration_reference_documents_every_config_key():
    import dataclasses
    import pathlib


    page = pathlib.Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
    readme = page.read_text()
    sections = {
        "koji": config.KojiConfig, "uploader": config.UploaderConfig,
        "compose": config.ComposeConfig, "aws": config.AwsConfig,
        "downloads": config.DownloadsConfig, "reporter": config.ReporterConfig,
        "bus": config.BusConfig,
    }
    for name, cls in sections.items():
        for field in dataclasses.fields(cls):
            assert f"| `{name}.{field.name}` |" in readme, f"{name}.{field.name} not in {page}"
    jobs_row = next(line for line in readme.splitlines() if line.startswith("| `trigger.jobs[]`"))
    for field in dataclasses.fields(config.JobConfig):
        assert f"`{field.name}`" in jobs_row, field.name


def test_a_target_owns_its_section_read_with_its_own_dataclass(tmp_path):
    @dataclasses.dataclass(frozen=True)
    class CloudConfig:
        clouds: list[str] = dataclasses.field(default_factory=list)
        visibility: str = "public"

    path = tmp_path / "fedimg.toml"
    path.write_text('[uploader]\ntargets = ["cloud"]\n[cloud]\nclouds = ["a", "b"]\n')
    cfg = config.load_config(path)
    assert config.section(cfg, "cloud", CloudConfig) == CloudConfig(clouds=["a", "b"])
    path.write_text('[uploader]\ntargets = ["cloud"]\n[cloud]\nklouds = ["a"]\n')
    with pytest.raises(ConfigError, match=r"cloud\.klouds.*unknown key"):
        config.section(config.load_config(path), "cloud", CloudConfig)
    # a table named after no configured target is still an unknown key
    path.write_text('[uploader]\ntargets = ["aws"]\n[cloud]\nclouds = ["a"]\n')
    with pytest.raises(ConfigError, match="cloud.*unknown key"):
        config.load_config(path)
