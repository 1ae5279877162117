"""No message can break the reporter: every poison seen in history goes through a full and then an
incremental fedimg-report run, served over real HTTP, and both succeed with the poison skipped
and counted (or, for free text, made safe), and the incremental site equal to a full run's.

Fuzzed bodies of every family are in test_fuzz.py.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys
import uuid
from typing import Any

from reporter.atomic_dir import locked, publish
from reporter.run import run
from shared.config import ReporterConfig
from shared.messages import AwsRegionPublishedV1, DownloadPublishedV1
from standins.datagrepper_emulator import EmulatorServer, Placed, RawHistory, RawJSON, row
from tests.reporter.histories import (
    NIGHTLY_IDENTITY,
    NIGHTLY_NAME,
    OUR_IDENTITY,
    OUR_NAME,
    PROD,
    SHA_Q,
    SKIPPED_IN_MIXED,
    T0,
    as_rows,
    check_report,
    mixed_history,
    site_text,
)

REPO = pathlib.Path(__file__).resolve().parents[2]
LEGACY = PROD + "fedimg.image."
FIU = PROD + "fedora_image_uploader.published.v1."
AWS_TOPIC = PROD + AwsRegionPublishedV1.topic_base
DOWNLOAD = PROD + DownloadPublishedV1.topic_base + ".qcow2"
FAILED = PROD + "fedimg.image.failed.v1.aws"
LEGACY_NAME = "Fedora-Cloud-Base-24-20160710.0.x86_64"
CONTAINER = {"architectures": ["x86_64"], "compose_id": "Fedora-40-20240501.n.0",
             "registries": ["quay.io/fedora"], "repository": "fedora", "tags": ["40"]}
AWS_BODY = {**NIGHTLY_IDENTITY, "region": "us-east-1", "ami": "ami-0123456789abcdef0",
            "snapshot_id": None, "public": True, "ami_name": NIGHTLY_NAME}
SURROGATE_ERROR = "copy failed \ud800 \u202e"


UNPLACED = 3  # poisons that cannot be placed in time: counted per run, not in the totals


def _poisons(n: int = 0) -> list[tuple[str, str, Any]]:
    """(label, category, what to serve): rows that once stopped every run, each skipped now.

    Rows that have no msg_id of their own are told apart by content: batch ``n`` differs."""
    download = {**OUR_IDENTITY, "format": "qcow2", "url": "https://dl.example.org/x.qcow2",
                "sha256": SHA_Q, "checksum_url": None}
    legacy_test = {"image_name": LEGACY_NAME, "destination": "EC2 (us-east-1)",
                   "service": "EC2", "extra": {}}
    aws = row("id", 0, AWS_TOPIC, AWS_BODY)
    return [
        ("size 10**400", "fedimg", (DOWNLOAD, {**download, "size": 10**400})),
        ("5000-digit integer", "fedimg", (DOWNLOAD, {**download, "size": RawJSON("9" * 5000)})),
        ("lone surrogate in msg_id", "fedimg", {**aws, "msg_id": f"id-\ud800-{n}"}),
        ("registries null", "fedora_image_uploader",
         (FIU + "container", {**CONTAINER, "registries": None})),
        ("tags an int", "fedora_image_uploader", (FIU + "container", {**CONTAINER, "tags": 5})),
        ("registries a string", "fedora_image_uploader",
         (FIU + "container", {**CONTAINER, "registries": "quay.io/fedora"})),
        ("a 1 MB tag", "fedora_image_uploader",
         (FIU + "container", {**CONTAINER, "tags": ["x" * 1_000_000]})),
        ("legacy test status a list", "fedimg",
         (LEGACY + "test", {**legacy_test, "status": ["completed"]})),
        ("legacy test status an object", "fedimg",
         (LEGACY + "test", {**legacy_test, "status": {"completed": True}})),
        ("timestamp 1e400", "fedimg", {**aws, "timestamp": RawJSON("1e400")}),
        ("timestamp -1e11", "fedimg", {**aws, "timestamp": -1e11}),
        ("name javascript:alert(1) with valid hints", "fedimg",
         (AWS_TOPIC, {**AWS_BODY, "name": "javascript:alert(1)"})),
        ("quote-breaking name", "fedimg",
         (AWS_TOPIC, {**AWS_BODY, "name": 'Fedora-Cloud"><img src=x onerror=alert(1)>'})),
        ("U+202E in the name", "fedimg",
         (AWS_TOPIC, {**AWS_BODY, "name": "Fedora-Cloud-Base-\u202eAmazonEC2-Rawhide-"
                                          "20250601.n.0.aarch64"})),
        ("body a string", "fedimg", (AWS_TOPIC, "not an object")),
        ("body a list", "fedimg", (AWS_TOPIC, [AWS_BODY])),
        ("row not an object", "fedimg", 42 + n),
    ]


def _served(poisons: list[tuple[str, str, Any]], start: float) -> list[Any]:
    """The poisons placed in history from ``start`` on, 7 s apart, each with a fresh msg id."""
    out = []
    for i, (_, category, what) in enumerate(poisons):
        at = start + 7 * i
        if isinstance(what, tuple):
            what = row(str(uuid.uuid4()), at, *what)
        elif isinstance(what, dict):
            what = {**what, "msg_id": what["msg_id"] if what["msg_id"] != "id" else
                    str(uuid.uuid4()), "timestamp": what.get("timestamp", at)}
            if what["timestamp"] == 0:
                what["timestamp"] = at
        out.append(Placed(at, category, what))
    return out


def _sanitized(start: float) -> list[dict]:
    """Rows that are read, with their free text made safe: lone surrogates, bidi overrides."""
    return [row(str(uuid.uuid4()), start, FAILED, {
        **OUR_IDENTITY, "target": "aws", "destination": "ap-south-1", "error_kind": "aws",
        "error": SURROGATE_ERROR + "x" * 5000, "retryable": False})]


HINTED = {**AWS_BODY, "name": "Fedora-Evil", "release": "41", "subvariant": "Cloud_Base",
          "arch": "x86_64", "channel": "release", "region": "eu-west-1", "ami": "ami-0e0e0e0e"}


def _config(tmp: pathlib.Path, url: str) -> pathlib.Path:
    cfg = tmp / "fedimg.toml"
    cfg.write_text(f'[reporter]\ndatagrepper = "{url}"\nsince = "2025-05-01"\noverlap = 30\n'
                   "retries = 1\ntimeout = 20\nwindow_days = 400\nmax_pages = 50\n")
    return cfg


def _report(out: pathlib.Path, cfg: pathlib.Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "reporter.cli", "--config", str(cfg), "--output", str(out),
         *extra], capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=out.parent)


def _size(root: pathlib.Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def test_every_poison_is_skipped_in_a_full_and_an_incremental_run(samples_dir, tmp_path):
    specs, expected = mixed_history(samples_dir)
    good = as_rows(specs)
    poisons = _poisons()
    base = T0.timestamp() + 1000
    history = RawHistory(good)
    with EmulatorServer(history) as server:
        cfg = _config(tmp_path, server.url)
        clean = tmp_path / "clean"
        assert _report(clean, cfg).returncode == 0
        history.add([*_served(poisons, base), *_sanitized(base + 500),
                     row(str(uuid.uuid4()), base + 510, AWS_TOPIC, HINTED)])

        out = tmp_path / "site"
        full = _report(out, cfg)
        assert full.returncode == 0, full.stderr
        assert "full run" in full.stdout
        report = json.loads((out / "images.json").read_text())
        assert report["history"]["messages_skipped"] == SKIPPED_IN_MIXED + len(poisons) - UNPLACED
        assert f"{UNPLACED} rows without a usable time" in full.stdout
        expected[OUR_NAME]["failures"] = [("aws", "ap-south-1"), ("aws", "ap-southeast-7")]
        check_report(report, expected)
        # each poison is named in one warning line
        assert len(re.findall(r"WARNING reporter\.fold: skipping", full.stderr)) >= len(poisons)
        names = {i["name"] for i in report["images"]}
        assert not any("alert" in n or "\u202e" in n for n in names)
        ours = next(i for i in report["images"] if i["name"] == OUR_NAME)
        [error] = [f["error"] for f in ours["failures"] if f["destination"] == "ap-south-1"]
        assert error.startswith("copy failed \ufffd \ufffd") and len(error) == 2000
        # the hinted name is an entry, but neither "latest" nor a simplestreams version
        assert "Fedora-Evil" in names
        latest = (out / "latest.json").read_text() + (out / "streams").joinpath(
            "v1", "org.fedoraproject.cloud:aws.json").read_text()
        assert "Fedora-Evil" not in latest and OUR_NAME in latest
        # a 1 MB tag and 5000 characters of error did not make the site megabytes bigger
        assert _size(out) < _size(clean) + 100_000

        # the same poisons again, later, with one good message: an incremental run
        later = base + 2000
        history.add([*_served(_poisons(1), later), *_sanitized(later + 500),
                     row(str(uuid.uuid4()), later + 600, AWS_TOPIC,
                         {**AWS_BODY, "region": "eu-north-1", "ami": "ami-0f00f00f"})])
        inc = _report(out, cfg)
        assert inc.returncode == 0, inc.stderr
        assert "incremental run" in inc.stdout
        report = json.loads((out / "images.json").read_text())
        assert report["history"]["messages_skipped"] == \
            SKIPPED_IN_MIXED + 2 * (len(poisons) - UNPLACED)
        nightly = next(i for i in report["images"] if i["name"] == NIGHTLY_NAME)
        assert nightly["aws"]["eu-north-1"] == {"ami": "ami-0f00f00f"}

        # and it is exactly what a full run over the same history publishes
        again = tmp_path / "again"
        assert _report(again, cfg, "--full").returncode == 0
        assert site_text(out) == site_text(again)


def test_in_process_runs_survive_the_poisons_too(samples_dir, tmp_path):
    """The same through reporter.run (the digit limit and encodings are this process's)."""
    specs, _ = mixed_history(samples_dir)
    history = RawHistory([*as_rows(specs), *_served(_poisons(), T0.timestamp() + 1000)])
    with EmulatorServer(history) as server:
        cfg = ReporterConfig(datagrepper=server.url, since="2025-05-01", overlap=30,
                             retries=1, window_days=400)
        now = T0.timestamp() + 86400
        first = run(tmp_path / "site", server.url, cfg, now=now)
        assert first.skipped + first.unplaced == SKIPPED_IN_MIXED + len(_poisons())
        assert first.unplaced == UNPLACED
        second = run(tmp_path / "site", server.url, cfg, now=now + 60)
        # the overlap reads the last poisons again: counted for this run, not twice in totals
        assert not second.full and second.skipped == first.skipped and second.unplaced >= 1


def test_leftovers_of_killed_runs_are_removed_by_the_next_run(tmp_path):
    out = tmp_path / "site"
    publish(out, {"a.txt": b"old"})
    stale = tmp_path / ".site.new-abc123"  # a killed run's temporary tree
    (stale / "deep").mkdir(parents=True)
    (stale / "deep" / "big").write_bytes(b"x" * 1000)
    publish(out, {"a.txt": b"new"})
    assert not stale.exists()
    assert (out / "a.txt").read_bytes() == b"new"
    # a fallback swap killed between its two renames: DIR missing, the previous tree aside
    os.rename(out, tmp_path / ".site.old-4242")
    with locked(out):
        assert (out / "a.txt").read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".site.lock", "site"]
