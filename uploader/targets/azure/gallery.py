"""The gallery side: image definition (made if missing), community sharing, the image version.

Long-running ARM calls are the SDK's pollers, waited for at most azure.operation_timeout.
A version whose replication failed in some regions but Completed in its own region is kept
there: its target regions are cut to those that Completed (then it is Succeeded, usable where it
is), and a later run adds the others back (``add_missing``) without uploading again. A version
that failed otherwise (its own region, its source) is deleted, so no half version stays.
"""

from __future__ import annotations

import datetime
import logging
import time
from typing import Any

from shared.errors import CloudError, CloudTimeout
from uploader.model import ImageSource
from uploader.targets.azure import naming
from uploader.targets.azure.clients import AzureClients
from uploader.targets.azure.settings import AzureConfig

log = logging.getLogger(__name__)
POLL = 10  # seconds between reads of a version another run is still creating


def finish(poller: Any, azure: AzureConfig, what: str) -> Any:
    result = poller.result(timeout=azure.operation_timeout)
    if not poller.done():
        raise CloudTimeout(f"{what}: not done after {azure.operation_timeout} s")
    return result


def gallery(ac: AzureClients, azure: AzureConfig) -> dict[str, Any]:
    return ac.compute.galleries.get(azure.resource_group, azure.gallery).as_dict()


def ensure_sharing(ac: AzureClients, azure: AzureConfig, found: dict[str, Any]) -> str | None:
    """The community gallery's public name when sharing is "community" (enabled if needed)."""
    if azure.sharing != "community":
        return None
    profile = found.get("properties", {}).get("sharingProfile") or {}
    if profile.get("permissions") != "Community":
        finish(ac.compute.gallery_sharing_profile.begin_update(
            azure.resource_group, azure.gallery, {"operationType": "EnableCommunity"}),
            azure, f"enabling community sharing of {azure.gallery}")
        log.info("%s: community sharing enabled", azure.gallery)
        profile = gallery(ac, azure).get("properties", {}).get("sharingProfile") or {}
    names = (profile.get("communityGalleryInfo") or {}).get("publicNames") or []
    return names[0] if names else None


def definition_body(source: ImageSource, azure: AzureConfig, location: str) -> dict[str, Any]:
    """What an image definition is created with (separate so tests can read the contract)."""
    ident = source.identity
    name = naming.definition_name(source, azure)
    features = [{"name": "DiskControllerTypes", "value": azure.disk_controller_types},
                {"name": "SecurityType", "value": azure.security_type},
                {"name": "IsAcceleratedNetworkSupported",
                 "value": str(azure.accelerated_networking)}]
    return {
        "location": location,
        "properties": {
            "description": f"Fedora {ident.release} Cloud Base ({ident.channel})",
            "osType": "Linux",
            "osState": "Generalized",
            "hyperVGeneration": azure.hyper_v_generation,
            "architecture": naming.AZURE_ARCH[ident.arch or ""],
            "identifier": {"publisher": azure.publisher, "offer": azure.offer,
                           "sku": name.removeprefix(f"{azure.definition_prefix}-")},
            "features": [f for f in features if f["value"]],
            "releaseNoteUri": "https://docs.fedoraproject.org/en-US/fedora/latest/release-notes/",
        },
    }


def ensure_definition(ac: AzureClients, azure: AzureConfig, source: ImageSource,
                      location: str) -> str:
    from azure.core.exceptions import ResourceNotFoundError

    name = naming.definition_name(source, azure)
    try:
        found = ac.compute.gallery_images.get(azure.resource_group, azure.gallery,
                                              name).as_dict()
    except ResourceNotFoundError:
        finish(ac.compute.gallery_images.begin_create_or_update(
            azure.resource_group, azure.gallery, name, definition_body(source, azure, location)),
            azure, f"creating image definition {name}")
        log.info("%s: image definition created", name)
        return name
    arch = found.get("properties", {}).get("architecture")
    if arch != naming.AZURE_ARCH[source.identity.arch or ""]:
        raise CloudError(f"image definition {name} is for {arch}, not {source.identity.arch}")
    return name


