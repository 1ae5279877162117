"""The downloads target against a directory destination: layout, CHECKSUM, messages,
idempotency, merging with other images, and every way a run can end early."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import threading
import time

import pytest

from shared.images import identify
from tests.harness.disk_images import sha256_file
from uploader.model import Clients, VerifiedImage
from uploader.targets.downloads import publish_downloads
from uploader.targets.downloads.checksum import parse

from .conftest import BASE_URL, NAME, Case, FakeTools, Recorder, alive, config_for

pytestmark = pytest.mark.slow

REPO_ROOT = pathlib.Path(__file__).resolve().parents[4]
PUBLISHED = "fedimg.image.published.v1.downloads"
FAILED = "fedimg.image.failed.v1"


def _run(case: Case, dest: pathlib.Path, emit: Recorder, **downloads):
    return publish_downloads(case.image, config=config_for(dest, **downloads), clients=Clients(),
                             emit=emit)


def _listing(directory: pathlib.Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def _sha256sum_c(directory: pathlib.Path) -> str:
    done = subprocess.run(["sha256sum", "--strict", "-c", "CHECKSUM"], cwd=directory,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_publishes_both_formats_checksum_and_one_message_each(case, dest, emit):
    outcome = _run(case, dest, emit)

    assert outcome.ok and outcome.published == ["qcow2", "raw.tar.xz"]
    out = dest / "Rawhide" / "nightly"
    assert _listing(out) == ["CHECKSUM", f"{NAME}.qcow2", f"{NAME}.raw.tar.xz"]
    assert _sha256sum_c(out).count(": OK") == 2

    entries = parse((out / "CHECKSUM").read_text())
    bodies = emit.bodies(PUBLISHED)
    assert [b["format"] for b in bodies] == ["qcow2", "raw.tar.xz"]
    assert len(emit.messages) == 2
    for body in bodies:
        filename = f"{NAME}.{body['format']}"
        path = out / filename
        assert body["url"] == f"{BASE_URL}/Rawhide/nightly/{filename}"
        assert body["checksum_url"] == f"{BASE_URL}/Rawhide/nightly/CHECKSUM"
        assert body["size"] == path.stat().st_size == entries[filename].size
        assert body["sha256"] == sha256_file(path) == entries[filename].sha256
        assert (body["name"], body["release"], body["arch"], body["channel"],
                body["koji_task_id"]) == (NAME, "Rawhide", "x86_64", "nightly", 139876545)
        assert oct(path.stat().st_mode & 0o777) == "0o644"
    topics = [m.topic for m in emit.messages]
    assert topics == [f"{PUBLISHED}.qcow2.nightly.Cloud_Base.Rawhide.x86_64",
                      f"{PUBLISHED}.raw_tar_xz.nightly.Cloud_Base.Rawhide.x86_64"]


def test_second_run_changes_nothing_and_emits_nothing(case, dest, emit):
    _run(case, dest, emit)
    out = dest / "Rawhide" / "nightly"
    before = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.iterdir()}

    again = Recorder()
    outcome = _run(case, dest, again)

    assert outcome.ok and sorted(outcome.published) == ["qcow2", "raw.tar.xz"]
    assert again.messages == []
    assert {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.iterdir()} == before


def test_checksum_merges_with_other_images_in_the_directory(case, dest, emit):
    out = dest / "Rawhide" / "nightly"
    out.mkdir(parents=True)
    other = "Fedora-Cloud-Base-Generic-Rawhide-20261124.n.0.aarch64.qcow2"
    (out / other).write_bytes(b"another image")
    (out / "CHECKSUM").write_text(
        f"# {other}: 13 bytes\nSHA256 ({other}) = {sha256_file(out / other)}\n"
        f"# deleted-long-ago.qcow2: 5 bytes\nSHA256 (deleted-long-ago.qcow2) = {'0' * 64}\n"
    )

    assert _run(case, dest, emit).ok

    names = sorted(parse((out / "CHECKSUM").read_text()))
    assert names == sorted([other, f"{NAME}.qcow2", f"{NAME}.raw.tar.xz"])
    assert _sha256sum_c(out).count(": OK") == 3


def test_a_damaged_file_is_redone_and_only_it_is_announced(case, dest, emit):
    _run(case, dest, emit)
    out = dest / "Rawhide" / "nightly"
    qcow2 = out / f"{NAME}.qcow2"
    with open(qcow2, "r+b") as f:  # same size, different bytes: only the sha256 can tell
        f.seek(100)
        f.write(b"\xff" * 16)

    again = Recorder()
    assert _run(case, dest, again).ok

    assert [b["format"] for b in again.bodies(PUBLISHED)] == ["qcow2"]
    assert len(again.messages) == 1
    # (-W writes clusters out of order, so a new qcow2 need not be byte-identical to the first)
    assert again.bodies(PUBLISHED)[0]["sha256"] == sha256_file(qcow2)
    _sha256sum_c(out)
    subprocess.run(["qemu-img", "compare", "-f", "raw", "-F", "qcow2", str(case.disk.path),
                    str(qcow2)], check=True)


def test_failed_conversion_fails_only_its_format_and_leaves_no_partial_file(
        case, dest, emit, fake_tools: FakeTools):
    fake_tools.install("xz", 'echo "xz: simulated failure" >&2; cat >/dev/null; exit 1')

    outcome = _run(case, dest, emit)

    assert outcome.published == ["qcow2"] and outcome.failed == ["raw.tar.xz"]
    out = dest / "Rawhide" / "nightly"
    assert _listing(out) == ["CHECKSUM", f"{NAME}.qcow2"]  # no temp file, no partial tar.xz
    assert sorted(parse((out / "CHECKSUM").read_text())) == [f"{NAME}.qcow2"]
    (failure,) = emit.bodies(FAILED)
    assert failure["target"] == "downloads" and failure["destination"] == "raw.tar.xz"
    assert failure["error_kind"] == "conversion" and failure["retryable"] is False
    assert "xz exited with 1" in failure["error"] and "simulated failure" in failure["error"]
    assert [b["format"] for b in emit.bodies(PUBLISHED)] == ["qcow2"]

    # With a working xz, the next run makes only what is missing.
    os.unlink(fake_tools.directory / "xz")
    again = Recorder()
    assert _run(case, dest, again).ok
    assert [b["format"] for b in again.bodies(PUBLISHED)] == ["raw.tar.xz"]
    assert len(again.messages) == 1
    assert _sha256sum_c(out).count(": OK") == 2


def test_timeout_kills_the_conversion_and_reports_it(case, dest, emit, fake_tools: FakeTools):
    fake_tools.install("xz", "exec sleep 600")

    started = time.monotonic()
    outcome = _run(case, dest, emit, timeout=3)

    assert time.monotonic() - started < 30
    assert outcome.failed == ["raw.tar.xz"] and outcome.published == ["qcow2"]
    (failure,) = emit.bodies(FAILED)
    assert failure["error_kind"] == "timeout" and failure["retryable"] is True
    assert not any(alive(pid) for pids in fake_tools.pids().values() for pid in pids)
    assert _listing(dest / "Rawhide" / "nightly") == ["CHECKSUM", f"{NAME}.qcow2"]


def _wait_for_pids(fake_tools: FakeTools, tool: str, timeout: float = 20) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pids := fake_tools.pids().get(tool):
            return pids
        time.sleep(0.05)
    raise AssertionError(f"{tool} never started")


def test_keyboard_interrupt_kills_children_and_removes_temporary_files(
        case, dest, emit, fake_tools: FakeTools, tmp_path):
    fake_tools.install("xz", "exec sleep 600")
    fake_tools.install("qemu-img", 'exec sleep 600')

    def interrupt():
        _wait_for_pids(fake_tools, "xz")
        _wait_for_pids(fake_tools, "qemu-img")
        os.kill(os.getpid(), signal.SIGINT)  # only us: the children do not get this SIGINT

    threading.Thread(target=interrupt, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        _run(case, dest, emit)

    pids = [pid for tool_pids in fake_tools.pids().values() for pid in tool_pids]
    assert len(pids) == 2 and not any(alive(pid) for pid in pids)
    assert _listing(dest / "Rawhide" / "nightly") == []
    assert _listing(tmp_path) == sorted(["bin", "fetched.raw", "pub"])  # no scratch left
    assert emit.messages == []


KILLED_RUN = """
import pathlib, sys
from tests.uploader.targets.downloads.conftest import config_for, make_case
from tests.harness.disk_images import describe_image
from uploader.targets.downloads import publish_downloads
from uploader.model import Clients
case = make_case(describe_image(sys.argv[1]))
publish_downloads(case.image, config=config_for(sys.argv[2]), clients=Clients(),
                  emit=lambda m: None)
