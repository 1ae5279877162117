"""fedimg-report's normal runs against the real stack: RabbitMQ -> datanommer -> PostgreSQL ->
datagrepper. Faults the real stack cannot produce on demand are in test_run.py and test_history.py.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import pathlib
import re
import subprocess
import sys

import pytest

from reporter.run import run
from shared.config import ReporterConfig
from tests.reporter.histories import (
    IMAGES_IN_MIXED,
    OUR_IDENTITY,
    OUR_NAME,
    PROD,
    SKIPPED_IN_MIXED,
    T0,
    check_report,
    mixed_history,
)

pytestmark = pytest.mark.slow

REPO = pathlib.Path(__file__).resolve().parents[2]
NOW = T0.timestamp() + 3600
# 2025-05-01 .. NOW is 31.5 days: four windows of at most 10 days for each of the two categories,
# none deeper than one page (the mixed history has under 100 rows per category)
WINDOWS = 4 * 2


def tree(root: pathlib.Path) -> dict[str, str]:
    """Every file's text with the `generated` time blanked (the one thing allowed to differ)."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            text = p.read_text()
            text = re.sub(r'"generated": "[^"]*"', '"generated": "-"', text)
            text = re.sub(r"Generated (<time[^>]*>[^<]*</time>|\S+)", "Generated -", text)
            out[str(p.relative_to(root))] = text
    return out


def _config(url: str) -> ReporterConfig:
    return ReporterConfig(datagrepper=url, since="2025-05-01", overlap=30, retries=2, timeout=20,
                          window_days=10, max_pages=1)


def _report(out: pathlib.Path, url: str, cfg: pathlib.Path, *extra: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "reporter.cli", "--config", str(cfg), "--output", str(out),
         "--datagrepper", url, *extra],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=out.parent,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _publish(dg, specs) -> None:
    """fedmsg-era topics go in as fedmsg-era rows (NULL headers), the rest through the bus."""
    legacy = [s for s in specs if s[0].startswith("org.fedoraproject.prod.fedimg.image.")
              and s[0].rsplit(".", 1)[1] in ("upload", "copy", "publish", "test")]
    for topic, body, sent_at in legacy:
        dg.insert_legacy(topic, body, sent_at, agent_name="fedimg")
    dg.publish_and_wait([s for s in specs if s not in legacy])


def test_full_run_writes_every_output(datagrepper_empty, samples_dir, tmp_path):
    dg = datagrepper_empty
    specs, expected = mixed_history(samples_dir)
    _publish(dg, specs)
    out = tmp_path / "site"
    result = run(out, dg.url, _config(dg.url), now=NOW)
    assert result.full and result.images == IMAGES_IN_MIXED
    assert result.fetched == len(specs) and result.requests == WINDOWS
    report = json.loads((out / "images.json").read_text())
    assert report["schema"] == "fedimg.report/1"
    assert report["history"] == {"source": dg.url, "messages_read": len(specs),
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
            "streams/v1/index.json"} <= {str(p.relative_to(out)) for p in out.rglob("*")}
    assert (tmp_path / ".site.state.sqlite").is_file()  # the state store, beside the site
    assert oct((out / "images.json").stat().st_mode)[-3:] == "644"
    assert oct(out.stat().st_mode)[-3:] == "755"


def _fetched(stdout: str) -> int:
    [n] = re.findall(r"(\d+) messages fetched", stdout)
    return int(n)