def target_regions(azure: AzureConfig, location: str) -> list[str]:
    """Where a version is replicated: the gallery's own region first, then the configured ones."""
    return list(dict.fromkeys([location, *azure.regions]))


def _targets(azure: AzureConfig, regions: list[str]) -> list[dict[str, Any]]:
    return [{"name": r, "regionalReplicaCount": azure.replica_count,
             "storageAccountType": azure.storage_account_type} for r in regions]


def version_body(source: ImageSource, azure: AzureConfig, location: str, blob_url: str,
                 account_id: str, now: datetime.datetime) -> dict[str, Any]:
    profile: dict[str, Any] = {
        "targetRegions": _targets(azure, target_regions(azure, location)),
        "replicaCount": azure.replica_count,
        "excludeFromLatest": False,
    }
    if source.identity.channel == "nightly" and azure.nightly_end_of_life_days > 0:
        eol = now + datetime.timedelta(days=azure.nightly_end_of_life_days)
        profile["endOfLifeDate"] = eol.replace(microsecond=0).isoformat()
    return {
        "location": location,
        "tags": naming.tags(source),
        "properties": {
            "publishingProfile": profile,
            "storageProfile": {"osDiskImage": {
                "hostCaching": "ReadOnly",
                "source": {"storageAccountId": account_id, "uri": blob_url}}},
            "safetyProfile": {"allowDeletionOfReplicatedLocations": True},
        },
    }


def get_version(ac: AzureClients, azure: AzureConfig, definition: str,
                version: str) -> dict[str, Any] | None:
    from azure.core.exceptions import ResourceNotFoundError

    try:
        return ac.compute.gallery_image_versions.get(
            azure.resource_group, azure.gallery, definition, version,
            expand="ReplicationStatus").as_dict()
    except ResourceNotFoundError:
        return None


def delete_version(ac: AzureClients, azure: AzureConfig, definition: str, version: str) -> None:
    finish(ac.compute.gallery_image_versions.begin_delete(
        azure.resource_group, azure.gallery, definition, version),
        azure, f"deleting {definition}/{version}")


def find_own(ac: AzureClients, azure: AzureConfig, source: ImageSource, definition: str,
             version: str, location: str) -> dict[str, Any] | None:
    """Our Succeeded version for `source`; waits for one being created; a Failed one is kept
    where it replicated (see the module docstring) or else deleted.

    CloudError if a version of that name was made from other bytes: never replaced silently."""
    deadline = time.monotonic() + azure.operation_timeout
    while True:
        found = get_version(ac, azure, definition, version)
        if found is None:
            return None
        sha = (found.get("tags") or {}).get(naming.TAG_SHA256)
        if sha != source.sha256:
            raise CloudError(f"image version {definition}/{version} exists but was made from "
                             f"sha256 {sha}, not {source.sha256}; delete it to publish this one")
        state = found.get("properties", {}).get("provisioningState")
        if state == "Succeeded":
            return found
        if state == "Failed":
            kept = keep_replicated(ac, azure, definition, version, found, location)
            if kept is not None:
                return kept
            log.info("%s/%s: deleting the Failed version of an earlier run", definition, version)
            delete_version(ac, azure, definition, version)
            return None
        if time.monotonic() >= deadline:
            raise CloudTimeout(f"image version {definition}/{version} still {state} after "
                               f"{azure.operation_timeout} s")
        time.sleep(POLL)


def create_version(ac: AzureClients, azure: AzureConfig, definition: str, version: str,
                   body: dict[str, Any]) -> dict[str, Any]:
    """Create and replicate; a version that failed is kept where it replicated (see the module
    docstring) or else deleted, naming the failed regions."""
    from azure.core.exceptions import HttpResponseError

    try:
        finish(ac.compute.gallery_image_versions.begin_create_or_update(
            azure.resource_group, azure.gallery, definition, version, body),
            azure, f"creating {definition}/{version}")
    except HttpResponseError as exc:
        found = get_version(ac, azure, definition, version)
        failed = failed_regions(found) if found else []
        kept = found and keep_replicated(ac, azure, definition, version, found, body["location"])
        if kept:
            return kept
        if found is not None:
            delete_version(ac, azure, definition, version)
        where = f" (replication failed in {', '.join(failed)})" if failed else ""
        raise CloudError(f"image version {definition}/{version} failed{where}: "
                         f"{exc.message or exc}") from exc
    found = get_version(ac, azure, definition, version)
    if found is None or found.get("properties", {}).get("provisioningState") != "Succeeded":
        raise CloudError(f"image version {definition}/{version} not Succeeded after creation")
    log.info("%s/%s: created and replicated", definition, version)
    return found


