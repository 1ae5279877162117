"""The production examples in deploy/ fit together: what the units run, the configs they name.

Fast checks (no broker): each fedora-messaging example loads through fedora-messaging's own
loader (unknown keys are errors there), authenticates with a TLS client certificate, and the
uploader services each own one quorum queue bound to the source topics under the same prefix
they publish with. Every /etc/fedimg/*.toml a unit or the crontab names has its example here.
"""

from __future__ import annotations

import pathlib
import re
import tomllib

import pytest

from standins import REPO_ROOT
from uploader.targets import TARGETS as REGISTERED

DEPLOY = REPO_ROOT / "deploy"
FM_DIR = DEPLOY / "fedora-messaging"
TARGETS = tuple(sorted(REGISTERED))
SOURCE_TOPICS = {"buildsys.task.state.change", "buildsys.build.state.change",
                 "pungi.compose.status.change"}


def load_fm(path: pathlib.Path) -> dict:
    """The config as fedora-messaging itself reads it (defaults merged, keys validated)."""
    from fedora_messaging import config

    conf = config.LazyConfig()
    conf.load_config(str(path))
    return dict(conf)


def uploader_example(target: str) -> pathlib.Path:
    path = FM_DIR / f"uploader-{target}.toml"
    if not path.exists():
        pytest.fail(f"{path.relative_to(REPO_ROOT)} is missing (it belongs with the uploader "
                    "consumer)", pytrace=False)
    return path


@pytest.mark.parametrize("name", ["publisher", *(f"uploader-{t}" for t in TARGETS)])
def test_fedora_messaging_example_loads_and_uses_a_client_certificate(name: str) -> None:
    path = uploader_example(name.split("-", 1)[1]) if name != "publisher" else \
        FM_DIR / "publisher.toml"
    conf = load_fm(path)
    assert conf["amqp_url"].startswith("amqps://"), conf["amqp_url"]
    tls = conf["tls"]
    for key in ("ca_cert", "certfile", "keyfile"):
        assert tls[key] and tls[key].startswith("/etc/fedimg/"), (key, tls)


@pytest.mark.parametrize("target", TARGETS)
def test_each_uploader_service_owns_one_bounded_quorum_queue(target: str) -> None:
    from shared.config import UploaderConfig

    conf = load_fm(uploader_example(target))
    publisher = load_fm(FM_DIR / "publisher.toml")
    assert conf["callback"] == "uploader.consumer:Uploader"
    assert conf["consumer_config"]["targets"] == [target]
    assert conf["qos"]["prefetch_count"] == 1
    (queue,) = conf["queues"]
    args = conf["queues"][queue]["arguments"]
    assert conf["queues"][queue]["durable"] and not conf["queues"][queue]["exclusive"]
    assert args["x-queue-type"] == "quorum"
    assert args["x-delivery-limit"] >= UploaderConfig().max_deliveries
    prefix = conf["topic_prefix"]
    assert prefix == publisher["topic_prefix"], "results and announcements under one prefix"
    (binding,) = conf["bindings"]
    assert binding["queue"] == queue and binding["exchange"] == conf["publish_exchange"]
    assert {k.removeprefix(prefix + ".") for k in binding["routing_keys"]} == SOURCE_TOPICS


def test_uploader_queues_are_distinct() -> None:
    queues = [next(iter(load_fm(uploader_example(t))["queues"])) for t in TARGETS]
    assert len(set(queues)) == len(TARGETS), queues


def test_every_config_file_the_units_name_has_an_example() -> None:
    named: set[str] = set()
    for path in [*(DEPLOY / "systemd").rglob("*"), DEPLOY / "crontab.example"]:
        if path.is_file():
            named |= set(re.findall(r"/etc/fedimg/([\w%@.-]+\.toml)", path.read_text()))
    assert named, "the units name no config file at all?"
    for name in sorted(named):
        if name == "fedimg.toml":
            assert (DEPLOY / "fedimg.toml.example").exists()
        elif "%i" in name:
            for target in TARGETS:
                assert (FM_DIR / name.replace("%i", target)).exists(), name
        else:
            assert (FM_DIR / name).exists(), f"{name} is named by a unit but has no example"


def test_fedimg_example_loads() -> None:
    from shared.config import load_config

    config = load_config(DEPLOY / "fedimg.toml.example")
    assert config.uploader.targets and config.aws.regions
    assert tomllib.loads((DEPLOY / "fedimg.toml.example").read_text())
