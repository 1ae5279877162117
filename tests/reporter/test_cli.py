"""fedimg-report as a new user meets it: no config file, a config error, a dead datagrepper."""

from __future__ import annotations

import json
import os
import pathlib
import re
import socket
import subprocess
import sys

import pytest

from shared.config import DEFAULT_PATH

REPO = pathlib.Path(__file__).resolve().parents[2]


def _report(*args: str, env: dict[str, str] | None = None,
            cwd: pathlib.Path | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k != "FEDIMG_CONFIG"}
    return subprocess.run([sys.executable, "-m", "reporter.cli", *args], capture_output=True,
                          text=True, timeout=300, cwd=cwd,
                          env={**base, "PYTHONPATH": str(REPO), **(env or {})})


def _dead_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    return port


@pytest.fixture
def no_default_config():
    assert not pathlib.Path(DEFAULT_PATH).exists(), (
        f"{DEFAULT_PATH} exists on this machine: these tests need it absent")


@pytest.mark.slow
def test_report_runs_without_any_config_file(no_default_config, datagrepper_empty, tmp_path):
    out = tmp_path / "site"
    proc = _report("--datagrepper", datagrepper_empty.url, "--output", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "error" not in proc.stderr
    report = json.loads((out / "images.json").read_text())
    assert report["history"]["source"] == datagrepper_empty.url and report["images"] == []
    assert (out / "index.html").is_file()


def test_a_named_config_file_that_is_missing_says_how_it_was_named(no_default_config, tmp_path):
    missing = tmp_path / "nope.toml"
    by_env = _report("--output", str(tmp_path / "o"), env={"FEDIMG_CONFIG": str(missing)})
    assert by_env.returncode == 2
    assert by_env.stderr.strip().splitlines() == [
        f"error: config: {missing}: file not found (named by $FEDIMG_CONFIG; --config FILE "
        "overrides it)"]
    by_flag = _report("--config", str(missing), "--output", str(tmp_path / "o"))
    assert by_flag.returncode == 2
    assert by_flag.stderr.strip() == f"error: config: {missing}: file not found (named by --config)"
    assert not (tmp_path / "o").exists()


def test_a_command_that_needs_its_config_names_the_flag_and_variable(no_default_config):
    proc = subprocess.run([sys.executable, "-m", "trigger.cli", "--dry-run"], capture_output=True,
                          text=True, timeout=60, env={k: v for k, v in os.environ.items()
                                                      if k != "FEDIMG_CONFIG"})
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"error: config: {DEFAULT_PATH}: file not found (the default; "
                                   "choose another with --config FILE or $FEDIMG_CONFIG)")


def test_a_dead_datagrepper_is_one_readable_line_per_retry(tmp_path):
    config = tmp_path / "fedimg.toml"
    config.write_text('[reporter]\nretries = 2\nsince = "2026-01-01"\nwindow_days = 30\n')
    url = f"http://127.0.0.1:{_dead_port()}"
    out = tmp_path / "site"
    proc = _report("--config", str(config), "--datagrepper", url, "--output", str(out))
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    retries = [ln for ln in lines if "retry" in ln and "WARNING" in ln]
    assert len(retries) == 2, proc.stderr
    for n, line in enumerate(retries, 1):
        assert re.search(rf"datagrepper {url}: reading fedimg 2026-01-01 00:00 UTC \.\. "
                         rf"\d{{4}}-\d\d-\d\d \d\d:\d\d UTC page 1: connection refused; "
                         rf"retry {n} of 2",
                         line), line
    assert not re.search(r"\d{9,}\.\d", proc.stderr), "an epoch time was shown"
    assert "Retrying (" not in proc.stderr  # urllib3's own line is replaced by ours
    assert lines[-1].startswith(f"error: datagrepper {url}/raw failed 3 times")
    assert lines[-1].endswith(f"{out} was left as it was; run the same command again once "
                              "datagrepper answers (it reads history from the last complete "
                              "report on)")
    assert not out.exists()
