"""A stand-in for Azure Resource Manager's Compute Gallery API: no emulator of it exists.

It serves, over HTTPS (azure-core refuses a bearer token over plain HTTP), what fedimg's azure
target calls through azure-mgmt-compute and azure-identity, with the shapes ARM uses, and records
every request (``RecordedApi``) so tests assert on what was really sent:

- a managed-identity token endpoint (App Service flavour: ``IDENTITY_ENDPOINT`` +
  ``IDENTITY_HEADER``), so ``DefaultAzureCredential`` gets its token through its own code;
  every ARM call must carry that token;
- galleries (GET; POST ``/share`` to enable community sharing), image definitions (GET, PUT),
  image versions (GET with ``$expand=ReplicationStatus``, list, PUT, DELETE, and PATCH of their
  target regions: a region that is added replicates, one that is removed goes, a removed region
  that holds a replica only when the version's safetyProfile allows it);
- long-running operations the way ARM answers them: 201/202 with ``Azure-AsyncOperation`` and
  ``Location`` headers, a status resource that is InProgress at the first poll and
  Succeeded/Failed afterwards, then the final GET of the resource.

Refused as ARM refuses them: a missing or too old ``api-version``; definitions without osType,
osState, hyperVGeneration, architecture or identifier; versions whose name is not
``<int>.<int>.<int>``, whose source blob is not a page blob holding a fixed VHD of whole MiB (read
from the storage emulator when its connection string is known), whose target regions leave out
the gallery's own region, or that already exist with other properties. ``fail_regions`` makes
replication to those regions fail (the version ends Failed, its summary says which region;
regions that replicated stay Completed, as in Azure).

    python -m standins.azure_gallery --port 8791 --cert server.pem [--storage-connection-string S]
        [--gallery SUBSCRIPTION/RESOURCE_GROUP/NAME/LOCATION[/COMMUNITY_PUBLIC_NAME] ...]

(``--gallery`` makes a gallery as release engineering would have made it: fedimg never creates
one.)
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import re
import time
import uuid
from typing import Any

from standins.recorded_http import ApiRefusal, RecordedApi, Reply

MIN_API_VERSION = "2022-03-03"  # osDiskImage.source.uri (a VHD blob) needs this one or later
TOKEN = "fedimg-standin-token"
VERSION_NAME = re.compile(r"(\d{1,10})\.(\d{1,10})\.(\d{1,10})")
PROVIDER = r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/" \
           r"Microsoft\.Compute/galleries/(?P<gallery>[^/]+)"
MiB = 1 << 20


def _error(status: int, code: str, message: str) -> ApiRefusal:
    return ApiRefusal(status, {"error": {"code": code, "message": message}})


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat()


class AzureGallery(RecordedApi):
    """Galleries with their definitions and versions, and the token endpoint."""

    name = "Azure Compute Gallery stand-in"

    def __init__(self, storage_connection_string: str | None = None,
                 identity_header: str = "fedimg-standin", settle: float = 1.0) -> None:
        super().__init__()
        self.settle = settle
        self.storage = storage_connection_string
        self.identity_header = identity_header
        self.galleries: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.definitions: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        self.versions: dict[tuple[str, str, str, str, str], dict[str, Any]] = {}
        self.operations: dict[str, dict[str, Any]] = {}
        self.fail_regions: set[str] = set()
        self._ids = itertools.count(1)
        self.route("GET", r"/msi/token", self._token)
        self.route("GET", r"/subscriptions/(?P<sub>[^/]+)/providers/Microsoft\.Compute/locations/"
                   r"(?P<loc>[^/]+)/capsOperations/(?P<op>[^/]+)", self._op)
        self.route("GET", PROVIDER, self._gallery)
        self.route("POST", PROVIDER + r"/share", self._share)
        self.route("GET", PROVIDER + r"/images", self._list_definitions)
        self.route("GET", PROVIDER + r"/images/(?P<image>[^/]+)", self._get_definition)
        self.route("PUT", PROVIDER + r"/images/(?P<image>[^/]+)", self._put_definition)
        self.route("GET", PROVIDER + r"/images/(?P<image>[^/]+)/versions", self._list_versions)
        self.route("GET", PROVIDER + r"/images/(?P<image>[^/]+)/versions/(?P<version>[^/]+)",
                   self._get_version)
        self.route("PUT", PROVIDER + r"/images/(?P<image>[^/]+)/versions/(?P<version>[^/]+)",
                   self._put_version)
        self.route("DELETE", PROVIDER + r"/images/(?P<image>[^/]+)/versions/(?P<version>[^/]+)",
                   self._delete_version)
        self.route("PATCH", PROVIDER + r"/images/(?P<image>[^/]+)/versions/(?P<version>[^/]+)",
                   self._patch_version)

    def reset(self) -> None:
        with self.lock:
            self.galleries.clear()
            self.definitions.clear()
            self.versions.clear()
            self.operations.clear()
            self.fail_regions.clear()
            self.requests.clear()

    def add_gallery(self, sub: str, rg: str, name: str, location: str,
                    community_public_name: str | None = None) -> dict[str, Any]:
        """A gallery as release engineering made it (fedimg never creates galleries)."""
        gallery = {
            "id": f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/"
                  f"galleries/{name}",
            "name": name, "type": "Microsoft.Compute/galleries", "location": location,
            "properties": {"provisioningState": "Succeeded",
                           "identifier": {"uniqueName": f"{sub}-{name.upper()}"},
                           "sharingProfile": {"permissions": "Private"}},
        }
        if community_public_name:
            gallery["properties"]["sharingProfile"]["communityGalleryInfo"] = {
                "publicNamePrefix": community_public_name.split("-")[0],
                "publicNames": [community_public_name], "communityGalleryEnabled": False,
                "publisherUri": "https://fedoraproject.org",
                "publisherContact": "cloud@fedoraproject.org", "eula": "https://fedoraproject.org/wiki/Legal:Licenses"}
        with self.lock:
            self.galleries[(sub, rg, name)] = gallery
        return gallery

    # ---- checks every ARM call passes ---------------------------------------------------------

    def handle(self, request: Any) -> Reply:
        with self.lock:
            now = time.monotonic()  # polled once, or nobody polls (its caller died): done
            for op in self.operations.values():
                if op["status"] == "InProgress" and (op["polls"] >= 1 or op["due"] <= now):
                    self._finish(op)
        if request.path != "/msi/token":
            if request.headers.get("authorization") != f"Bearer {TOKEN}":
                raise _error(401, "AuthenticationFailed", "missing or invalid bearer token")
            version = request.param("api-version")
            if not version or not re.fullmatch(r"\d{4}-\d{2}-\d{2}(-preview)?", version):
                raise _error(400, "MissingApiVersionParameter",
                             "The api-version query parameter (?api-version=) is required")
            if version < MIN_API_VERSION:
                raise _error(400, "NoRegisteredProviderFound",
                             f"api-version {version} does not support VHD sources")
        return super().handle(request)

    def _token(self, request: Any) -> Reply:
        if request.headers.get("x-identity-header") != self.identity_header:
            raise _error(401, "Unauthorized", "X-IDENTITY-HEADER missing or wrong")
        if not request.param("resource") and not request.param("scope"):
            raise _error(400, "BadRequest", "resource is required")
        expires = int(datetime.datetime.now(datetime.UTC).timestamp()) + 3600
        return Reply(200, {"access_token": TOKEN, "expires_on": str(expires),
                           "resource": request.param("resource") or "", "token_type": "Bearer"})

    # ---- long-running operations --------------------------------------------------------------

    def _lro(self, request: Any, sub: str, location: str, resource: dict[str, Any] | None,
             status: int, body: Any, error: dict[str, Any] | None = None,
             on_done: Any = None) -> Reply:
        op_id = str(uuid.UUID(int=next(self._ids)))
        url = (f"{self.url}/subscriptions/{sub}/providers/Microsoft.Compute/locations/"
               f"{location}/capsOperations/{op_id}?api-version={request.param('api-version')}")
        self.operations[op_id] = {"name": op_id, "status": "InProgress", "startTime": _now(),
                                  "error": error, "on_done": on_done, "polls": 0,
                                  "due": time.monotonic() + self.settle}
        headers = {"Azure-AsyncOperation": url, "Retry-After": "1"}
        if status == 202:
            headers["Location"] = url
        return Reply(status, body, headers)

    def _finish(self, op: dict[str, Any]) -> None:
        op["status"] = "Failed" if op["error"] else "Succeeded"
        op["endTime"] = _now()
        if op["on_done"]:
            op["on_done"]()

    def _op(self, request: Any, sub: str, loc: str, op: str) -> Reply:
        found = self.operations.get(op)
        if found is None:
            raise _error(404, "NotFound", f"operation {op} not found")
        found["polls"] += 1
        body = {k: found[k] for k in ("name", "status", "startTime") if k in found}
        if found["status"] != "InProgress":
            body["endTime"] = found["endTime"]
            if found["error"]:
                body["error"] = found["error"]
        return Reply(200, body, {"Retry-After": "1"})

    # ---- galleries and definitions ------------------------------------------------------------

    def _gallery_of(self, sub: str, rg: str, gallery: str) -> dict[str, Any]:
        found = self.galleries.get((sub, rg, gallery))
        if found is None:
            raise _error(404, "ResourceNotFound", f"Gallery {gallery} not found in {rg}")
        return found

    def _gallery(self, request: Any, sub: str, rg: str, gallery: str) -> Reply:
        return Reply(200, self._gallery_of(sub, rg, gallery))

    def _share(self, request: Any, sub: str, rg: str, gallery: str) -> Reply:
        found = self._gallery_of(sub, rg, gallery)
        operation = (request.body or {}).get("operationType")
        if operation not in ("Add", "Remove", "Reset", "EnableCommunity"):
            raise _error(400, "InvalidParameter", f"operationType {operation!r}")
        profile = found["properties"]["sharingProfile"]
        if operation == "EnableCommunity" and "communityGalleryInfo" not in profile:
            raise _error(400, "InvalidParameter", "the gallery has no communityGalleryInfo "
                         "(publisher, EULA, public name prefix)")

        def done() -> None:
            if operation == "EnableCommunity":
                profile["permissions"] = "Community"
                profile["communityGalleryInfo"]["communityGalleryEnabled"] = True

        return self._lro(request, sub, found["location"], found, 202, None, on_done=done)

    def _list_definitions(self, request: Any, sub: str, rg: str, gallery: str) -> Reply:
        self._gallery_of(sub, rg, gallery)
        return Reply(200, {"value": [d for k, d in sorted(self.definitions.items())
                                     if k[:3] == (sub, rg, gallery)]})

    def _get_definition(self, request: Any, sub: str, rg: str, gallery: str,
                        image: str) -> Reply:
        self._gallery_of(sub, rg, gallery)
        found = self.definitions.get((sub, rg, gallery, image))
        if found is None:
            raise _error(404, "ResourceNotFound", f"Gallery image {image} not found")
        return Reply(200, found)

    def _put_definition(self, request: Any, sub: str, rg: str, gallery: str,
                        image: str) -> Reply:
        gal = self._gallery_of(sub, rg, gallery)
        body = request.body if isinstance(request.body, dict) else {}
        props = body.get("properties") or {}
        for key, allowed in (("osType", ("Linux", "Windows")),
                             ("osState", ("Generalized", "Specialized")),
                             ("hyperVGeneration", ("V1", "V2")),
                             ("architecture", ("x64", "Arm64"))):
            if props.get(key) not in allowed:
                raise _error(400, "InvalidParameter",
                             f"properties.{key} must be one of {', '.join(allowed)}")
        ident = props.get("identifier") or {}
        if not all(isinstance(ident.get(k), str) and ident[k] for k in ("publisher", "offer",
                                                                          "sku")):
            raise _error(400, "InvalidParameter", "properties.identifier needs publisher, "
                         "offer and sku")
        if props["architecture"] == "Arm64" and props["hyperVGeneration"] != "V2":
            raise _error(400, "InvalidParameter", "Arm64 images must be hyper-V generation V2")
        if body.get("location") != gal["location"]:
            raise _error(400, "InvalidParameter", "location must be the gallery's location")
        key = (sub, rg, gallery, image)
        for other_key, other in self.definitions.items():
            same = other["properties"]["identifier"] == ident
            if same and other_key != key and other_key[:3] == key[:3]:
                raise _error(409, "Conflict", "identifier used by another image definition")
        definition = {"id": f"{gal['id']}/images/{image}", "name": image,
                      "type": "Microsoft.Compute/galleries/images", "location": gal["location"],
                      "tags": body.get("tags") or {},
                      "properties": {**props, "provisioningState": "Creating"}}
        existed = key in self.definitions
        self.definitions[key] = definition

        def done() -> None:
            definition["properties"]["provisioningState"] = "Succeeded"

        return self._lro(request, sub, gal["location"], definition, 200 if existed else 201,
                         definition, on_done=done)

    # ---- versions -----------------------------------------------------------------------------

    def _version_of(self, sub: str, rg: str, gallery: str, image: str,
                    version: str) -> dict[str, Any]:
        found = self.versions.get((sub, rg, gallery, image, version))
        if found is None:
            raise _error(404, "ResourceNotFound", f"Gallery image version {version} not found")
        return found

    def _view(self, version: dict[str, Any], expand: str | None) -> dict[str, Any]:
        view = {k: v for k, v in version.items() if k != "_replication"}
        view["properties"] = dict(version["properties"])
        if expand == "ReplicationStatus":
            view["properties"]["replicationStatus"] = version["_replication"]
        return view

    def _get_version(self, request: Any, sub: str, rg: str, gallery: str, image: str,
                     version: str) -> Reply:
        found = self._version_of(sub, rg, gallery, image, version)
        return Reply(200, self._view(found, request.param("$expand")))

    def _list_versions(self, request: Any, sub: str, rg: str, gallery: str,
                       image: str) -> Reply:
        if (sub, rg, gallery, image) not in self.definitions:
            raise _error(404, "ResourceNotFound", f"Gallery image {image} not found")
        items = [self._view(v, None) for k, v in sorted(self.versions.items())
                 if k[:4] == (sub, rg, gallery, image)]
        return Reply(200, {"value": items})

    def _put_version(self, request: Any, sub: str, rg: str, gallery: str, image: str,
                     version: str) -> Reply:
        gal = self._gallery_of(sub, rg, gallery)
        definition = self.definitions.get((sub, rg, gallery, image))
        if definition is None:
            raise _error(404, "ResourceNotFound", f"Gallery image {image} not found")
        m = VERSION_NAME.fullmatch(version)
        if not m or any(int(g) > 2**31 - 1 for g in m.groups()):
            raise _error(400, "InvalidParameter", f"version name {version!r} is not "
                         "<major>.<minor>.<patch> of 32-bit integers")
        body = request.body if isinstance(request.body, dict) else {}
        props = body.get("properties") or {}
        regions = [r.get("name") for r in
                   (props.get("publishingProfile") or {}).get("targetRegions") or []]
        location = body.get("location")
        if location != gal["location"]:
            raise _error(400, "InvalidParameter", "location must be the gallery's location")
        if _norm(location) not in {_norm(r) for r in regions if isinstance(r, str)}:
            raise _error(400, "InvalidParameter", "targetRegions must include the image "
                         f"version's own region {location}")
        source = ((props.get("storageProfile") or {}).get("osDiskImage") or {}).get("source")
        if not isinstance(source, dict) or not source.get("uri"):
            raise _error(400, "InvalidParameter",
                         "properties.storageProfile.osDiskImage.source.uri is required")
        if not str(source.get("storageAccountId", "")).startswith(f"/subscriptions/{sub}/"):
            raise _error(400, "InvalidParameter", "source.storageAccountId must name the "
                         "storage account of the blob")
        problem = self._check_vhd(source["uri"])
        if problem:
            raise _error(400, "InvalidParameter", problem)
        key = (sub, rg, gallery, image, version)
        if key in self.versions:
            raise _error(409, "Conflict", f"Gallery image version {version} already exists; "
                         "its source cannot change")
        failing = sorted(r for r in regions if _norm(r) in self.fail_regions)
        record = {
            "id": f"{definition['id']}/versions/{version}", "name": version,
            "type": "Microsoft.Compute/galleries/images/versions", "location": location,
            "tags": body.get("tags") or {},
            "properties": {**props, "provisioningState": "Creating"},
            "_replication": {"aggregatedState": "InProgress", "summary": [
                {"region": r, "state": "Replicating", "progress": 0} for r in regions]},
        }
        self.versions[key] = record
        error, done = _replicate(record, regions, failing)
        return self._lro(request, sub, location, record, 201, self._view(record, None),
                         error=error, on_done=done)

    def _patch_version(self, request: Any, sub: str, rg: str, gallery: str, image: str,
                       version: str) -> Reply:
        record = self._version_of(sub, rg, gallery, image, version)
        body = request.body if isinstance(request.body, dict) else {}
        props = body.get("properties") or {}
        if "storageProfile" in props:
            raise _error(400, "PropertyChangeNotAllowed",
                         "Changing property 'storageProfile' is not allowed")
        profile = props.get("publishingProfile") or {}
        if "targetRegions" not in profile:
            raise _error(400, "InvalidParameter", "this stand-in only updates targetRegions")
        targets = profile["targetRegions"] or []
        regions = [r.get("name") for r in targets if isinstance(r, dict)]
        if not regions or not all(isinstance(r, str) and r for r in regions):
            raise _error(400, "InvalidParameter", "targetRegions needs region names")
        if _norm(record["location"]) not in {_norm(r) for r in regions}:
            raise _error(400, "InvalidParameter", "targetRegions must include the image "
                         f"version's own region {record['location']}")
        before = {_norm(s["region"]): s["state"] for s in record["_replication"]["summary"]}
        removed = [r for r, state in before.items()
                   if state == "Completed" and r not in {_norm(x) for x in regions}]
        allowed = ((record["properties"].get("safetyProfile") or {})
                   .get("allowDeletionOfReplicatedLocations"))
        if removed and not allowed:
            raise _error(400, "InvalidParameter", f"removing replicated regions {removed} needs "
                         "safetyProfile.allowDeletionOfReplicatedLocations")
        kept = {r for r in regions if before.get(_norm(r)) == "Completed"}
        failing = sorted(r for r in regions if r not in kept and _norm(r) in self.fail_regions)
        record["properties"]["publishingProfile"] = {
            **record["properties"].get("publishingProfile", {}), "targetRegions": targets}
        record["properties"]["provisioningState"] = "Updating"
        record["_replication"] = {"aggregatedState": "InProgress", "summary": [
            {"region": r, "state": "Completed" if r in kept else "Replicating",
             "progress": 100 if r in kept else 0} for r in regions]}
        error, done = _replicate(record, regions, failing)
        return self._lro(request, sub, record["location"], record, 200,
                         self._view(record, None), error=error, on_done=done)

    def _delete_version(self, request: Any, sub: str, rg: str, gallery: str, image: str,
                        version: str) -> Reply:
        key = (sub, rg, gallery, image, version)
        if key not in self.versions:
            return Reply(204)
        record = self.versions[key]
        record["properties"]["provisioningState"] = "Deleting"
        return self._lro(request, sub, record["location"], record, 202, None,
                         on_done=lambda: self.versions.pop(key, None))

    def _check_vhd(self, uri: str) -> str | None:
        """Why this blob cannot be an OS disk image, or None (None too when no storage known)."""
        if not self.storage:
            return None
        from azure.core.exceptions import ResourceNotFoundError
        from azure.storage.blob import BlobClient

        m = re.fullmatch(r"https?://[^/]+(?:/[^/]+)?/(?P<container>[^/]+)/(?P<blob>.+)", uri)
        if not m:
            return f"source uri {uri} is not a blob URL"
        blob = BlobClient.from_connection_string(self.storage, m["container"], m["blob"])
        try:
            props = blob.get_blob_properties()
        except ResourceNotFoundError:
            return f"source blob {uri} does not exist"
        if props.blob_type != "PageBlob":
            return f"source blob {uri} is a {props.blob_type}, not a page blob"
        size = props.size
        if size < 512 or (size - 512) % MiB:
            return f"source blob {uri} is {size} bytes: not a fixed VHD of whole MiB"
        footer = blob.download_blob(offset=size - 512, length=512).readall()
        if footer[:8] != b"conectix" or int.from_bytes(footer[60:64], "big") != 2:
            return f"source blob {uri} does not end with a fixed VHD footer"
        if int.from_bytes(footer[48:56], "big") != size - 512:
            return f"source blob {uri}: the VHD footer's size is not the blob's data size"
        return None


def _replicate(record: dict[str, Any], regions: list[str],
               failing: list[str]) -> tuple[dict[str, Any] | None, Any]:
    """The operation error (None if every region replicates) and what its end does to the
    version: Failed with the failing regions Failed, else Succeeded; the others Completed."""
    error = {"code": "ReplicationFailed", "message": f"replication to {', '.join(failing)} "
             "failed"} if failing else None

    def done() -> None:
        record["properties"]["provisioningState"] = "Failed" if failing else "Succeeded"
        record["_replication"] = {
            "aggregatedState": "Failed" if failing else "Completed",
            "summary": [{"region": r, "state": "Failed" if r in failing else "Completed",
                         "progress": 100, **({"details": "replication failed"}
                                             if r in failing else {})} for r in regions]}

    return error, done


def _norm(region: str | None) -> str:
    return (region or "").replace(" ", "").lower()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", required=True, help="PEM with the server cert and its key")
    parser.add_argument("--storage-connection-string")
    parser.add_argument("--gallery", action="append", default=[],
                        help="SUBSCRIPTION/RESOURCE_GROUP/NAME/LOCATION[/COMMUNITY_PUBLIC_NAME]")
    args = parser.parse_args(argv)
    api = AzureGallery(args.storage_connection_string)
    for spec in args.gallery:
        parts = spec.split("/")
        if len(parts) not in (4, 5) or not all(parts):
            parser.error(f"--gallery {spec!r}: want SUBSCRIPTION/RESOURCE_GROUP/NAME/LOCATION"
                         "[/COMMUNITY_PUBLIC_NAME]")
        api.add_gallery(*parts)
    api.serve_forever(args.host, args.port, tls=(args.cert, args.cert))


if __name__ == "__main__":
    main()
