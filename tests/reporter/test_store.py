"""The state store: an incremental run renders only the pages of images its messages changed,
and the report never depends on how the fold kept its state in memory.

Pages a run did not render are hard links to the previous tree's files, so they keep their inode
numbers; a page rendered again is a new file. Counted, not timed (bench/report_bench.py times it).
"""

from __future__ import annotations

import json
import pathlib
import shutil

import pytest
import responses

from reporter import run as run_module
from reporter.history import History
from reporter.run import run
from shared.config import ReporterConfig
from standins import synthetic_history
from standins.datagrepper_emulator import RawHistory, row
from tests.reporter.histories import site_text

URL = "http://dg.test"
START = 1_700_000_000.0  # 2023-11-14
SPAN = 30 * 86400.0
NOW = START + SPAN + 3600
CONFIG = ReporterConfig(datagrepper=URL, since="2023-11-01", overlap=60)
# pages every run writes: they carry the run's time or are small
ALWAYS = {"images.json", "latest.json", "index.html", "static/style.css", "static/site.js"}


def _client() -> History:
    return History(URL, backoff=0.001, retries=1, concurrency=1, window_days=10, max_pages=50)


@pytest.fixture
def served():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        hist = RawHistory(list(synthetic_history.rows(400, START, SPAN)))
        mock.add_callback(responses.GET, f"{URL}/raw", callback=hist.responses_callback())
        yield hist


def _inodes(root: pathlib.Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_ino for p in root.rglob("*") if p.is_file()}


def _new_region(img: dict, at: float) -> dict:
    """A message giving an existing image an AMI in one more region."""
    body = {k: img[k] for k in ("name", "release", "subvariant", "arch", "channel",
                                "compose_id", "koji_task_id", "koji_build_id")}
    body.update(agent="fedimg", region="ap-south-2", ami="ami-0123456789abcdef0",
                snapshot_id=None, public=True, ami_name=f"{img['name']}-hvm-gp3")
    return row("5b0f1f7e-8c53-4a38-9d55-0f1e2d3c4b5a", at,
               "org.fedoraproject.prod.fedimg.image.published.v1.aws.ap-south-2", body)


def test_an_incremental_run_renders_only_the_pages_of_changed_images(served, tmp_path):
    out = tmp_path / "site"
    assert run(out, URL, CONFIG, history=_client(), now=NOW).full
    report = json.loads((out / "images.json").read_text())
    ours = [i for i in report["images"] if i["channel"] == "nightly" and i["aws"]
            and i["release"] == "Rawhide"]
    img = ours[len(ours) // 2]  # an image in the middle of its family's history
    family = f"history/Rawhide-{img['subvariant']}-{img['arch']}-nightly.html"
    before = _inodes(out)
    assert family in before and "release-Rawhide.html" in before
    assert len([p for p in before if p.startswith(("history/", "release-"))]) >= 4

    served.add([_new_region(img, NOW + 60)])
    result = run(out, URL, CONFIG, history=_client(), now=NOW + 120)
    # the new message, and what the overlap window reads again
    assert not result.full and result.read == report["history"]["messages_read"] + 1
    after = _inodes(out)
    assert after.keys() == before.keys()
    rendered = {p for p in after if after[p] != before[p]}
    feeds_and_streams = {p for p in after if p.startswith(("feeds/", "streams/"))}
    assert rendered == ALWAYS | feeds_and_streams | {family, "release-Rawhide.html"}
    assert "ami-0123456789abcdef0" in (out / family).read_text()

    # and what it wrote is what a full run over the same messages writes
    full = tmp_path / "full"
    assert run(full, URL, CONFIG, history=_client(), now=NOW + 120).full
    assert site_text(out) == site_text(full)


def test_pages_of_a_tree_the_store_did_not_publish_are_not_reused(served, tmp_path):
    out = tmp_path / "site"
    run(out, URL, CONFIG, history=_client(), now=NOW)
    # another program (or an older fedimg-report) rewrites the site in place of ours
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    page = sorted(p for p in _inodes(copy) if p.startswith("history/"))[0]
    (copy / page).write_text("not ours")
    shutil.rmtree(out)
    copy.rename(out)
    run(out, URL, CONFIG, history=_client(), now=NOW + 60)  # nothing new in history
    assert (out / page).read_text() != "not ours"
    full = tmp_path / "full"
    run(full, URL, CONFIG, history=_client(), now=NOW + 60)
    assert site_text(out) == site_text(full)


def test_a_container_tag_that_moves_renders_its_previous_holder_again(served, tmp_path):
    out = tmp_path / "site"
    run(out, URL, CONFIG, history=_client(), now=NOW)
    report = json.loads((out / "images.json").read_text())
    holders = [i for i in report["images"]
               if any("latest" in c["tags"] for c in i["containers"])]
    assert holders, "the synthetic history has container images holding latest"
    last = max((r for r in served.rows if r["topic"].endswith("published.v1.container")),
               key=lambda r: r["timestamp"])
    body = {**last["msg"], "compose_id": "Fedora-39-20231215.n.0", "tags": ["39", "latest"]}
    served.add([row("0d7c5a1e-2f3b-4c4d-8e9f-a0b1c2d3e4f5", NOW + 60, last["topic"], body)])
    before = _inodes(out)
    run(out, URL, CONFIG, history=_client(), now=NOW + 120)
    after = _inodes(out)
    rendered = {p for p in after if after.get(p) != before.get(p)}
    now_report = json.loads((out / "images.json").read_text())
    for img in holders:  # they lost latest to the new compose's images, and their pages show it
        [again] = [i for i in now_report["images"] if i["name"] == img["name"]]
        assert all("latest" not in c["tags"] for c in again["containers"])
        assert f"history/{img['release']}-{img['subvariant']}-{img['arch']}-" \
               f"{img['channel']}.html" in rendered
    full = tmp_path / "full"
    run(full, URL, CONFIG, history=_client(), now=NOW + 120)
    assert site_text(out) == site_text(full)


def test_a_run_that_keeps_few_images_in_memory_writes_the_same_report(served, tmp_path,
                                                                      monkeypatch):
    roomy = tmp_path / "roomy"
    run(roomy, URL, CONFIG, history=_client(), now=NOW)
    # images of older windows go to the store and are loaded again when a row names them
    monkeypatch.setattr(run_module, "CACHE", 3)
    tight = tmp_path / "tight"
    run(tight, URL, CONFIG, history=_client(), now=NOW)
    assert site_text(tight) == site_text(roomy)
