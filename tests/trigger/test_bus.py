"""fedimg-build as the timers run it: a separate process, real RabbitMQ, the Koji hub stand-in."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import time

import pytest

from standins.amqp import fedora_messaging_toml
from standins.processes import free_port
from tests.trigger.conftest import MANUAL, WEEKLY

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
TOPIC = "fedimg.build.started.v1.weekly.Rawhide"


def fedimg_build(*argv, fm_conf) -> subprocess.CompletedProcess:
    env = dict(os.environ, FEDORA_MESSAGING_CONF=str(fm_conf), PYTHONPATH=str(REPO_ROOT))
    return subprocess.run([sys.executable, "-m", "trigger.cli", *map(str, argv)], env=env,
                          capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)


@pytest.mark.slow
def test_weekly_build_done_when(make_config, koji_hub_tls, amqp_config, bus):
    """One buildImageOz with release weekly.20261125 and the configured request, the
    build-started event on RabbitMQ, and nothing at all on the second run."""
    cfg = make_config([WEEKLY])
    first = fedimg_build("--config", cfg, "--date", "2026-11-25", WEEKLY["name"],
                         fm_conf=amqp_config)
    assert first.returncode == 0, first.stderr
    (call,) = koji_hub_tls.calls_to("buildImageOz")
    name, version, arches, target, tree = call.args
    opts = call.kwargs["opts"]
    assert (name, version, target, tree) == ("Fedora-Cloud-Base", "Rawhide", "f44",
                                             WEEKLY["install_tree"])
    assert arches == WEEKLY["arches"] and opts["format"] == WEEKLY["formats"]
    assert opts["release"] == "weekly.20261125"
    assert opts["ksurl"] == WEEKLY["ksurl"] and opts["kickstart"] == WEEKLY["kickstart"]
    assert opts["scratch"] is True
    (task_id,) = [t for t, row in koji_hub_tls.tasks.items() if row["method"] == "image"]

    (msg,) = bus.wait_for(TOPIC)
    assert msg.headers["fedora_messaging_schema"] == "fedimg.build.started.v1"
    body = msg.body
    assert body["task_id"] == task_id and body["job"] == WEEKLY["name"]
    assert body["channel"] == "weekly" and body["release"] == "weekly.20261125"
    assert (body["name"], body["version"], body["target"]) == ("Fedora-Cloud-Base", "Rawhide",
                                                               "f44")
    assert (body["ksurl"], body["kickstart"]) == (WEEKLY["ksurl"], WEEKLY["kickstart"])
    assert body["arches"] == WEEKLY["arches"] and body["formats"] == WEEKLY["formats"]
    assert body["scratch"] is True
    assert body["task_url"] == f"{koji_hub_tls.base_url}/koji/taskinfo?taskID={task_id}"

    second = fedimg_build("--config", cfg, "--date", "2026-11-25", WEEKLY["name"],
                          fm_conf=amqp_config)
    assert second.returncode == 0, second.stderr
    assert second.stdout.startswith(f"exists {WEEKLY['name']}: task {task_id} ")
    assert len(koji_hub_tls.calls_to("buildImageOz")) == 1
    time.sleep(0.5)  # publish is broker-confirmed, so a second message would be queued by now
    assert bus.topics() == [TOPIC]


@pytest.mark.slow
def test_candidate_build_announces_channel_candidate(make_config, koji_hub_tls, amqp_config,
                                                     bus):
    result = fedimg_build("--config", make_config([MANUAL]), "--release", "1.2",
                          MANUAL["name"], fm_conf=amqp_config)
    assert result.returncode == 0, result.stderr
    (msg,) = bus.wait_for("fedimg.build.started.v1.candidate.42")
    assert msg.body["release"] == "1.2" and msg.body["scratch"] is False


@pytest.mark.slow
def test_broker_down_after_start_is_reported_and_not_repeated(make_config, koji_hub_tls,
                                                              tmp_path, amqp_exchange):
    dead = tmp_path / "dead-broker.toml"
    port = free_port()  # nothing listens here
    dead.write_text(fedora_messaging_toml(
        exchange=amqp_exchange,
        amqp_url=f"amqp://guest:guest@127.0.0.1:{port}/%2F?connection_attempts=1&retry_delay=1"))
    cfg = make_config([WEEKLY])
    cfg.write_text(cfg.read_text() + "\n[bus]\npublish_timeout = 3\n")
    result = fedimg_build("--config", cfg, "--date", "2026-11-25", fm_conf=dead)
    assert result.returncode == 1
    (task_id,) = [t for t, row in koji_hub_tls.tasks.items() if row["method"] == "image"]
    assert result.stdout.startswith(f"started {WEEKLY['name']}: ")
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and f"task {task_id} was started but the build-started message " \
        "could not be published" in errors[0], result.stderr
    again = fedimg_build("--config", cfg, "--date", "2026-11-25", "--no-messages", fm_conf=dead)
    assert again.returncode == 0 and again.stdout.startswith("exists ")
    assert len(koji_hub_tls.calls_to("buildImageOz")) == 1
