"""fedimg-upload as a real subprocess against the Koji stand-in and served compose metadata."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import pytest

from shared.errors import TargetUnavailable
from shared.files import sha256_file
from tests.uploader.conftest import (
    COMPOSE_43,
    REPO_ROOT,
    compose_sample,
    config_dict,
    serve_compose,
    toml_text,
)
from uploader import targets as target_registry
from uploader.targets import get_handler

NAME = "Fedora-Cloud-Base-Rawhide-20261125.n.0"
KEYS = {"name", "arch", "release", "subvariant", "channel", "source_url", "sha256", "size",
        "targets", "channel_inferred"}


def _run(koji_hub, tmp_path, *args, **sections):
    cfg = tmp_path / "fedimg.toml"
    cfg.write_text(toml_text(config_dict(koji_hub, tmp_path / "work", **sections)))
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    env.pop("FEDORA_MESSAGING_CONF", None)
    return subprocess.run([sys.executable, "-m", "uploader.cli", "--config", str(cfg), *args],
                          capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)


def _lines(proc):
    return [json.loads(line) for line in proc.stdout.splitlines()]


@pytest.mark.slow
def test_dry_run_json_lists_task_build_and_compose_images_and_fetches_nothing(
        koji_hub, tmp_path, samples_dir):
    tid = koji_hub.add_image_task(arches=["x86_64", "aarch64"])
    bid = koji_hub.add_image_build(version="43", release="1.6", arches=["x86_64"],
                                   files={"x86_64": {"Fedora-Cloud-Base-AmazonEC2-43-1.6."
                                                     "x86_64.raw.xz": None}})
    images = compose_sample(samples_dir, COMPOSE_43)
    serve_compose(koji_hub, images, "43/Fedora-43-20251023.0")
    targets = {"uploader": {"targets": ["aws", "downloads"]}}

    task = _run(koji_hub, tmp_path, "--koji-task", str(tid), "--dry-run", "--json", **targets)
    assert task.returncode == 0, task.stderr
    rows = _lines(task)
    assert [(r["name"], r["arch"]) for r in rows] == [
        (f"{NAME}.x86_64", "x86_64"), (f"{NAME}.aarch64", "aarch64")]
    for r in rows:
        assert set(r) == KEYS
        assert (r["release"], r["subvariant"], r["channel"]) == ("Rawhide", "Cloud_Base",
                                                                 "nightly")
        assert r["targets"] == ["aws", "downloads"] and r["sha256"] is None
        assert r["size"] == koji_hub.file_path(r["source_url"]).stat().st_size
    assert "2 image(s) selected (dry run)" in task.stderr

    build = _run(koji_hub, tmp_path, "--koji-build", koji_hub.builds[bid]["nvr"], "--dry-run",
                 "--json", **targets)
    assert build.returncode == 0, build.stderr
    (row,) = _lines(build)
    local = koji_hub.file_path(row["source_url"])
    assert row["source_url"].startswith(f"{koji_hub.topurl}/packages/Fedora-Cloud-Base/43/1.6/")
    assert (row["sha256"], row["size"]) == (sha256_file(local), local.stat().st_size)
    assert (row["release"], row["channel"]) == ("43", "candidate")

    compose = _run(koji_hub, tmp_path, "--compose", "Fedora-43-20251023.0", "--dry-run",
                   "--json", **targets)
    assert compose.returncode == 0, compose.stderr
    rows = _lines(compose)
    assert [r["name"] for r in rows] == ["Fedora-Cloud-Base-AmazonEC2-43-1.6.aarch64",
                                         "Fedora-Cloud-Base-AmazonEC2-43-1.6.x86_64"]
    raw_xz = [e for e in images["payload"]["images"]["Cloud"]["x86_64"] if e["type"] == "raw-xz"]
    assert (rows[1]["sha256"], rows[1]["size"]) == (raw_xz[0]["checksums"]["sha256"],
                                                    raw_xz[0]["size"])
    assert not [r for r in koji_hub.requests if r[0] == "GET" and "/images/" in r[1]]


@pytest.mark.slow
def test_real_run_without_targets_fetches_verifies_and_exits_0(koji_hub, tmp_path,
                                                               raw_xz_image):
    bid = koji_hub.add_image_build(files={"x86_64": {f"{NAME}.x86_64.raw.xz":
                                                     raw_xz_image.path}})
    proc = _run(koji_hub, tmp_path, "--koji-build", str(bid), "--no-messages")
    assert proc.returncode == 0, proc.stderr
    assert f"ok     {NAME}.x86_64: accepted; no targets" in proc.stdout
    assert "1/1 image(s) done" in proc.stdout
    assert ("GET", koji_hub.build_url(bid, f"{NAME}.x86_64.raw.xz").split(
        f"127.0.0.1:{koji_hub.port}")[1]) in koji_hub.requests
    assert list((tmp_path / "work").iterdir()) == []  # work dir cleaned


@pytest.mark.slow
def test_failures_give_exit_1_with_a_reason(koji_hub, tmp_path, raw_xz_image):
    bid = koji_hub.add_image_build(files={"x86_64": {f"{NAME}.x86_64.raw.xz":
                                                     raw_xz_image.path}})
    koji_hub.corrupt(koji_hub.build_url(bid, f"{NAME}.x86_64.raw.xz"), "flip")
    proc = _run(koji_hub, tmp_path, "--koji-build", str(bid), "--no-messages")
    assert proc.returncode == 1
    assert f"FAILED {NAME}.x86_64: not accepted: " in proc.stdout
    assert "sha256 mismatch" in proc.stdout

    other = koji_hub.add_image_task(owner="nobody-special")
    proc = _run(koji_hub, tmp_path, "--koji-task", str(other), "--dry-run", "--json")
    assert proc.returncode == 1 and proc.stdout == ""
    assert "owner 'nobody-special' not in koji.owners" in proc.stderr

    proc = _run(koji_hub, tmp_path, "--koji-task", "5", "--json")
    assert proc.returncode == 2 and "--json needs --dry-run" in proc.stderr


def test_target_registry_reports_missing_targets_clearly(monkeypatch):
    with pytest.raises(TargetUnavailable, match="unknown target 'nosuchcloud'"):
        get_handler("nosuchcloud")
    aws = target_registry.TARGETS["aws"]
    monkeypatch.setitem(target_registry.TARGETS, "aws",
                        dataclasses.replace(aws, publish="uploader.no_such_module:publish"))
    with pytest.raises(TargetUnavailable,
                       match="target 'aws' is not available: cannot import uploader.no_such"):
        get_handler("aws")
    monkeypatch.setitem(target_registry.TARGETS, "aws",
                        dataclasses.replace(aws, publish="uploader.model:no_such_function"))
    with pytest.raises(TargetUnavailable, match="uploader.model:no_such_function is not defined"):
        get_handler("aws")
