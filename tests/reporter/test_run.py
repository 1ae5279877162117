"""Whole runs when datagrepper fails: the previous site stays as it was; CLI exit codes.

The normal runs (outputs, incremental == full, checkpoints, sstream-query) are in
test_real_datagrepper.py, against the real stack.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import socket
import subprocess
import sys

import pytest
import responses

from reporter.history import History
from reporter.run import run
from shared.config import ReporterConfig
from shared.errors import HistoryError
from standins.datagrepper_emulator import RawHistory
from tests.reporter.histories import (
    T0,
    as_rows,
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


def _client() -> History:
    return History(URL, backoff=0.001, retries=2, concurrency=2, window_days=30, max_pages=2)


@pytest.fixture
def served():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        hist = RawHistory([])
        mock.add_callback(responses.GET, f"{URL}/raw", callback=hist.responses_callback())
        yield hist


def test_outage_leaves_the_previous_site_byte_for_byte(served, samples_dir, tmp_path):
    specs, _ = mixed_history(samples_dir)
    served.add(as_rows(specs))
    out = tmp_path / "site"
    run(out, URL, CONFIG, history=_client(), now=NOW)
    before = tree_hash(out)
    state = (tmp_path / ".site.state.sqlite").read_bytes()
    with responses.RequestsMock() as mock:  # now the server fails every request
        mock.add(responses.GET, f"{URL}/raw", status=500, body='{"error": "internal_error"}')
        for full in (False, True):
            # one window, so the count is exact: 1 request + 2 retries, then the run gives up
            client = History(URL, backoff=0.001, retries=2, window_days=100000,
                             categories=("fedimg",))
            with pytest.raises(HistoryError, match="failed 3 times"):
                run(out, URL, CONFIG, history=client, now=NOW + 60, full=full)
            assert client.stats.requests == 3
        assert len(mock.calls) == 6
    assert tree_hash(out) == before
    assert (tmp_path / ".site.state.sqlite").read_bytes() == state  # rolled back, not half-done
    # no temporary left behind (the lock file stays: it is how runs exclude each other; the
    # state store beside the site is what the next incremental run starts from)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".site.lock", ".site.state.sqlite",
                                                          "site"]


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
