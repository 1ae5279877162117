"""The GCE image: found by name and sha256 label or inserted, public, older family members
deprecated.

Every call names the project; long-running calls return an operation that is waited for with
globalOperations.wait in a loop bounded by gcp.operation_timeout (the images API's own
operation objects, not a client-side poller, so the wait goes to the configured endpoint too).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from google.api_core.exceptions import NotFound
from google.cloud import compute_v1

from shared.errors import CloudError, CloudTimeout
from uploader.model import ImageSource
from uploader.targets.gcp import naming
from uploader.targets.gcp.clients import GcpClients
from uploader.targets.gcp.settings import GcpConfig

log = logging.getLogger(__name__)

ROLE = "roles/compute.imageUser"
WAIT_SLICE = 60  # seconds one operations.wait call may block (the API caps it at ~120 s)
POLL = 5  # seconds between get calls while someone else's insert is still PENDING


def wait(gc: GcpClients, gcp: GcpConfig, operation: Any, what: str) -> None:
    """Wait until `operation` is DONE; CloudError with its error text if it failed."""
    deadline = time.monotonic() + gcp.operation_timeout
    op = operation
    while op.status != compute_v1.Operation.Status.DONE:
        left = deadline - time.monotonic()
        if left <= 0:
            raise CloudTimeout(f"{what}: operation {op.name} not done after "
                             f"{gcp.operation_timeout} s")
        op = gc.operations.wait(project=gc.project, operation=op.name,
                                timeout=min(WAIT_SLICE, left) + 10)
    errors = list(op.error.errors) if op.error else []
    if errors:
        text = "; ".join(f"{e.code}: {e.message}" for e in errors)
        raise CloudError(f"{what}: {text}")


def get(gc: GcpClients, gcp: GcpConfig, name: str) -> Any | None:
    try:
        return gc.images.get(project=gc.project, image=name, timeout=gcp.timeout)
    except NotFound:
        return None


def delete(gc: GcpClients, gcp: GcpConfig, name: str) -> None:
    try:
        op = gc.images.delete_unary(project=gc.project, image=name, timeout=gcp.timeout)
    except NotFound:
        return
    wait(gc, gcp, op, f"deleting image {name}")


def insert_params(source: ImageSource, gcp: GcpConfig, url: str) -> dict[str, Any]:
    """The image resource images.insert is sent (separate so tests can read the contract)."""
    arch = source.identity.arch
    features = getattr(gcp.guest_os_features, arch or "", None) or []
    return {
        "name": naming.image_name(source),
        "family": naming.family(source, gcp),
        "description": naming.description(source),
        "raw_disk": {"source": url},
        "guest_os_features": [{"type_": f} for f in features],
        "storage_locations": list(gcp.storage_locations),
        "labels": naming.labels(source),
        "architecture": naming.GCE_ARCH.get(arch or "", "ARCHITECTURE_UNSPECIFIED"),
    }


def find_own(gc: GcpClients, gcp: GcpConfig, source: ImageSource) -> Any | None:
    """Our READY image for `source`, waiting for a PENDING one; a FAILED one is deleted (None).

    CloudError if an image of that name was made from other bytes: it is never replaced silently.
    """
    name = naming.image_name(source)
    deadline = time.monotonic() + gcp.operation_timeout
    while True:
        image = get(gc, gcp, name)
        if image is None:
            return None
        if not naming.made_from(dict(image.labels), source):
            label = image.labels.get(naming.LABEL_SHA256)
            raise CloudError(f"image {name} exists but was not made from sha256 {source.sha256} "
                           f"(label {naming.LABEL_SHA256}={label!r}); "
                           "delete it to publish this one")
        if image.status == "READY":
            return image
        if image.status == "FAILED":
            log.info("%s: deleting FAILED image left by an earlier run", name)
            delete(gc, gcp, name)
            return None
        if time.monotonic() >= deadline:
            raise CloudTimeout(f"image {name} still {image.status} after {gcp.operation_timeout} s")
        time.sleep(POLL)


def create(gc: GcpClients, gcp: GcpConfig, source: ImageSource, url: str) -> Any:
    """images.insert + wait; a failed image is deleted so no half image is left."""
    from google.api_core.exceptions import Conflict

    params = insert_params(source, gcp, url)
    name = params["name"]
    try:
        op = gc.images.insert_unary(project=gc.project, image_resource=params,
                                    timeout=gcp.timeout)
    except Conflict:  # another run inserted it meanwhile: use (or wait for) that one
        found = find_own(gc, gcp, source)
        if found is None:
            raise
        return found
    try:
        wait(gc, gcp, op, f"creating image {name}")
    except CloudError:
        delete(gc, gcp, name)
        raise
    image = get(gc, gcp, name)
    if image is None or image.status != "READY":
        raise CloudError(f"image {name}: {image.status if image else 'gone'} after its insert")
    log.info("%s: created in family %s", name, params["family"])
    return image


def make_public(gc: GcpClients, gcp: GcpConfig, name: str) -> bool:
    """Grant compute.imageUser to gcp.public_member; False if it was already granted."""
    policy = gc.images.get_iam_policy(project=gc.project, resource=name, timeout=gcp.timeout)
    for binding in policy.bindings:
        if binding.role == ROLE and gcp.public_member in binding.members:
            return False
    bindings = [{"role": b.role, "members": list(b.members)} for b in policy.bindings
                if b.role != ROLE]
    members = [m for b in policy.bindings if b.role == ROLE for m in b.members]
    bindings.append({"role": ROLE, "members": sorted({*members, gcp.public_member})})
    gc.images.set_iam_policy(
        project=gc.project, resource=name, timeout=gcp.timeout,
        global_set_policy_request_resource={"policy": {"bindings": bindings,
                                                       "etag": policy.etag}})
    return True


def family_members(gc: GcpClients, gcp: GcpConfig, family: str) -> list[Any]:
    request = compute_v1.ListImagesRequest(project=gc.project, filter=f'family = "{family}"')
    pager = gc.images.list(request=request, timeout=gcp.timeout)
    return sorted(pager, key=lambda i: (i.creation_timestamp, i.name))


def deprecate_older(gc: GcpClients, gcp: GcpConfig, image: Any) -> list[str]:
    """Deprecate the family's READY images created before `image`, in favour of it.

    A newer image in the family is left alone, so redelivering an old image never deprecates
    its successor. Returns the names deprecated."""
    done = []
    for other in family_members(gc, gcp, image.family):
        if other.name == image.name or other.creation_timestamp >= image.creation_timestamp:
            continue
        state = other.deprecated.state if other.deprecated else ""
        if other.status != "READY" or state not in ("", "ACTIVE"):
            continue
        op = gc.images.deprecate_unary(
            project=gc.project, image=other.name, timeout=gcp.timeout,
            deprecation_status_resource={"state": "DEPRECATED", "replacement": image.self_link})
        wait(gc, gcp, op, f"deprecating {other.name}")
        log.info("%s: deprecated in favour of %s", other.name, image.name)
        done.append(other.name)
    return done
