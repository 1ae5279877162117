"""publish_openstack: a verified qcow2 -> one Glance image in every configured cloud.

    every cloud (a thread each, openstack.max_parallel at once):
        finished image of this name and source checksum?  -> reuse it, upload nothing
        else: delete our half-done leftovers of this name  -> upload -> check what Glance stored
    messages: OpenStackImagePublishedV1 per cloud, UploadFailedV1 per failed cloud

Glance receives the qcow2 exactly as fetched and verified (the target's `needs` is "file"):
Glance inspects the data itself and refuses what is not really qcow2.
"""

from __future__ import annotations

import concurrent.futures
import logging
from typing import Any

from shared.config import Config
from shared.errors import BadInput
from shared.messages import OpenStackImagePublishedV1
from uploader.failures import announce_failure
from uploader.model import Clients, Emit, TargetOutcome, VerifiedImage
from uploader.targets.openstack import glance
from uploader.targets.openstack.config import OpenStackConfig, settings

log = logging.getLogger(__name__)

TARGET = "openstack"


def publish_cloud(cloud: str, image: VerifiedImage, cfg: OpenStackConfig) -> Any:
    """The active Glance image of `image` in `cloud`, found or uploaded (see the module doc)."""
    source = image.source
    name = source.identity.name
    step = "connecting"
    try:
        conn = glance.connect(cloud, cfg)
        step = "listing images"
        found = glance.find_images(conn, name)
        done = glance.finished(found, str(source.sha256))
        if done is not None:
            step = "updating visibility and tags"
            log.info("%s: %s is already %s (%s); nothing to upload", cloud, name, done.id,
                     done.status)
            return glance.settle(conn, done, cfg, glance.tags(source, cfg))
        step = "deleting leftovers"
        glance.clear_leftovers(conn, cloud, found)
        step = "uploading"
        return glance.upload(conn, cloud, source, str(image.file_path), int(source.size or 0),
                             cfg)
    except Exception as exc:
        raise glance.cloud_error(exc, f"{cloud}: {step} {name}") from exc


def publish_openstack(
    image: VerifiedImage, *, config: Config, clients: Clients, emit: Emit
) -> TargetOutcome:
    """Make `image` an active Glance image in every cloud of [openstack] clouds.

    Returns the outcome per cloud; each failed cloud was announced with UploadFailedV1.
    """
    cfg = settings(config)
    source = image.source
    outcome = TargetOutcome(TARGET)
    if image.file_path is None or not source.sha256 or source.size is None:
        raise BadInput(f"{source.identity.name}: no verified file to upload")
    workers = max(1, min(cfg.max_parallel, len(cfg.clouds)))
    with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="glance") as pool:
        futures = {pool.submit(publish_cloud, c, image, cfg): c for c in cfg.clouds}
        # messages go out from this thread, one per cloud, as each one finishes
        for fut in concurrent.futures.as_completed(futures):
            cloud = futures[fut]
            try:
                found = fut.result()
            except Exception as exc:
                error = glance.cloud_error(exc, cloud)
                log.error("%s: %s failed (%s): %s", cloud, source.identity.name, error.kind,
                          error)
                announce_failure(emit, source, target=TARGET, destination=cloud, error=error)
                outcome.failed.append(cloud)
                continue
            outcome.published.append(cloud)
            emit(OpenStackImagePublishedV1.from_body(source.body(
                cloud=cloud, image_id=found.id, image_name=found.name,
                visibility=found.visibility, disk_format=found.disk_format or glance.DISK_FORMAT,
                size=found.size if found.size is not None else source.size,
                sha256=source.sha256)))
            log.info("%s: %s is %s Glance image %s", cloud, source.identity.name,
                     found.visibility, found.id)
    outcome.published.sort()
    outcome.failed.sort()
    return outcome
