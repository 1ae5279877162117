"""shared.bus.publish on real RabbitMQ: confirmed messages arrive; a failure is one PublishFailed
line."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap

import jsonschema
import pytest

from shared import bus as shared_bus
from shared.config import parse_config
from shared.messages import UploadFailedV1
from standins.amqp import _retarget_publisher_service, fedora_messaging_toml
from standins.processes import free_port

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_default_timeout_is_the_config_keys_default():
    assert parse_config({}).bus.publish_timeout == shared_bus.DEFAULT_TIMEOUT
    assert parse_config({"bus": {"publish_timeout": 3}}).bus.publish_timeout == 3


def test_a_valid_message_reaches_the_bus(amqp_config, bus):
    _retarget_publisher_service()
    message = UploadFailedV1.from_body(dict(UploadFailedV1.example))
    shared_bus.publish(message, timeout=15)
    (seen,) = bus.wait_for(message.topic)
    assert seen.body == UploadFailedV1.example
    assert seen.headers["fedora_messaging_schema"] == "fedimg.image.failed.v1"


def test_an_invalid_message_is_a_bug_and_never_sent(amqp_config, bus):
    _retarget_publisher_service()
    body = {**UploadFailedV1.example, "error_kind": "no-such-kind"}
    with pytest.raises(jsonschema.ValidationError, match="no-such-kind"):
        shared_bus.publish(UploadFailedV1.from_body(body), timeout=15)
    # a valid message after it: once that one is seen, the refused one would have been too
    marker = UploadFailedV1.from_body(dict(UploadFailedV1.example))
    shared_bus.publish(marker, timeout=15)
    bus.wait_for(marker.topic)
    assert [m.body for m in bus.messages()] == [UploadFailedV1.example]


def test_a_dead_broker_ends_in_one_publish_failed_within_the_timeout(tmp_path, amqp_exchange):
    # In a child process: fedora-messaging keeps one publisher per process, and this one must
    # point at a port where nothing listens.
    dead = tmp_path / "dead-broker.toml"
    dead.write_text(fedora_messaging_toml(
        exchange=amqp_exchange,
        amqp_url=f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F?connection_attempts=1"))
    script = textwrap.dedent("""
        from shared import bus as shared_bus
        from shared.errors import PublishFailed
        from shared.messages import UploadFailedV1
        try:
            shared_bus.publish(UploadFailedV1.from_body(dict(UploadFailedV1.example)), timeout=2)
        except PublishFailed as exc:
            print("PublishFailed", exc)
    """)
    env = dict(os.environ, FEDORA_MESSAGING_CONF=str(dead), PYTHONPATH=str(REPO_ROOT))
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    (line,) = proc.stdout.splitlines()
    assert line.startswith("PublishFailed "), proc.stdout  # one line, no traceback
    assert "Timeout" in line or "Connection" in line, line
