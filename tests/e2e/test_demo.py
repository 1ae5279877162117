"""`make demo` itself, on a stack of its own (own directory, port block, exchange and database):
it must end OK, print where the locator, a history page and the feeds are, and those must be
served as the issue asks; its Azure gallery versions and GCE images are read back from the
stand-ins; a second run on the same stack adds nothing; `make demo-stop` then names every
process it stopped with its PID."""

from __future__ import annotations

import os
import pathlib
import re
import socket
import subprocess
import sys
import urllib.parse

import feedparser
import pytest
import requests

from standins import REPO_ROOT, cloud_stack
from standins import local_stack as st

pytestmark = pytest.mark.slow

DEMO_TIMEOUT = 1200  # seconds: a fresh stack plus 22 images through AWS, downloads, Glance,
# the registry, Azure and GCE
PORTS = 12  # the stack's port block (standins.local_stack, standins.cloud_stack)


def _free_block(first: int = 5700, size: int = PORTS) -> int:
    """A base port with ``size`` free ports after it (nothing else of ours uses this range)."""
    for base in range(first, first + 400, 20):
        try:
            for port in range(base, base + size):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise AssertionError("no free block of ports for the demo stack")


@pytest.fixture
def demo_stack(tmp_path, pipeline_parts):
    port = _free_block()
    env = {**os.environ, "FEDIMG_DEMO_DIR": str(tmp_path / "demo"), "FEDIMG_DEMO_PORT": str(port)}
    stack = st.Stack(root=tmp_path / "demo", port=port, exchange=f"fedimg-demo-{port}",
                     database=f"fedimg_demo_{port}")
    yield env, stack
    st.reset(stack, say=lambda _: None)  # every process, the database and the queues it made


def _demo(env: dict[str, str]) -> str:
    proc = subprocess.run([sys.executable, "deploy/local/demo.py"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=DEMO_TIMEOUT)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return out


def _gallery_versions(stack: st.Stack) -> dict[str, dict[str, str]]:
    """'<definition>/<version>' -> region -> replication state, from the gallery's API."""
    return {key: {s["region"]: s["state"]
                  for s in version["properties"]["replicationStatus"]["summary"]}
            for key, version in cloud_stack.gallery_versions(stack).items()}


def test_make_demo_shows_every_section_and_demo_stop_names_the_pids(demo_stack):
    env, stack = demo_stack
    out = _demo(env)
    assert re.search(r"^fedimg demo: OK in \d+s", out, re.MULTILINE)
    urls = dict(re.findall(r"^(locator|history|feeds) +(http://\S+)", out, re.MULTILINE))
    assert set(urls) == {"locator", "history", "feeds"}, out[-3000:]

    locator = requests.get(urls["locator"], timeout=30)
    assert locator.status_code == 200
    for channel in ("release", "candidate", "weekly", "nightly"):
        assert f'id="channel-{channel}"' in locator.text
    assert locator.text.count("<tr data-release=") >= 4 * 3  # four channels x three regions

    # each compose's Generic qcow2 (2 composes x 2 arches) is public in both Glance clouds,
    # and the release page shows each Glance id
    glance = re.findall(r"^  (demo-cloud-[ab])  (Fedora-Cloud-Base-Generic-44-\S+)  "
                        r"([0-9a-f-]{36})  public$", out, re.MULTILINE)
    assert len(glance) == 8 and {c for c, _, _ in glance} == {"demo-cloud-a", "demo-cloud-b"}
    release = requests.get(urls["locator"].rsplit("/", 1)[0] + "/release-44.html", timeout=30)
    assert all(f'data-copy="{image_id}"' in release.text for _, _, image_id in glance)

    # each compose's Azure image (2 composes x 2 arches) is a gallery image version replicated
    # to the gallery's region and the two configured ones; each GCE image is READY in the
    # family of its release and arch; the summary and the release page show them
    versions = _gallery_versions(stack)
    day = re.search(r"^  Fedora-44-(\d{8})\.0: ", out, re.MULTILINE)[1]
    assert sorted(versions) == [f"Fedora-Cloud-44-{arch}/44.{day}.{respin}"
                                for arch in ("Arm64", "x64") for respin in (0, 1)]
    assert all(v == {"eastus": "Completed", "eastus2": "Completed", "westeurope": "Completed"}
               for v in versions.values()), versions
    for key in versions:
        assert re.search(rf"^  {re.escape(key)} +eastus:Completed eastus2:Completed "
                         r"westeurope:Completed$", out, re.MULTILINE), key
    gce = cloud_stack.gce_images(stack)
    assert sorted((i["family"], i["status"]) for i in gce.values()) == [
        ("fedora-cloud-44", "READY")] * 2 + [("fedora-cloud-44-arm64", "READY")] * 2
    for name, image in gce.items():
        assert re.search(rf"^  {name} +family {image['family']}  READY$", out, re.MULTILINE)
        assert f'class="gce-image">{name}<' in release.text
    assert release.text.count("/CommunityGalleries/") >= 4 * 3  # 4 versions x 3 regions

    history = requests.get(urls["history"], timeout=30)
    assert history.status_code == 200
    assert len(re.findall(r'<tr data-name="[^"]*-\d{8}\.n\.0\.', history.text)) == 2

    feed_base = urls["feeds"].rsplit("/", 1)[0]
    for name in ("all", "release", "candidate", "weekly", "nightly"):
        feed = feedparser.parse(requests.get(f"{feed_base}/{name}.atom", timeout=30).content)
        assert not feed.bozo and feed.version == "atom10" and feed.entries, name
    release = feedparser.parse(requests.get(f"{feed_base}/release.atom", timeout=30).content)
    assert all(e.title.startswith("Fedora 44 ") for e in release.entries)
    assert urllib.parse.urlsplit(urls["locator"]).port == stack.port + 4

    # the same announcements again (duplicate deliveries): nothing new anywhere
    again = _demo(env)
    assert re.search(r"^Same \d+ AMIs, \d+ files \(same bytes\), 8 Glance images, \d+ registry "
                     r"tags \(same digests\), 4 Azure gallery versions and 4 GCE images as run 1: "
                     r"the repeated announcement changed nothing\.$", again, re.MULTILINE), \
        again[-3000:]
    assert _gallery_versions(stack) == versions
    assert {n: i["id"] for n, i in cloud_stack.gce_images(stack).items()} == {
        n: i["id"] for n, i in gce.items()}

    down = subprocess.run([sys.executable, "deploy/local/stack.py", "down"], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    stopped = re.findall(r"^stopped (\S+) \(pid (\d+)\)$", down.stdout, re.MULTILINE)
    assert {name for name, _ in stopped} == {s.name for s in st.services(stack)}, down.stdout
    for _, pid in stopped:
        stat = pathlib.Path(f"/proc/{pid}/stat")
        assert not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"
    assert down.stdout.strip().splitlines()[-1].startswith(
        f"stack down: stopped {len(stopped)} processes")
