"""The wheel carries the reporter's templates and static files, and building it warns of nothing."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ("setup.cfg", "pyproject.toml", "README.md", "shared", "uploader", "reporter", "trigger")
# a Python warning printed by the build backend ("...Warning: ..."), distutils' "warning: ..."
# lines, and setuptools' boxed notice about data directories that are not declared
WARNING = re.compile(r"Warning\b|\bwarning:|would be ignored|absent from the `packages`")


@pytest.mark.slow  # a real wheel build: several seconds on a loaded machine
def test_wheel_holds_templates_and_static_files_and_builds_without_warnings(tmp_path):
    src = tmp_path / "src"  # a copy, so the build's own files never land in the checkout
    src.mkdir()
    for name in PROJECT:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(ROOT / name, src / name)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--isolated", "--no-index", "--no-deps",
         "--no-build-isolation", "--disable-pip-version-check", "-v", "-w", str(tmp_path / "out"),
         str(src)],
        capture_output=True, text=True, env=env, timeout=300,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    warnings = [line.strip() for line in output.splitlines() if WARNING.search(line)]
    assert warnings == []

    (wheel,) = (tmp_path / "out").glob("fedimg-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    data = {str(p.relative_to(ROOT)) for d in ("reporter/templates", "reporter/static")
            for p in (ROOT / d).iterdir() if p.is_file()}
    assert {"reporter/templates/base.html", "reporter/static/site.js"} <= data
    assert data <= names, sorted(data - names)


def test_readme_lists_exactly_the_system_packages_ensure_system_installs():
    script = (ROOT / "deploy" / "local" / "ensure-system.sh").read_text()
    installed = set(re.findall(r"^\s*\[([a-z0-9][a-z0-9.+-]*)\]=/", script, re.MULTILINE))
    readme = (ROOT / "README.md").read_text()
    listed = re.search(r"`deploy/local/ensure-system\.sh`:\s*([^)]*)\)", readme)
    assert listed, "README no longer names ensure-system.sh with its package list"
    named = {p.strip() for p in listed.group(1).replace("\n", " ").split(",")}
    assert installed and named == installed, (
        f"only in ensure-system.sh: {sorted(installed - named)}; "
        f"only in README: {sorted(named - installed)}")
