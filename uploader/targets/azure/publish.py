"""publish_azure: a verified .vhdfixed.xz -> an image version in the Compute Gallery, one message.

    .vhdfixed.xz -> page blob (streamed, non-zero pages only, <= 4 MiB per write)
                 -> image definition (made if missing) -> image version from the blob,
                    replicated to the gallery's region + azure.regions, end of life for nightlies
                 -> community sharing (if configured) -> staging blob deleted
    messages: AzureImagePublishedV1 once the version is usable; UploadFailedV1 if not, or
              one per region it could not replicate to (kept where it did; retried)

Stateless: the version is found by its name and its fedimg-sha256 tag, the staging blob by its
name and metadata, so a redelivery of a finished image uploads and creates nothing, and a run
cut off at any point is finished by the next, which leaves no staging blob behind.
"""

from __future__ import annotations

import datetime
import logging

from shared.config import Config
from shared.errors import BadInput, CloudTransient, TargetFailed
from shared.messages import AzureImagePublishedV1
from uploader.failures import announce_failure
from uploader.model import Clients, Emit, TargetOutcome, VerifiedImage
from uploader.targets.azure import gallery, naming, vhd
from uploader.targets.azure.clients import azure_error, make_clients
from uploader.targets.azure.settings import azure_config

log = logging.getLogger(__name__)

TARGET = "azure"


def publish_azure(
    image: VerifiedImage, *, config: Config, clients: Clients, emit: Emit
) -> TargetOutcome:
    """Make `image` an image version in the configured gallery, replicated to its regions.

    The destination in the outcome is the image definition. Raises TargetFailed (kind and
    retryable from the cause) after announcing the failure when no version could be made.
    """
    azure = azure_config(config)
    source = image.source
    definition = naming.definition_name(source, azure)
    outcome = TargetOutcome(TARGET)
    blob = None
    try:
        if image.file_path is None or not source.sha256:
            raise BadInput(f"{source.identity.name}: the azure target needs the verified "
                           ".vhdfixed.xz and its sha256")
        if source.identity.arch not in naming.AZURE_ARCH:
            raise BadInput(f"{source.identity.name}: Azure has no {source.identity.arch} images")
        version = naming.version_name(source)
        ac = make_clients(azure)
        blob = ac.container.get_blob_client(naming.blob_name(source))
        info = gallery.gallery(ac, azure)
        location = info["location"]
        public_name = gallery.ensure_sharing(ac, azure, info)
        gallery.ensure_definition(ac, azure, source, location)
        found = gallery.find_own(ac, azure, source, definition, version, location)
        if found is None:
            if not ac.container.exists():
                ac.container.create_container()
            vhd.upload(blob, image.file_path, source.sha256, workers=azure.upload_workers,
                       run=clients.run)
            body = gallery.version_body(source, azure, location, blob.url,
                                        ac.storage_account_id, datetime.datetime.now(datetime.UTC))
            found = gallery.create_version(ac, azure, definition, version, body)
        else:
            log.info("%s/%s: found the version made from this image; nothing to upload",
                     definition, version)
            found = gallery.add_missing(ac, azure, definition, version, found, location)
        _remove_blob(blob)
    except Exception as e:
        error = azure_error(e)
        log.error("%s: Azure image version failed (%s): %s", definition, error.kind, error)
        if blob is not None and not error.retryable:
            _remove_blob(blob)  # nothing will come back for it
        announce_failure(emit, source, target=TARGET, destination=definition, error=error,
                         context=source.identity.name)
        outcome.failed.append(definition)
        raise TargetFailed(f"{definition}: {error}", kind=error.kind,
                           retryable=error.retryable) from e
    resource_id = found["id"]
    community_id = (f"/CommunityGalleries/{public_name}/Images/{definition}/Versions/{version}"
                    if public_name else None)
    regions = gallery.replicated_regions(found)
    for region in gallery.missing_regions(found, gallery.target_regions(azure, location)):
        # the version is usable where it replicated; a redelivery adds this region
        error = CloudTransient(f"replication of {definition}/{version} to {region} failed; "
                               f"the version is kept in {', '.join(regions)}")
        announce_failure(emit, source, target=TARGET, destination=region, error=error,
                         context=source.identity.name)
        outcome.failed.append(region)
        outcome.retryable.append(region)
    emit(AzureImagePublishedV1.from_body(source.body(
        gallery=azure.gallery, image_definition_name=definition, image_version_name=version,
        image_resource_id=resource_id, community_resource_id=community_id,
        regions={r: community_id or resource_id for r in regions},
        end_of_life=found.get("properties", {}).get("publishingProfile", {}).get(
            "endOfLifeDate"))))
    outcome.published.append(definition)
    return outcome


def _remove_blob(blob) -> None:  # noqa: ANN001 - azure.storage.blob.BlobClient
    from azure.core.exceptions import ResourceNotFoundError

    try:
        blob.delete_blob()
        log.info("%s: staging blob deleted", blob.blob_name)
    except ResourceNotFoundError:
        pass
