"""Whole runs over a served history: outputs, incremental == full, atomic publish, sstream-query."""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import re
import socket
import subprocess
import sys
import uuid

import pytest
import responses

from reporter.history import History, HistoryError
from reporter.run import run
from shared.config import ReporterConfig
from standins.datagrepper_emulator import RawHistory, row
from tests.reporter.histories import (
    IMAGES_IN_MIXED,
    OUR_NAME,
    SKIPPED_IN_MIXED,
    T0,
    as_rows,
    check_report,
    mixed_history,
)

URL = "http://dg.test"
REPO = pathlib.Path(__file__).resolve().parents[2]
CONFIG = ReporterConfig(datagrepper=URL, since="2013-01-01", overlap=30)  # rows are 7 s apart
NOW = T0.timestamp() + 3600


def tree_hash(root: pathlib.Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        h.update(str(p.relative_to(root)).encode())
        if p.is_file():
            h.update(p.read_bytes())
        h.update(oct(p.stat().st_mode).encode())
    return h.hexdigest()


def tree(root: pathlib.Path) -> dict[str, str]:
    """Every file's text with the `generated` time blanked (the one thing allowed to differ)."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            text = p.read_text()
            text = re.sub(r'"generated": "[^"]*"', '"generated": "-"', text)
            text = re.sub(r"Generated \S+", "Generated -", text)
            out[str(p.relative_to(root))] = text
    return out


def _client(**kw) -> History:
    return History(URL, backoff=0.001, retries=2, concurrency=2, window_days=30, max_pages=2,
                   **kw)


@pytest.fixture
def served():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        hist = RawHistory([])
        mock.add_callback(responses.GET, f"{URL}/raw", callback=hist.responses_callback())
        yield hist


def test_full_run_writes_every_output(served, samples_dir, tmp_path):
    specs, expected = mixed_history(samples_dir)
    served.add(as_rows(specs))
    out = tmp_path / "site"
    result = run(out, URL, CONFIG, history=_client(), now=NOW)
    assert result.full and result.images == IMAGES_IN_MIXED
    report = json.loads((out / "images.json").read_text())
    assert report["schema"] == "fedimg.report/1"
    assert report["history"] == {"source": URL, "messages_read": len(specs),
                                 "messages_skipped": SKIPPED_IN_MIXED,
                                 "last_timestamp": specs[-1][2].timestamp()}
    check_report(report, expected)
    for img in report["images"]:
        assert set(img) >= {"name", "release", "subvariant", "arch", "channel", "compose_id",
                            "koji_task_id", "first_seen", "updated", "official", "aws",
                            "downloads", "qe", "failures"}
    latest = json.loads((out / "latest.json").read_text())["latest"]
    keys = [(i["release"], i["subvariant"], i["arch"], i["channel"]) for i in latest]
    assert len(keys) == len(set(keys))
    assert OUR_NAME in [i["name"] for i in latest]
    # F40 Cloud_Base x86_64 nightly exists for AWS and Azure: the newest (Azure) wins in
    # "latest", each cloud keeps its own in "latest_by_cloud"
    f40 = [i["name"] for i in latest if (i["release"], i["arch"], i["subvariant"]) ==
           ("40", "x86_64", "Cloud_Base") and i["channel"] == "nightly"]
    assert f40 == ["Fedora-Cloud-Base-Azure-40-20240501.n.0.x86_64"]
    by_cloud = json.loads((out / "latest.json").read_text())["latest_by_cloud"]
    assert {"Fedora-Cloud-Base-Azure-40-20240501.n.0.x86_64",
            "Fedora-Cloud-Base-AmazonEC2-40-20240501.n.0.x86_64"} <= {i["name"] for i in by_cloud}
    assert {"index.html", "release-41.html", "release-Rawhide.html", "static/style.css",
            "streams/v1/index.json", "state.json"} <= {
        str(p.relative_to(out)) for p in out.rglob("*")}
    assert oct((out / "images.json").stat().st_mode)[-3:] == "644"
    assert oct(out.stat().st_mode)[-3:] == "755"


def test_incremental_run_equals_full_run(served, samples_dir, tmp_path):
    specs, _ = mixed_history(samples_dir)
    rows = as_rows(specs)
    served.add(rows[:12])
    inc, full = tmp_path / "inc", tmp_path / "full"
    run(inc, URL, CONFIG, history=_client(), now=NOW)
    checkpoint = json.loads((inc / "images.json").read_text())["history"]["last_timestamp"]
    # the rest, plus a late arrival stamped inside the overlap window (before the checkpoint)
    # and a re-delivered copy of a message already read
    late = row(str(uuid.uuid4()), checkpoint - 20,
               "org.fedoraproject.prod.fedimg.image.copy",
               {"image_name": OUR_NAME, "destination": "EC2 (sa-east-1)",
                "extra": {"id": "ami-0a7e00000000001"}})
    served.add(rows[12:] + [late, rows[11]])
    counter = _client()
    result = run(inc, URL, CONFIG, history=counter, now=NOW + 60)
    assert not result.full
    # the 11 new rows, the late one, and what lies in the 30 s overlap (re-read, de-duplicated)
    assert result.fetched <= 11 + 1 + 5 < len(served.rows)
    run(full, URL, CONFIG, history=_client(), now=NOW + 60, full=True)
    assert tree(inc) == tree(full)
    report = json.loads((inc / "images.json").read_text())
    [ours] = [i for i in report["images"] if i["name"] == OUR_NAME]
    assert ours["aws"]["sa-east-1"] == {"ami": "ami-0a7e00000000001"}
    assert report["history"]["messages_read"] == len(rows) + 1
    # and a run with nothing new changes nothing but the generated time
    run(inc, URL, CONFIG, history=_client(), now=NOW + 120)
    assert tree(inc) == tree(full)


def test_a_changed_source_or_a_broken_checkpoint_means_a_full_run(served, samples_dir, tmp_path):
    specs, _ = mixed_history(samples_dir)
    served.add(as_rows(specs))
    out = tmp_path / "site"
    run(out, URL, CONFIG, history=_client(), now=NOW)
    (out / "state.json").write_text("{not json")
    assert run(out, URL, CONFIG, history=_client(), now=NOW).full
    assert not run(out, URL, CONFIG, history=_client(), now=NOW).full


def test_outage_leaves_the_previous_site_byte_for_byte(served, samples_dir, tmp_path):
    specs, _ = mixed_history(samples_dir)
    served.add(as_rows(specs))
    out = tmp_path / "site"
    run(out, URL, CONFIG, history=_client(), now=NOW)
    before = tree_hash(out)
    served.add([])  # same history, but now the server fails every request
    broken = RawHistory([])
    with responses.RequestsMock() as mock:
        mock.add(responses.GET, f"{URL}/raw", status=500, body='{"error": "internal_error"}')
        for full in (False, True):
            with pytest.raises(HistoryError):
                run(out, URL, CONFIG, history=_client(), now=NOW + 60, full=full)
    assert tree_hash(out) == before
    assert broken.requests == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]  # no temporary left behind


def _dead_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_cli_with_datagrepper_down_exits_nonzero_and_keeps_dir(served, samples_dir, tmp_path):
    specs, _ = mixed_history(samples_dir)
    served.add(as_rows(specs))
    out = tmp_path / "site"
    run(out, URL, CONFIG, history=_client(), now=NOW)
    before = tree_hash(out)
    cfg = tmp_path / "fedimg.toml"
    cfg.write_text('[reporter]\ndatagrepper = "http://127.0.0.1:9"\nretries = 1\ntimeout = 5\n')
    proc = subprocess.run(
        [sys.executable, "-m", "reporter.cli", "--config", str(cfg), "--output", str(out),
         "--datagrepper", f"http://127.0.0.1:{_dead_port()}"],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=tmp_path,
    )
    assert proc.returncode == 1, proc.stderr
    assert "was left as it was" in proc.stderr
    assert tree_hash(out) == before


@pytest.mark.slow
def test_sstream_query_finds_amis_by_region_arch_release(served, samples_dir, tmp_path):
    specs, _ = mixed_history(samples_dir)
    served.add(as_rows(specs))
    out = tmp_path / "site"
    run(out, URL, CONFIG, history=_client(), now=NOW)
    query = pathlib.Path(sys.executable).parent / "sstream-query"

    def sq(*filters: str) -> list[dict]:
        proc = subprocess.run(
            [sys.executable, str(query), "--json",
             f"file://{out}/streams/v1/index.json", *filters],
            capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    hits = sq("crsn=us-east-1", "arch=x86_64", "release=41")
    assert [(h["id"], h["pubname"], h["virt"], h["root_store"]) for h in hits] == [
        ("ami-0a1a3731a749a16db", OUR_NAME, "hvm", "ebs")]
    assert hits[0]["subvariant"] == "Cloud_Base" and hits[0]["channel"] == "release"
    east2 = sq("crsn=us-east-2", "datatype=image-ids")
    assert [h["id"] for h in east2] == ["ami-123"]
    arm = sq("arch=aarch64", "crsn=us-east-1")
    assert sorted(h["id"] for h in arm) == ["ami-0123456789abcdef0", "ami-0aa0bb0cc0dd0ee0f"]
    qcow = sq("ftype=qcow2", "release=41")
    assert [(int(h["size"]), h["url"].endswith(".qcow2")) for h in qcow] == [(583335936, True)]
    assert sq("crsn=us-east-1", "release=39") == []


@pytest.mark.parametrize("toml, args, message", [
    ('[reporter]\nsince = "last year"\n', [], "reporter.since"),
    ("", ["--datagrepper", "ftp://dg.example.org"], "not an http(s) URL"),
])
def test_cli_bad_settings_exit_2_without_touching_dir(tmp_path, toml, args, message):
    cfg = tmp_path / "fedimg.toml"
    cfg.write_text(toml)
    out = tmp_path / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "reporter.cli", "--config", str(cfg), "--output", str(out), *args],
        capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 2
    assert message in proc.stderr and proc.stderr.count("\n") == 1
    assert not out.exists()