def test_incremental_run_equals_full_run(datagrepper_empty, samples_dir, tmp_path):
    dg = datagrepper_empty
    specs, expected = mixed_history(samples_dir)
    first, rest = specs[:14], specs[14:]
    _publish(dg, first)
    cfg = tmp_path / "fedimg.toml"
    cfg.write_text('[reporter]\nsince = "2025-05-01"\noverlap = 30\nretries = 2\ntimeout = 20\n'
                   'window_days = 10\nmax_pages = 1\n')
    inc, full = tmp_path / "inc", tmp_path / "full"
    out = _report(inc, dg.url, cfg)
    assert "full run" in out and _fetched(out) == len(first)

    _publish(dg, rest)
    # a late arrival: stamped before the checkpoint (inside the overlap), stored after it
    checkpoint = json.loads((inc / "images.json").read_text())["history"]["last_timestamp"]
    from shared.messages import AwsRegionPublishedV1

    late = AwsRegionPublishedV1.from_body({**OUR_IDENTITY, "region": "sa-east-1",
                                           "ami": "ami-0a7e0000000000001", "public": True})
    dg.publish_and_wait([(PROD + late.topic, late.body,
                          dt.datetime.fromtimestamp(checkpoint - 10, dt.UTC))])
    out = _report(inc, dg.url, cfg)
    assert "incremental run" in out
    # the new rows, the late one, and what lies in the 30 s overlap (rows are 7 s apart: the
    # checkpoint row and the four before it), re-read and de-duplicated; not the whole history
    assert _fetched(out) == len(rest) + 1 + 5
    _report(full, dg.url, cfg, "--full")
    assert tree(inc) == tree(full)

    report = json.loads((inc / "images.json").read_text())
    expected[OUR_NAME]["aws"]["sa-east-1"] = {"ami": "ami-0a7e0000000000001"}
    check_report(report, expected)
    assert len(report["images"]) == IMAGES_IN_MIXED
    assert report["history"]["source"] == dg.url
    assert report["history"]["messages_read"] == len(specs) + 1
    assert report["history"]["messages_skipped"] == SKIPPED_IN_MIXED
    assert report["history"]["last_timestamp"] == specs[-1][2].timestamp()
    assert report["history"]["last_timestamp"] > T0.timestamp()

    # a run with nothing new changes nothing but the generated time
    out = _report(inc, dg.url, cfg)
    assert "incremental run" in out and _fetched(out) == 5
    assert tree(inc) == tree(full)


def test_a_changed_source_or_a_broken_checkpoint_means_a_full_run(datagrepper_empty,
                                                                   samples_dir, tmp_path, caplog):
    dg = datagrepper_empty
    specs, _ = mixed_history(samples_dir)
    _publish(dg, specs)
    out = tmp_path / "site"
    config = _config(dg.url)
    assert run(out, dg.url, config, now=NOW).full
    assert not run(out, dg.url, config, now=NOW).full
    store = tmp_path / ".site.state.sqlite"
    store.write_text("{not a database")
    with caplog.at_level(logging.WARNING, logger="reporter"):
        assert run(out, dg.url, config, now=NOW).full
    assert "cannot be opened" in caplog.text or "cannot be read" in caplog.text
    assert not run(out, dg.url, config, now=NOW).full
    # the state of the version before the store: state.json inside the site, no store beside it
    store.unlink()
    (out / "state.json").write_text('{"schema": "fedimg.report-state/2"}')
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="reporter"):
        assert run(out, dg.url, config, now=NOW).full
    assert "state of an earlier fedimg-report" in caplog.text
    assert not (out / "state.json").exists() and store.is_file()
    assert not run(out, dg.url, config, now=NOW).full
    # the same server under another name is another source: nothing of the old one is trusted
    other = dg.url.replace("127.0.0.1", "localhost")
    assert other != dg.url
    again = run(out, other, config, now=NOW)
    assert again.full and again.fetched == len(specs)
    assert json.loads((out / "images.json").read_text())["history"]["source"] == other


def test_sstream_query_finds_amis_by_region_arch_release(datagrepper_empty, samples_dir,
                                                          tmp_path):
    dg = datagrepper_empty
    specs, _ = mixed_history(samples_dir)
    _publish(dg, specs)
    out = tmp_path / "site"
    run(out, dg.url, _config(dg.url), now=NOW)
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
    assert [h["id"] for h in sq("crsn=eu-west-1", "arch=x86_64", "release=41")] == [
        "ami-096b0e83fe32a74bb"]
    east2 = sq("crsn=us-east-2", "datatype=image-ids")
    assert [h["id"] for h in east2] == ["ami-123"]
    arm = sq("arch=aarch64", "crsn=us-east-1")
    assert sorted(h["id"] for h in arm) == ["ami-0123456789abcdef0", "ami-0aa0bb0cc0dd0ee0f"]
    qcow = sq("ftype=qcow2", "release=41")
    assert [(int(h["size"]), h["url"].endswith(".qcow2")) for h in qcow] == [(583335936, True)]
    assert sq("crsn=us-east-1", "release=39") == []
