"""fedimg-announce on real RabbitMQ: the promotion / QE message reaches the bus and the history."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

from tests.reporter.histories import OUR_NAME, mixed_history

REPO = pathlib.Path(__file__).resolve().parents[2]


def _announce(*args: str, conf: pathlib.Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if conf is not None:
        env["FEDORA_MESSAGING_CONF"] = str(conf)
    return subprocess.run([sys.executable, "-m", "reporter.verdicts", *args],
                          capture_output=True, text=True, timeout=120, env=env)


def test_unclear_identity_is_refused_with_one_line():
    proc = _announce("promote", "Fedora-Something-Else", "--dry-run")
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "--release" in proc.stderr and "--arch" in proc.stderr


def test_dry_run_prints_a_schema_valid_message():
    proc = _announce("qe", "Fedora-Cloud-Base-Generic-41-1.4.x86_64", "--result", "failed",
                     "--suite", "openqa-cloud", "--url", "https://openqa.example.org/t/1",
                     "--agent", "qa-bot", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["topic"] == "fedimg.image.tested.v1.failed.candidate.Cloud_Base.41.x86_64"
    assert out["body"]["result"] == "failed" and out["body"]["agent"] == "qa-bot"


@pytest.mark.slow
def test_promotion_and_qe_reach_the_bus(amqp_config, bus):
    proc = _announce("promote", OUR_NAME, "--note", "Fedora 41 GA", "--agent", "releng",
                     conf=amqp_config)
    assert proc.returncode == 0, proc.stderr
    [msg] = bus.wait_for("fedimg.image.promoted.v1.release.Cloud_Base.41.x86_64")
    assert msg.body == {"name": OUR_NAME, "release": "41", "subvariant": "Cloud_Base",
                        "arch": "x86_64", "channel": "release", "official": True,
                        "agent": "releng", "note": "Fedora 41 GA"}
    assert msg.headers["fedora_messaging_schema"] == "fedimg.image.promoted.v1"

    proc = _announce("qe", OUR_NAME, "--result", "needs_inspection", "--suite", "openqa-cloud",
                     "--agent", "openqa", "--channel", "candidate", conf=amqp_config)
    assert proc.returncode == 0, proc.stderr
    [qe] = bus.wait_for("fedimg.image.tested.v1.*")
    assert qe.body["result"] == "needs_inspection" and qe.body["channel"] == "candidate"


@pytest.mark.slow
def test_broker_down_is_exit_1(tmp_path):
    conf = tmp_path / "fm.toml"
    conf.write_text('amqp_url = "amqp://guest:guest@127.0.0.1:9/%2F"\n')
    proc = _announce("promote", OUR_NAME, "--timeout", "3", conf=conf)
    assert proc.returncode == 1
    assert "not published" in proc.stderr


@pytest.mark.slow
def test_announced_promotion_shows_in_the_next_report(
    datagrepper_empty, amqp_config_factory, samples_dir, tmp_path
):
    """The whole loop: history -> report; announce -> datanommer -> report shows the mark.

    Published with a deployment prefix, as in production: datanommer's category is the 4th
    topic word, and the reporter reads the fedimg category.
    """
    from reporter.run import run
    from shared.config import ReporterConfig

    specs, _ = mixed_history(samples_dir)
    # everything about OUR_NAME except the promotion
    specs = [s for s in specs if ".promoted." not in s[0]]
    datagrepper_empty.publish_and_wait(specs)
    cfg = ReporterConfig(since="2025-05-01", retries=1)
    out = tmp_path / "site"
    run(out, datagrepper_empty.url, cfg)
    [before] = [i for i in json.loads((out / "images.json").read_text())["images"]
                if i["name"] == OUR_NAME]
    assert before["official"] is False and before["channel"] == "candidate"

    count = datagrepper_empty.count()
    conf = amqp_config_factory(queue=None, topic_prefix="org.fedoraproject.test")
    proc = _announce("promote", OUR_NAME, "--agent", "releng", conf=conf)
    assert proc.returncode == 0, proc.stderr
    msg_id = proc.stdout.split()[1].rstrip(":")
    datagrepper_empty.wait_for_ids([msg_id])
    assert datagrepper_empty.count() == count + 1
    result = run(out, datagrepper_empty.url, cfg)
    assert not result.full
    [after] = [i for i in json.loads((out / "images.json").read_text())["images"]
               if i["name"] == OUR_NAME]
    assert after["official"] is True and after["channel"] == "release"
    assert after["promoted"]["agent"] == "releng"
