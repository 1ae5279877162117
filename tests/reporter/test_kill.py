"""SIGKILL of fedimg-report at 20 random moments: the site is always the old or the new one,
complete, and the next run removes what the killed one left and succeeds."""

from __future__ import annotations

import os
import pathlib
import random
import signal
import subprocess
import sys
import time
import uuid

import pytest

from standins.datagrepper_emulator import EmulatorServer, RawHistory, row
from standins.synthetic_history import PREFIX, rows
from tests.reporter.histories import site_text

pytestmark = pytest.mark.slow

REPO = pathlib.Path(__file__).resolve().parents[2]
START = 1_700_000_000.0
KILLS = 20


def _start(out: pathlib.Path, cfg: pathlib.Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "reporter.cli", "--config", str(cfg), "--output", str(out),
         *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=out.parent)


def _complete(out: pathlib.Path, cfg: pathlib.Path) -> float:
    t0 = time.monotonic()
    proc = _start(out, cfg)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return time.monotonic() - t0


def test_sigkill_at_random_moments_leaves_the_old_or_the_newsite_text(tmp_path):
    history = RawHistory(list(rows(1500, START, 86400 * 60)))
    rnd = random.Random(15)
    with EmulatorServer(history) as server:
        cfg = tmp_path / "fedimg.toml"
        cfg.write_text(f'[reporter]\ndatagrepper = "{server.url}"\nsince = "2023-11-01"\n'
                       "overlap = 60\nretries = 1\ntimeout = 20\n")
        out = tmp_path / "site"
        duration = _complete(out, cfg)
        old = site_text(out)
        moments = []
        for i in range(KILLS):
            # a new message each time, so the new site differs from the old one
            history.add([row(str(uuid.uuid4()), START + 86400 * 60 + 60 * i,
                             PREFIX + "fedimg.image.published.v1.aws.eu-west-1",
                             {**_body(), "ami": f"ami-{i + 1:08x}"})])
            moment = rnd.uniform(0.05, duration * 1.1)
            moments.append(round(moment, 2))
            proc = _start(out, cfg, *(["--full"] if i % 2 else []))  # full and incremental
            time.sleep(moment)
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=60)
            after_kill = site_text(out)
            _complete(out, cfg)
            new = site_text(out)
            assert after_kill in (old, new), f"kill {i} at {moment:.2f} s of {duration:.2f} s"
            assert f"ami-{i + 1:08x}" in new["images.json"]
            leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".site.")]
            # the lock and the state store; no temporary tree, database or journal
            assert sorted(leftovers) == [".site.lock", ".site.state.sqlite"], (i, leftovers)
            old = new
    # the kills spread over the whole run, start-up to publishing
    assert min(moments) < duration / 4 and max(moments) > duration * 3 / 4, moments


def _body() -> dict:
    return {"name": "Fedora-Cloud-Base-AmazonEC2-Rawhide-20231201.n.0.x86_64",
            "release": "Rawhide", "subvariant": "Cloud_Base", "arch": "x86_64",
            "channel": "nightly", "compose_id": None, "koji_task_id": 1, "koji_build_id": None,
            "agent": "fedimg", "region": "eu-west-1", "snapshot_id": None, "public": True,
            "ami_name": "x"}
