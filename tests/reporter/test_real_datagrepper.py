"""fedimg-report against the real stack: RabbitMQ -> datanommer -> PostgreSQL -> datagrepper."""

from __future__ import annotations

import datetime as dt
import json
import os
import pathlib
import subprocess
import sys

import pytest

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
from tests.reporter.test_run import tree

REPO = pathlib.Path(__file__).resolve().parents[2]


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


@pytest.mark.slow
def test_mixed_history_report_incremental_and_full(datagrepper_empty, samples_dir, tmp_path):
    dg = datagrepper_empty
    specs, expected = mixed_history(samples_dir)
    first, rest = specs[:14], specs[14:]
    _publish(dg, first)
    cfg = tmp_path / "fedimg.toml"
    cfg.write_text('[reporter]\nsince = "2025-05-01"\noverlap = 30\nretries = 2\ntimeout = 20\n'
                   'window_days = 10\nmax_pages = 1\n')
    inc, full = tmp_path / "inc", tmp_path / "full"
    out = _report(inc, dg.url, cfg)
    assert "full run" in out

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

    query = pathlib.Path(sys.executable).parent / "sstream-query"
    proc = subprocess.run([sys.executable, str(query), "--json",
                           f"file://{inc}/streams/v1/index.json", "crsn=eu-west-1",
                           "arch=x86_64", "release=41"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert [h["id"] for h in json.loads(proc.stdout)] == ["ami-096b0e83fe32a74bb"]