def set_regions(ac: AzureClients, azure: AzureConfig, definition: str, version: str,
                regions: list[str]) -> None:
    """Update the version's target regions (PATCH): new ones replicate, dropped ones go."""
    body = {"properties": {"publishingProfile": {"targetRegions": _targets(azure, regions)}}}
    finish(ac.compute.gallery_image_versions.begin_update(
        azure.resource_group, azure.gallery, definition, version, body),
        azure, f"setting the regions of {definition}/{version} to {', '.join(regions)}")


def keep_replicated(ac: AzureClients, azure: AzureConfig, definition: str, version: str,
                    found: dict[str, Any], location: str) -> dict[str, Any] | None:
    """The Failed version `found`, cut to the regions where it Completed and so Succeeded
    there; None when it cannot be kept (its own region did not replicate, or the cut failed)."""
    from azure.core.exceptions import HttpResponseError

    done = replicated_regions(found)
    if _norm(location) not in {_norm(r) for r in done}:
        return None
    try:
        set_regions(ac, azure, definition, version, done)
    except HttpResponseError as exc:
        log.warning("%s/%s: could not keep it in %s: %s", definition, version, ", ".join(done),
                    exc.message or exc)
        return None
    after = get_version(ac, azure, definition, version)
    if after is None or after.get("properties", {}).get("provisioningState") != "Succeeded":
        return None
    log.warning("%s/%s: replication failed in %s; kept in %s", definition, version,
                ", ".join(failed_regions(found)) or "some regions", ", ".join(done))
    return after


def add_missing(ac: AzureClients, azure: AzureConfig, definition: str, version: str,
                found: dict[str, Any], location: str) -> dict[str, Any]:
    """`found` (Succeeded) with every configured region it lacks added; where one fails again,
    the version is kept where it is replicated (the caller sees the regions missing)."""
    from azure.core.exceptions import HttpResponseError

    wanted = target_regions(azure, location)
    if not missing_regions(found, wanted):
        return found
    log.info("%s/%s: replicating to %s too", definition, version,
             ", ".join(missing_regions(found, wanted)))
    try:
        set_regions(ac, azure, definition, version, wanted)
    except HttpResponseError:
        failed = get_version(ac, azure, definition, version)
        kept = failed and keep_replicated(ac, azure, definition, version, failed, location)
        if not kept:
            raise
        return kept
    after = get_version(ac, azure, definition, version)
    if after is None or after.get("properties", {}).get("provisioningState") != "Succeeded":
        raise CloudError(f"image version {definition}/{version} not Succeeded after adding "
                         "regions")
    return after


def missing_regions(found: dict[str, Any], wanted: list[str]) -> list[str]:
    """The regions of `wanted` where `found` is not (yet) replicated."""
    done = {_norm(r) for r in replicated_regions(found)}
    return [r for r in wanted if _norm(r) not in done]


def _norm(region: str) -> str:
    # ARM answers with display names ("East US 2") where it was sent "eastus2"
    return region.replace(" ", "").lower()


def replicated_regions(found: dict[str, Any]) -> list[str]:
    summary = (found.get("properties", {}).get("replicationStatus") or {}).get("summary") or []
    return sorted(s["region"] for s in summary if s.get("state") == "Completed")


def failed_regions(found: dict[str, Any]) -> list[str]:
    summary = (found.get("properties", {}).get("replicationStatus") or {}).get("summary") or []
    return sorted(s["region"] for s in summary if s.get("state") == "Failed")