"""


def test_sigkilled_run_leaves_no_partial_file_and_no_orphans(
        case, dest, emit, fake_tools: FakeTools):
    fake_tools.install("xz", "exec sleep 600")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(case.disk.path), str(dest)],
                            env=env, cwd=REPO_ROOT)
    try:
        xz_pids = _wait_for_pids(fake_tools, "xz")
        out = dest / "Rawhide" / "nightly"
        deadline = time.monotonic() + 20
        while not any(n.endswith(".qcow2") for n in _listing(out)) and \
                time.monotonic() < deadline:  # the qcow2 was stored: conversion is under way
            time.sleep(0.05)
        proc.kill()
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in xz_pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in xz_pids), "conversion outlived its killed parent"
    names = _listing(out)
    assert f"{NAME}.raw.tar.xz" not in names and "CHECKSUM" not in names
    leftovers = [n for n in names if n.startswith(".") and ".part-" in n]
    assert leftovers  # the killed run could not clean up, but only under a temporary name

    # A later run removes the leftovers at once (nobody holds their lock any more; the killed
    # run's lock died with it) and publishes everything.
    os.unlink(fake_tools.directory / "xz")
    assert _run(case, dest, emit).ok
    assert _listing(out) == ["CHECKSUM", f"{NAME}.qcow2", f"{NAME}.raw.tar.xz"]


def test_a_live_runs_temporary_file_is_left_alone(case, dest, emit):
    """Competing consumers share the directory: a temporary file still locked by its (live)
    writer is not a leftover, however old it looks."""
    from uploader.targets.downloads.destinations import Staging

    out = dest / "Rawhide" / "nightly"
    out.mkdir(parents=True)
    other = Staging(out)
    try:
        busy = other.path_for(f"{NAME}.qcow2")
        os.utime(busy, (time.time() - 3 * 86400,) * 2)  # age alone must not condemn it
        dead = out / f".{NAME}.raw.tar.xz.part-deadbeef"  # no lock: its writer is gone
        dead.write_bytes(b"partial")
        assert _run(case, dest, emit).ok
        names = _listing(out)
        assert busy.name in names and dead.name not in names
    finally:
        other.cleanup()
    assert _listing(out) == ["CHECKSUM", f"{NAME}.qcow2", f"{NAME}.raw.tar.xz"]


def test_both_conversions_run_at_the_same_time(case, dest, emit, fake_tools: FakeTools):
    log = fake_tools.directory / "times"
    for tool in ("qemu-img", "xz"):
        fake_tools.install(tool, f'echo "{tool} start $(date +%s.%N)" >> {log}; sleep 1; '
                                 f'"$REAL" "$@"; rc=$?; echo "{tool} end $(date +%s.%N)" >> {log}; '
                                 "exit $rc")
    assert _run(case, dest, emit).ok
    times = {}
    for line in log.read_text().splitlines():
        tool, event, stamp = line.split()
        times[tool, event] = float(stamp)
    # Each started before the other ended: the intervals overlap.
    assert times["qemu-img", "start"] < times["xz", "end"]
    assert times["xz", "start"] < times["qemu-img", "end"]


def test_identity_that_cannot_be_a_path_fails_both_formats_and_writes_nothing(
        case, dest, emit):
    bad = identify("Fedora-Cloud-Base-Generic-Rawhide-20261125.n.0.x86_64")
    bad = type(bad)(**{**bad.to_dict(), "release": "../../etc"})
    image = VerifiedImage(source=type(case.image.source)(
        **{**case.image.source.__dict__, "identity": bad}), raw_path=case.image.raw_path)

    outcome = publish_downloads(image, config=config_for(dest), clients=Clients(), emit=emit)

    assert outcome.failed == ["qcow2", "raw.tar.xz"] and outcome.published == []
    assert [(b["destination"], b["error_kind"], b["retryable"])
            for b in emit.bodies(FAILED)] == [("qcow2", "source", False),
                                              ("raw.tar.xz", "source", False)]
    assert _listing(dest) == []
