"""The containers consumer for real: `fedora-messaging consume` on RabbitMQ with its own queue,
a Pungi FINISHED message for a compose holding container images of two arches and a cloud disk
image, the real registry. The compose ends as a multi-arch manifest list with its messages on
the bus; the cloud image is left to the consumer of its own target; a redelivery adds nothing."""

from __future__ import annotations

import copy
import json
import uuid

import pytest

from standins.amqp import delete_queues, fedora_messaging_toml
from tests.uploader.conftest import REPO_ROOT, config_dict, serve_compose, toml_text
from tests.uploader.targets.containers.conftest import F43, compose_images_json, registry_entry

pytestmark = pytest.mark.slow

COMPOSE = "Fedora-43-20251023.0"
TOPIC = "org.fedoraproject.prod.pungi.compose.status.change"
SAMPLE = REPO_ROOT / "tests" / "data" / "samples" / \
    "pungi.compose.status.change-FINISHED-from-fedmsg_meta-compose2.json"
PUBLISHED = "fedimg.image.published.v1.container.*"


def _compose(koji_hub, raw_xz_image, tmp_path):
    from standins.container_archives import make_container_archive

    images = compose_images_json(COMPOSE, ["x86_64", "aarch64"])
    real = json.loads(F43.read_text())["images_json"]["payload"]["images"]
    cloud = [copy.deepcopy(e) for e in real["Cloud"]["x86_64"] if e["type"] == "raw-xz"]
    images["payload"]["images"]["Cloud"] = {"x86_64": cloud}
    files = {cloud[0]["path"]: raw_xz_image.path}
    archives = {}
    for entries in images["payload"]["images"]["Container"].values():
        for entry in entries:
            archives[entry["arch"]] = make_container_archive(
                tmp_path / f"{entry['arch']}.oci.tar.xz", entry["arch"], label=COMPOSE)
            files[entry["path"]] = archives[entry["arch"]].path
    serve_compose(koji_hub, images, f"43/{COMPOSE}", files)
    return archives


def test_a_compose_message_ends_as_a_manifest_list_with_messages_and_redelivery_adds_nothing(
        amqp_exchange, run_consumer, publish, bus, koji_hub, registry, raw_xz_image, tmp_path):
    archives = _compose(koji_hub, raw_xz_image, tmp_path)
    fedimg = tmp_path / "fedimg.toml"
    fedimg.write_text(toml_text(config_dict(
        koji_hub, tmp_path / "work",
        uploader={"targets": ["downloads", "containers"],
                  "subvariants": ["Cloud_Base", "Container_Base"],
                  "image_types": ["raw-xz", "container"]},
        containers={"registries": [registry_entry(registry)], "latest_release": "43",
                    "retries": 0, "timeout": 120})))
    queue = f"fedimg-test-containers-{uuid.uuid4().hex[:8]}"
    conf = tmp_path / "uploader-containers.toml"
    conf.write_text(fedora_messaging_toml(
        exchange=amqp_exchange, queue=queue, routing_keys=["#.pungi.compose.status.change"],
        consumer_config={"targets": ["containers"], "fedimg_config": str(fedimg)},
        extra_loggers=("uploader",),
        queue_arguments={"x-queue-type": "quorum", "x-delivery-limit": 10}, prefetch_count=1))
    body = dict(json.loads(SAMPLE.read_text())["msg"], compose_id=COMPOSE)
    try:
        with run_consumer("uploader.consumer:Uploader", conf) as proc:
            first = publish(TOPIC, body)
            published = bus.wait_for(PUBLISHED, count=2, timeout=120)
            proc.wait_for_output(f"Successfully consumed message from topic {TOPIC} "
                                 f"(message id {first.id})", 60)
            assert sorted(registry.tags("fedora")) == sorted(
                ["43", "43-20251023.0", "latest", "43-20251023.0-aarch64",
                 "43-20251023.0-x86_64"])
            digest, index = registry.manifest("fedora", "latest")
            assert {m["platform"]["architecture"]: m["digest"] for m in index["manifests"]} == {
                "amd64": archives["x86_64"].manifest_digest,
                "arm64": archives["aarch64"].manifest_digest}
            listed = [m.body for m in published if m.body["manifest_list"]]
            assert [b["manifest_list"]["digest"] for b in listed] == [digest]
            assert {m.topic for m in published} == {
                f"fedimg.image.published.v1.container.{registry.host.replace('.', '_')}"
                f".candidate.Container_Base.43.{arch}".replace(":", "_")
                for arch in ("x86_64", "aarch64")}
            # the cloud image is for the downloads consumer: not fetched, not failed here
            assert "Fedora-Cloud-Base-AmazonEC2-43-1.6.x86_64.raw.xz is for downloads" \
                in proc.output()
            accepted = bus.wait_for("fedimg.image.accepted.v1.*", count=2)
            assert {m.body["subvariant"] for m in accepted} == {"Container_Base"}

            writes = registry.writes()
            again = publish(TOPIC, body)
            proc.wait_for_output(f"Successfully consumed message from topic {TOPIC} "
                                 f"(message id {again.id})", 120)
            assert len(bus.wait_for("fedimg.image.accepted.v1.*", count=4)) == 4
            assert registry.writes() == writes
            assert len([m for m in bus.messages()
                        if m.topic.startswith("fedimg.image.published.")]) == 2
            assert not [m for m in bus.messages() if m.topic.startswith("fedimg.image.failed")]
    finally:
        delete_queues([queue])
