"""Uploads cut off half-way, for real: the uploader SIGKILLed mid-stream, or the network gone
mid-stream (a proxy that closes every connection and refuses new ones). Glance keeps the record
of the broken upload; the next run deletes it and leaves exactly one active image."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading

import pytest

from standins import REPO_ROOT
from standins.glance import clouds_yaml
from standins.processes import wait_until
from standins.tcp_proxy import TcpProxy
from tests.uploader.targets.downloads.conftest import Recorder
from tests.uploader.targets.openstack.conftest import GENERIC, make_config, make_image
from uploader.targets.openstack import publish_openstack

pytestmark = pytest.mark.slow

CLOUD = "cloud-a"
RATE = 128 * 1024  # bytes/s through the proxy: the upload takes seconds, long enough to catch


@pytest.fixture
def proxied(glance_clouds, tmp_path, monkeypatch):
    """cloud-a reached through a slow proxy, in OS_CLIENT_CONFIG_FILE."""
    server = glance_clouds.servers[CLOUD]
    proxy = TcpProxy(("127.0.0.1", server.port), rate=RATE)
    path = tmp_path / "proxied-clouds.yaml"
    path.write_text(clouds_yaml({CLOUD: proxy.url}))
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(path))
    yield proxy
    proxy.stop()


def statuses(glance_clouds) -> dict[str, str]:
    return {i["id"]: i["status"] for i in glance_clouds.servers[CLOUD].images()
            if i["name"] == GENERIC}


def wait_for_saving(glance_clouds, proxy, what) -> str:
    """The id of our image once Glance says it is receiving data, and some has gone through."""
    def saving():
        found = [i for i, s in statuses(glance_clouds).items() if s == "saving"]
        return found[0] if found and proxy.sent_upstream > 256 * 1024 else None
    return wait_until(saving, 60, what, interval=0.05)


def assert_one_active_image(glance_clouds, qcow2_image, dead: str) -> None:
    left = statuses(glance_clouds)
    assert dead not in left, f"the broken upload {dead} is still there: {left}"
    assert list(left.values()) == ["active"], left
    conn = glance_clouds.connect(CLOUD)
    (image_id,) = left
    data = conn.image.download_image(conn.image.get_image(image_id)).content
    assert hashlib.sha256(data).hexdigest() == qcow2_image.sha256


def test_uploader_killed_mid_upload_then_rerun_leaves_one_image(glance_clouds, proxied,
                                                                qcow2_image):
    assert qcow2_image.size > 4 * 256 * 1024, "the image must take a while through the proxy"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.uploader.targets.openstack.upload_run",
         str(qcow2_image.path), CLOUD],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        dead = wait_for_saving(glance_clouds, proxied, "the child's upload to start")
        child.send_signal(signal.SIGKILL)
    finally:
        out, _ = child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL and "FINISHED" not in out, out
    # Glance keeps the record of the broken upload (reset to queued, or still saving)
    wait_until(lambda: statuses(glance_clouds).get(dead) in ("queued", "saving"), 30,
               "Glance to notice the broken upload")

    proxied.rate = None
    outcome = publish_openstack(make_image(qcow2_image), config=make_config([CLOUD]),
                                clients=None, emit=Recorder())
    assert outcome.ok
    assert_one_active_image(glance_clouds, qcow2_image, dead)


def test_network_gone_mid_upload_then_rerun_leaves_one_image(glance_clouds, proxied,
                                                             qcow2_image):
    emit = Recorder()
    result = {}

    def run() -> None:
        result["outcome"] = publish_openstack(make_image(qcow2_image),
                                              config=make_config([CLOUD]), clients=None,
                                              emit=emit)

    worker = threading.Thread(target=run)
    worker.start()
    dead = wait_for_saving(glance_clouds, proxied, "the upload to start")
    proxied.cut()  # openstacksdk's own clean-up (delete the record) cannot get through either
    worker.join(timeout=120)
    assert not worker.is_alive()
    assert result["outcome"].failed == [CLOUD]
    (failure,) = emit.bodies("fedimg.image.failed.v1")
    assert failure["retryable"] is True  # the consumer Nacks: a redelivery will finish it
    assert statuses(glance_clouds).get(dead) in ("queued", "saving")

    proxied.rate = None
    proxied.restore()
    outcome = publish_openstack(make_image(qcow2_image), config=make_config([CLOUD]),
                                clients=None, emit=Recorder())
    assert outcome.ok
    assert_one_active_image(glance_clouds, qcow2_image, dead)
