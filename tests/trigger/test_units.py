"""deploy/systemd: the units verify with systemd-analyze, carry the hardening, and their commands
run (the timers' `fedimg-build --schedule ...` selects exactly that schedule's jobs)."""

from __future__ import annotations

import configparser
import json
import os
import pathlib
import shlex
import shutil
import subprocess
import sys

import pytest

from tests.trigger.conftest import LIVEMEDIA, MANUAL, NIGHTLY, WEEKLY, write_config

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
UNITS = REPO_ROOT / "deploy" / "systemd"
SERVICES = ["fedimg-build-nightly.service", "fedimg-build-weekly.service",
            "fedimg-report.service", "fedimg-uploader@.service"]
TIMERS = ["fedimg-build-nightly.timer", "fedimg-build-weekly.timer", "fedimg-report.timer"]
HARDENING = {"ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
             "NoNewPrivileges": "yes", "User": "fedimg"}
# Every key these units may use; anything else is a typo systemd would only warn about.
KNOWN_KEYS = {
    "Unit": {"Description", "Documentation", "Wants", "After"},
    "Service": {"Type", "ExecStart", "Environment", "User", "Group", "UMask", "TimeoutStartSec",
                "TimeoutStopSec", "Restart", "RestartSec", "ReadWritePaths", "PrivateTmp",
                "ProtectSystem", "ProtectHome", "NoNewPrivileges", "PrivateDevices",
                "ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs",
                "ProtectControlGroups", "ProtectClock", "ProtectHostname",
                "RestrictAddressFamilies", "RestrictNamespaces", "RestrictRealtime",
                "RestrictSUIDSGID", "LockPersonality", "CapabilityBoundingSet",
                "SystemCallArchitectures", "SystemCallFilter"},
    "Timer": {"OnCalendar", "RandomizedDelaySec", "AccuracySec", "Persistent", "Unit"},
    "Install": {"WantedBy"},
}


def parse_unit(path: pathlib.Path) -> configparser.ConfigParser:
    """Strict INI read: duplicate sections/keys and lines outside a section are errors."""
    parser = configparser.ConfigParser(strict=True, interpolation=None, delimiters=("=",),
                                       comment_prefixes=("#", ";"), empty_lines_in_values=False)
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string(path.read_text(), source=str(path))
    return parser


def strict_ini_problems(path: pathlib.Path) -> list[str]:
    unit = parse_unit(path)
    problems = []
    for section in unit.sections():
        if section not in KNOWN_KEYS:
            problems.append(f"{path.name}: unknown section [{section}]")
            continue
        problems += [f"{path.name}: unknown key {section}.{key}"
                     for key in unit[section] if key not in KNOWN_KEYS[section]]
    if path.suffix == ".service" and not path.parent.name.endswith(".d"):
        for key in ("Type", "ExecStart"):
            if not unit.get("Service", key, fallback=""):
                problems.append(f"{path.name}: Service.{key} missing")
        exe = shlex.split(unit.get("Service", "ExecStart", fallback="x"))[0]
        if not exe.startswith("/"):
            problems.append(f"{path.name}: ExecStart needs an absolute path, got {exe}")
    if path.suffix == ".timer":
        if not unit.get("Timer", "OnCalendar", fallback=""):
            problems.append(f"{path.name}: Timer.OnCalendar missing")
        if not (UNITS / unit.get("Timer", "Unit", fallback="-")).is_file():
            problems.append(f"{path.name}: Timer.Unit names no unit in deploy/systemd")
    return problems


def all_unit_files() -> list[pathlib.Path]:
    return sorted(p for p in UNITS.rglob("*") if p.is_file())


def test_every_unit_file_is_strict_ini_with_known_keys():
    files = all_unit_files()
    assert {p.name for p in files} >= set(SERVICES + TIMERS)
    problems = [msg for path in files for msg in strict_ini_problems(path)]
    assert problems == []


def _verify_root(tmp_path: pathlib.Path) -> pathlib.Path:
    """A --root for systemd-analyze: the host's stock units, our units in /etc/systemd/system,
    and stand-ins for the console scripts (verify checks that ExecStart= is executable)."""
    root = tmp_path / "root"
    stock = next(p for p in (pathlib.Path("/usr/lib/systemd/system"),
                             pathlib.Path("/lib/systemd/system")) if p.is_dir())
    shutil.copytree(stock, root / "usr/lib/systemd/system", symlinks=True)
    shutil.copytree(UNITS, root / "etc/systemd/system")
    scripts = configparser.ConfigParser()
    scripts.read(REPO_ROOT / "setup.cfg")
    names = [line.split("=")[0].strip()
             for line in scripts["options.entry_points"]["console_scripts"].splitlines()
             if line.strip()]
    (root / "usr/bin").mkdir(parents=True)
    for name in [*names, "fedora-messaging"]:
        exe = root / "usr/bin" / name
        exe.write_text("#!/bin/sh\n")
        exe.chmod(0o755)
    return root


