"""deploy/fedora-messaging/: one consumer config per target, loadable by fedora-messaging itself."""

from __future__ import annotations

import pytest
from fedora_messaging import config as fm_config

from shared.config import parse_config
from tests.uploader.conftest import REPO_ROOT
from uploader.consumer import consumer_targets
from uploader.intake.route import BUILD_TOPIC, COMPOSE_TOPIC, TASK_TOPIC
from uploader.targets import TARGETS

DEPLOY = REPO_ROOT / "deploy" / "fedora-messaging"


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_one_quorum_queue_per_target_with_tls_and_prefetch_1(target):
    conf = fm_config.LazyConfig()
    conf.load_config(str(DEPLOY / f"uploader-{target}.toml"))
    assert conf["callback"] == "uploader.consumer:Uploader"
    assert conf["amqp_url"].startswith("amqps://")
    assert set(conf["tls"]) == {"ca_cert", "keyfile", "certfile"}
    assert conf["qos"]["prefetch_count"] == 1
    (queue,) = conf["queues"]
    assert queue == f"fedimg-{target}"
    args = conf["queues"][queue]["arguments"]
    assert args["x-queue-type"] == "quorum"
    assert args["x-delivery-limit"] >= parse_config({}).uploader.max_deliveries
    (binding,) = conf["bindings"]
    assert binding["queue"] == queue
    assert sorted(k.split("prod.", 1)[1] for k in binding["routing_keys"]) == sorted(
        [TASK_TOPIC, BUILD_TOPIC, COMPOSE_TOPIC])
    # this process runs exactly its own target, whatever fedimg.toml lists
    assert consumer_targets(parse_config({}), conf["consumer_config"]) == [target]
