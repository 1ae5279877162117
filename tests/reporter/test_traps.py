"""A datagrepper that lies cannot make fedimg-report publish a wrong report or run forever: page
counts that keep growing, a page served in place of another, rows outside their window, a
redirect to another host end the run with one clear line and exit 1 (the site left as it was);
messages dated in the future are set aside and never move the checkpoint."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import uuid
from typing import Any

import pytest

from reporter.history import History
from reporter.paging import budget
from reporter.run import run
from shared.config import ReporterConfig
from shared.errors import HistoryError
from standins.datagrepper_emulator import EmulatorServer, RawHistory, dumps, row
from standins.synthetic_history import PREFIX, rows

REPO = pathlib.Path(__file__).resolve().parents[2]
START = 1_700_000_000.0
NOW = START + 86400 * 30
JSON = {"Content-Type": "application/json"}


def _history(n: int = 450) -> RawHistory:
    return RawHistory(list(rows(n, START, 86400 * 20)))


def _client(url: str, **kw: Any) -> History:
    kw = {"backoff": 0.001, "retries": 2, "concurrency": 2, "window_days": 100,
          "max_pages": 10, "categories": ("fedimg",), **kw}
    return History(url, **kw)


def _page(query: dict[str, list[str]]) -> int:
    return int(query["page"][0])


def _cli(out: pathlib.Path, url: str) -> subprocess.CompletedProcess:
    cfg = out.parent / "fedimg.toml"
    cfg.write_text(f'[reporter]\ndatagrepper = "{url}"\nsince = "2023-11-01"\nretries = 2\n'
                   "timeout = 10\nwindow_days = 400\n")
    return subprocess.run(
        [sys.executable, "-m", "reporter.cli", "--config", str(cfg), "--output", str(out)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd=out.parent)


def _published(tmp_path: pathlib.Path, history: RawHistory) -> tuple[pathlib.Path, bytes]:
    """A site made from the honest history, and its images.json."""
    out = tmp_path / "site"
    with EmulatorServer(history) as honest:
        assert _cli(out, honest.url).returncode == 0
    return out, (out / "images.json").read_bytes()


def _error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    [line] = [x for x in proc.stderr.splitlines() if x.startswith("error:")]
    assert "was left as it was" in line
    return line


def test_page_one_served_in_place_of_page_two_fails_the_run(tmp_path):
    history = _history()
    out, before = _published(tmp_path, history)

    def page_one_again(query, status, doc):
        if _page(query) == 2:
            status, doc = history.answer({**query, "page": ["1"]})
        return status, JSON, dumps(doc)

    with EmulatorServer(history, tamper=page_one_again) as lying:
        line = _error_line(_cli(out, lying.url))
    assert "page 2 repeats a row of page 1" in line
    assert (out / "images.json").read_bytes() == before


def test_pages_that_overlap_are_read_again_then_refused(tmp_path):
    history = _history()

    def overlapping(query, status, doc):
        if _page(query) == 2:  # the last rows of page 1 again, then the start of page 2
            _, first = history.answer({**query, "page": ["1"]})
            doc = {**doc, "raw_messages": first["raw_messages"][-10:] + doc["raw_messages"][:90]}
        return status, JSON, dumps(doc)

    with EmulatorServer(history, tamper=overlapping) as lying:
        client = _client(lying.url, retries=2)
        with pytest.raises(HistoryError, match="could not be read consistently .3 attempts."):
            client.fetch(START - 10, NOW)
        pages = {int(q["page"][0]) for q in lying.queries}
        assert len(pages) > 2
        # three attempts of the window, each asking every page once (and nothing more)
        assert len(lying.queries) == 3 * len(pages)


@pytest.mark.parametrize("grow", [True, False], ids=["growing", "constant-lie"])
def test_page_counts_that_do_not_add_up_cost_a_bounded_number_of_requests(tmp_path, grow):
    history = _history()
    full_page = history.answer({"category": ["fedimg"], "start": [str(START)],
                                "end": [str(NOW)], "rows_per_page": ["100"],
                                "order": ["asc"], "page": ["1"]})[1]["raw_messages"]
    answers = {"n": 0}

    def claims(query, status, doc):
        answers["n"] += 1
        pages = 50 + answers["n"] if grow else 50  # every window claims 50 (or more) pages
        start, end = float(query["start"][0]), float(query["end"][0])
        inside = [dict(r, timestamp=start, msg_id=str(uuid.uuid4())) for r in full_page]
        doc = {"raw_messages": inside if end - start >= 0 else [], "pages": pages,
               "total": pages * 100, "count": 100}
        return 200, JSON, dumps(doc)

    with EmulatorServer(history, tamper=claims) as lying:
        client = _client(lying.url, max_pages=5, concurrency=1, window_days=400)
        with pytest.raises(HistoryError) as err:
            client.fetch(START - 10, NOW)
        if grow:  # a half claiming more than its whole is caught at the first split
            assert "more than the" in str(err.value) and len(lying.queries) <= 4
        else:  # a tree claiming 50 pages everywhere spends its budget, then stops
            assert "needed more than" in str(err.value)
            assert len(lying.queries) <= budget(50, NOW - START + 10, 5) + 1 < 1000


def test_a_first_page_announcing_absurd_pages_is_refused(tmp_path):
    def absurd(query, status, doc):
        return 200, JSON, dumps({**doc, "pages": 10**7, "total": 10**9})

    with EmulatorServer(_history(), tamper=absurd) as lying:
        with pytest.raises(HistoryError, match="at most 10000 are believed"):
            _client(lying.url).fetch(START - 10, NOW)
        assert len(lying.queries) == 1


def test_a_row_outside_its_window_is_refused(tmp_path):
    def elsewhere(query, status, doc):
        moved = [dict(r, timestamp=START - 86400 * 400) for r in doc["raw_messages"][:1]]
        return status, JSON, dumps({**doc, "raw_messages": moved + doc["raw_messages"][1:]})

    with EmulatorServer(_history(50), tamper=elsewhere) as lying, \
            pytest.raises(HistoryError, match="outside it"):
        _client(lying.url).fetch(START - 10, NOW)


def test_a_redirect_to_another_host_is_not_followed(tmp_path):
    history = _history()
    out, before = _published(tmp_path, history)
    with EmulatorServer(history) as other:
        def away(query, status, doc):
            return 302, {"Location": f"{other.url}/raw?category=fedimg"}, b""

        with EmulatorServer(history, tamper=away) as redirecting:
            line = _error_line(_cli(out, redirecting.url))
        assert "refusing redirect" in line and other.url in line
        assert other.queries == []  # nothing was asked of the other host
    assert (out / "images.json").read_bytes() == before


def test_messages_dated_in_the_future_are_set_aside_and_never_move_the_checkpoint(tmp_path):
    history = _history()
    future = row(str(uuid.uuid4()), NOW + 86400, PREFIX + "fedimg.image.published.v1.aws.eu-west-1",
                 {"name": "Fedora-Cloud-Base-AmazonEC2-Rawhide-20231212.n.0.x86_64",
                  "release": "Rawhide", "subvariant": "Cloud_Base", "arch": "x86_64",
                  "channel": "nightly", "compose_id": None, "koji_task_id": 7,
                  "koji_build_id": None, "agent": "fedimg", "region": "eu-west-1",
                  "ami": "ami-0f0f0f0f", "snapshot_id": None, "public": True, "ami_name": "x"})
    history.add([future])

    def ignoring_end(query, status, doc):
        # a source that returns rows after the `end` asked for (a clock or time-zone error)
        status, doc = history.answer({k: v for k, v in query.items() if k != "end"})
        return status, JSON, dumps(doc)

    out = tmp_path / "site"
    cfg = ReporterConfig(since="2023-11-01", overlap=60, retries=1, window_days=400)
    with EmulatorServer(history, tamper=ignoring_end) as server:
        first = run(out, server.url, cfg, now=NOW)
        report = json.loads((out / "images.json").read_text())
        assert first.future == 1
        assert report["history"]["last_timestamp"] <= NOW
        assert "ami-0f0f0f0f" not in (out / "images.json").read_text()
        # a day later that message is no longer in the future: the next run reads it
        second = run(out, server.url, cfg, now=NOW + 86400 + 60)
    assert not second.full and second.future == 0
    assert second.start <= NOW  # the checkpoint stayed before the message
    report = json.loads((out / "images.json").read_text())
    assert report["history"]["last_timestamp"] == NOW + 86400
    assert "ami-0f0f0f0f" in (out / "images.json").read_text()