def _systemd_analyze() -> str:
    """The systemd-analyze binary; its absence FAILS the test (a skip would pass unverified)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail("systemd-analyze is not installed: run deploy/local/ensure-system.sh "
                    "(Debian package systemd provides /usr/bin/systemd-analyze)")
    return analyze


def test_units_verify(tmp_path):
    """systemd-analyze verify over every unit: any warning fails."""
    analyze = _systemd_analyze()
    root = _verify_root(tmp_path)
    units = [u for u in SERVICES + TIMERS if "@." not in u]
    units += ["fedimg-uploader@aws.service", "fedimg-uploader@downloads.service",
              "fedimg-uploader@containers.service"]
    proc = subprocess.run([analyze, "verify", f"--root={root}", *units],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout + proc.stderr == "", proc.stdout + proc.stderr


def test_verify_catches_a_typo(tmp_path):
    """The verify run above is not vacuous: a misspelt key or a missing command is reported."""
    analyze = _systemd_analyze()
    root = _verify_root(tmp_path)
    unit = root / "etc/systemd/system/fedimg-report.service"
    unit.write_text(unit.read_text().replace("ProtectSystem=", "ProtectSystm=").replace(
        "/usr/bin/fedimg-report", "/usr/bin/fedimg-reprot"))
    proc = subprocess.run([analyze, "verify", f"--root={root}", "fedimg-report.service"],
                          capture_output=True, text=True, timeout=120)
    output = proc.stdout + proc.stderr
    assert "Unknown key 'ProtectSystm'" in output
    assert "fedimg-reprot is not executable" in output


def test_strict_ini_check_catches_a_typo(tmp_path):
    """The strict INI check is not vacuous either: it names the misspelt key."""
    bad = tmp_path / "bad.service"
    bad.write_text((UNITS / "fedimg-report.service").read_text().replace(
        "ProtectSystem=", "ProtectSystm="))
    assert strict_ini_problems(bad) == ["bad.service: unknown key Service.ProtectSystm"]


@pytest.mark.parametrize("name", SERVICES)
def test_services_are_hardened(name):
    service = parse_unit(UNITS / name)["Service"]
    for key, value in HARDENING.items():
        assert service.get(key) == value, (name, key)
    assert service.get("CapabilityBoundingSet") == ""


@pytest.mark.parametrize("name", TIMERS)
def test_timers_catch_up_and_spread(name):
    timer = parse_unit(UNITS / name)["Timer"]
    assert timer["Persistent"] == "true"
    assert timer["RandomizedDelaySec"]
    assert parse_unit(UNITS / name)["Install"]["WantedBy"] == "timers.target"


def test_uploader_template_runs_one_consumer_per_target():
    service = parse_unit(UNITS / "fedimg-uploader@.service")["Service"]
    assert shlex.split(service["ExecStart"]) == [
        "/usr/bin/fedora-messaging", "--conf", "/etc/fedimg/uploader-%i.toml", "consume"]
    assert service["Environment"] == "FEDIMG_CONFIG=/etc/fedimg/fedimg.toml"
    dropin = parse_unit(UNITS / "fedimg-uploader@downloads.service.d" / "destination.conf")
    assert dropin["Service"]["ReadWritePaths"] == "/srv/pub/alt/cloud"


def test_report_unit_writes_where_it_may():
    service = parse_unit(UNITS / "fedimg-report.service")["Service"]
    argv = shlex.split(service["ExecStart"])
    assert argv == ["/usr/bin/fedimg-report", "--config", "/etc/fedimg/fedimg.toml",
                    "--output", "/srv/web/fedimg"]
    # the report is swapped in beside --output, so its parent must be writable
    assert pathlib.Path(argv[-1]).parent == pathlib.Path(service["ReadWritePaths"])


@pytest.mark.parametrize("schedule, expected", [
    ("nightly", [NIGHTLY["name"], LIVEMEDIA["name"]]),
    ("weekly", [WEEKLY["name"]]),
])
def test_build_units_command_selects_their_schedule(tmp_path, schedule, expected):
    """Run the unit's own ExecStart (with --dry-run and a test config) as a real process."""
    service = parse_unit(UNITS / f"fedimg-build-{schedule}.service")["Service"]
    argv = shlex.split(service["ExecStart"])
    assert argv[:3] == ["/usr/bin/fedimg-build", "--config", "/etc/fedimg/fedimg.toml"]
    cfg = write_config(tmp_path / "fedimg.toml",
                       {"hub": "https://127.0.0.1:9/kojihub", "cert": "/nonexistent.pem"},
                       [WEEKLY, NIGHTLY, LIVEMEDIA, MANUAL])
    argv = [sys.executable, "-m", "trigger.cli", "--config", str(cfg), *argv[3:], "--dry-run",
            "--json"]
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env,
                          cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(line)["job"] for line in proc.stdout.splitlines()] == expected


def test_crontab_example_runs_the_same_commands_as_the_units():
    lines = [line for line in (REPO_ROOT / "deploy/crontab.example").read_text().splitlines()
             if line.strip() and not line.startswith("#") and "=" not in line.split()[0]]
    commands = {" ".join(line.split()[6:]) for line in lines}
    for name in ("fedimg-build-nightly.service", "fedimg-build-weekly.service",
                 "fedimg-report.service"):
        exec_start = parse_unit(UNITS / name)["Service"]["ExecStart"]
        assert exec_start.removeprefix("/usr/bin/") in commands, name
    for line in lines:
        assert line.split()[5] == "fedimg", line  # /etc/cron.d format: the user column
