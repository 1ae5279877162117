"""publish_gcp: a verified GCE archive (tar.gz) -> a GCE image in its family, one message.

    archive -> gs://bucket/prefix/<image>.tar.gz (resumable, crc32c checked)
            -> images.insert (family, guest OS features, storage locations, labels) -> READY
            -> public (IAM binding) -> older family members deprecated -> staging object deleted
    messages: GcpImagePublishedV1 once the image is ready; UploadFailedV1 if anything failed

Stateless: the image is found by its name and its fedimg-sha256 label, the staging object by its
name and sha256 metadata, so a redelivery of a finished image uploads and creates nothing, and a
run cut off at any point is finished by the next one, which leaves no staging object behind.
"""

from __future__ import annotations

import logging

from shared.config import Config
from shared.errors import BadInput, TargetFailed
from shared.messages import GcpImagePublishedV1
from uploader.failures import announce_failure
from uploader.model import Clients, Emit, TargetOutcome, VerifiedImage
from uploader.targets.gcp import images, naming, staging
from uploader.targets.gcp.clients import gcp_error, make_clients
from uploader.targets.gcp.settings import gcp_config

log = logging.getLogger(__name__)

TARGET = "gcp"


def publish_gcp(
    image: VerifiedImage, *, config: Config, clients: Clients, emit: Emit
) -> TargetOutcome:
    """Make `image` a GCE image in its family (and public, if configured).

    The destination in the outcome is the family. Raises TargetFailed (kind and retryable from
    the cause) after announcing the failure when the image could not be made.
    """
    gcp = gcp_config(config)
    source = image.source
    name = naming.image_name(source)
    family = naming.family(source, gcp)
    outcome = TargetOutcome(TARGET)
    try:
        if image.file_path is None or not source.sha256:
            raise BadInput(f"{source.identity.name}: the gcp target needs the verified archive "
                           "and its sha256")
        if source.identity.arch not in naming.GCE_ARCH:
            raise BadInput(f"{source.identity.name}: GCE has no {source.identity.arch} images")
        gc = make_clients(gcp)
        obj = naming.staging_object(source, gcp)
        found = images.find_own(gc, gcp, source)
        if found is None:
            url = staging.ensure_object(gc.storage, gcp, obj, image.file_path, source.sha256)
            found = images.create(gc, gcp, source, url)
        else:
            log.info("%s: found READY image made from this archive; nothing to upload", name)
        if gcp.public and images.make_public(gc, gcp, name):
            log.info("%s: granted %s to %s", name, images.ROLE, gcp.public_member)
        deprecated = images.deprecate_older(gc, gcp, found)
        staging.remove_object(gc.storage, gcp, obj)
    except Exception as e:
        error = gcp_error(e)
        log.error("%s: GCE image failed (%s): %s", name, error.kind, error)
        announce_failure(emit, source, target=TARGET, destination=family, error=error,
                         context=name)
        outcome.failed.append(family)
        raise TargetFailed(f"{name}: {error}", kind=error.kind, retryable=error.retryable) from e
    emit(GcpImagePublishedV1.from_body(source.body(
        project=gcp.project, image_name=name, family=found.family, image_url=found.self_link,
        storage_locations=list(found.storage_locations), public=gcp.public,
        deprecated=deprecated)))
    outcome.published.append(family)
    return outcome
