"""The Azure and Google Cloud parts of the local demo stack (``standins.local_stack``).

Four processes on loopback, after the stack's first eight ports:

- ``azurite``: Azure's blob emulator (``make azurite``) on PORT+8, its data in ``azurite/``;
  the azure target's staging account (``devstoreaccount1``);
- ``azure-gallery``: the Compute Gallery stand-in (``standins.azure_gallery``) over HTTPS on
  PORT+9, with the gallery release engineering would have made (``--gallery``) and a CA of its
  own in ``azure-pki/``;
- ``gcs``: ``gcp-storage-emulator`` on PORT+10 (in memory), with the staging bucket;
- ``gce-images``: the Compute Engine images stand-in (``standins.gce_images``) on PORT+11,
  reading the archives it is asked to import from the storage emulator.

The azure and gcp uploader services find them the way production code finds Azure and Google
Cloud: through the environment each SDK reads (``uploader_env``), never through fedimg's config.
The gallery, the storage emulator and the GCE stand-in keep their state in memory, so, as with
moto and Koji, a stack where one of them is not running starts a new generation (``IN_MEMORY``).
``gallery_versions``, ``gce_images`` and ``staging_left`` read back what the uploaders made,
through the same APIs the targets use.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import socket
import sys
from typing import TYPE_CHECKING, Any

import requests

from standins.azure_gallery import TOKEN
from standins.azurite import ACCOUNT, AZURITE_BLOB, KEY, azurite_blob
from standins.koji_pki import KojiPKI
from standins.pidfiles import Service

if TYPE_CHECKING:
    from standins.local_stack import Stack

HTTP_TIMEOUT = 30.0
API_VERSION = "2023-07-03"  # an ARM api-version of the Compute Gallery API
# the gallery release engineering made (fedimg never creates one)
SUBSCRIPTION = "5b7a6c1e-3f0d-4e2a-9c8b-1d2e3f4a5b6c"
RESOURCE_GROUP = "fedora-demo"
GALLERY = "FedoraDemo"
GALLERY_LOCATION = "eastus"
PUBLIC_NAME = "FedoraDemo-0d8b3a4e-6f1c-4b7a-9e2d-5c6b7a8d9e0f"
AZURE_REGIONS = ["eastus2", "westeurope"]  # replicated to these besides the gallery's own
GCP_PROJECT = "fedimg-demo"
GCP_BUCKET = "fedimg-demo-staging"
# which of them keep their state in memory only (a restart forgets every image)
IN_MEMORY = ("azure-gallery", "gcs", "gce-images")
# what a new generation deletes (azurite keeps its blobs on disk)
STATE_DIRS = ("azurite", "azure-pki")
# a developer's own Azure or Google login must never reach the demo
_FOREIGN = ("AZURE_", "MSI_", "IDENTITY_", "IMDS_", "GOOGLE_", "CLOUDSDK_", "STORAGE_EMULATOR",
            "COMPUTE_EMULATOR")


def azurite_port(stack: Stack) -> int:
    return stack.port + 8


def gallery_url(stack: Stack) -> str:
    return f"https://127.0.0.1:{stack.port + 9}"


def gcs_url(stack: Stack) -> str:
    return f"http://127.0.0.1:{stack.port + 10}"


def gce_url(stack: Stack) -> str:
    return f"http://127.0.0.1:{stack.port + 11}"


def connection_string(stack: Stack) -> str:
    return (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
            f"BlobEndpoint=http://127.0.0.1:{azurite_port(stack)}/{ACCOUNT};")


def _pki(stack: Stack) -> pathlib.Path:
    return stack.root / "azure-pki"


def gallery_ca(stack: Stack) -> pathlib.Path:
    return _pki(stack) / "ca.pem"


def fedimg_sections(stack: Stack) -> dict[str, dict[str, Any]]:
    """The [azure] and [gcp] sections of the demo's fedimg.toml."""
    return {
        "azure": {"subscription_id": SUBSCRIPTION, "resource_group": RESOURCE_GROUP,
                  "gallery": GALLERY, "storage_account": ACCOUNT, "regions": AZURE_REGIONS,
                  "management_endpoint": gallery_url(stack), "operation_timeout": 120,
                  "timeout": 30},
        "gcp": {"project": GCP_PROJECT, "bucket": GCP_BUCKET, "operation_timeout": 120,
                "timeout": 30, "upload_chunk_mib": 8},
    }


def prepare(stack: Stack) -> None:
    """Before the processes start: the gallery's TLS certificate (kept while the stack lives,
    so a reused gallery keeps being trusted), the CA bundle the azure uploader reads, azurite's
    data directory."""
    stack.dir("azurite")
    if not (_pki(stack) / "server.pem").exists():
        _pki(stack).mkdir(parents=True, exist_ok=True)
        KojiPKI(_pki(stack), ca_name="fedimg demo Azure stand-in CA")
    system = pathlib.Path("/etc/ssl/certs/ca-certificates.crt")
    (_pki(stack) / "bundle.pem").write_bytes(
        (system.read_bytes() if system.exists() else b"") + gallery_ca(stack).read_bytes())


def after_start(stack: Stack) -> None:
    """Once every process answers: the staging bucket (the emulator starts empty)."""
    resp = requests.post(f"{gcs_url(stack)}/storage/v1/b", params={"project": GCP_PROJECT},
                         json={"name": GCP_BUCKET}, timeout=HTTP_TIMEOUT)
    if resp.status_code not in (200, 409):  # 409: it is there already
        resp.raise_for_status()


def scrub(env: dict[str, str]) -> dict[str, str]:
    """``env`` without any variable through which Azure or Google SDKs find a real account."""
    return {k: v for k, v in env.items() if not k.startswith(_FOREIGN)}


def uploader_env(stack: Stack, target: str) -> dict[str, str]:
    """What the azure or gcp uploader service needs in its environment to reach its cloud."""
    if target == "azure":
        return {"AZURE_STORAGE_CONNECTION_STRING": connection_string(stack),
                # azure-identity's managed identity (App Service flavour), served by the stand-in
                "IDENTITY_ENDPOINT": f"{gallery_url(stack)}/msi/token",
                "IDENTITY_HEADER": "fedimg-standin",
                "REQUESTS_CA_BUNDLE": str(_pki(stack) / "bundle.pem"),
                "AZURE_CONFIG_DIR": str(stack.root / "no-azure-cli")}
    if target == "gcp":
        return {"STORAGE_EMULATOR_HOST": gcs_url(stack), "COMPUTE_EMULATOR_HOST": gce_url(stack),
                "GOOGLE_APPLICATION_CREDENTIALS": str(stack.root / "no-google-credentials")}
    return {}


def _listening(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


def _answers(url: str, **kwargs: Any) -> bool:
    return requests.get(url, timeout=HTTP_TIMEOUT, **kwargs).status_code < 500


def _node_script() -> list[str]:
    """node and azurite-blob's script, run directly: through its ``#!/usr/bin/env node`` line the
    process's command line changes from env's to node's after it is recorded, and the stack
    would take the running azurite for a dead one. The path even where it is missing: `down`
    must still find a stack's processes."""
    script = pathlib.Path(os.environ.get("AZURITE_BLOB") or AZURITE_BLOB)
    return [shutil.which("node") or "node", str(script.resolve())]


def services(stack: Stack, env: dict[str, str]) -> list[Service]:
    py = sys.executable
    venv = pathlib.Path(sys.executable).parent
    workspace = stack.root / "azurite"  # made by prepare (a new generation deletes it)
    gallery = "/".join([SUBSCRIPTION, RESOURCE_GROUP, GALLERY, GALLERY_LOCATION, PUBLIC_NAME])
    return [
        Service("azurite", [*_node_script(), "--blobHost", "127.0.0.1", "--blobPort",
                            str(azurite_port(stack)), "--location", str(workspace),
                            "--skipApiVersionCheck", "--loose", "--disableTelemetry",
                            "--silent"], env,
                lambda s, _: _listening(azurite_port(s)), cwd=stack.root),
        Service("azure-gallery", [py, "-m", "standins.azure_gallery", "--port",
                                  str(stack.port + 9), "--cert", str(_pki(stack) / "server.pem"),
                                  "--storage-connection-string", connection_string(stack),
                                  "--gallery", gallery], env,
                lambda s, _: _answers(f"{gallery_url(s)}/", verify=str(gallery_ca(s)))),
        Service("gcs", [str(venv / "gcp-storage-emulator"), "start", "--host", "127.0.0.1",
                        "--port", str(stack.port + 10), "--in-memory", "--quiet"], env,
                lambda s, _: _answers(f"{gcs_url(s)}/")),
        Service("gce-images", [py, "-m", "standins.gce_images", "--port", str(stack.port + 11),
                               "--storage-url", gcs_url(stack)], env,
                lambda s, _: _answers(f"{gce_url(s)}/")),
    ]


# ---- reading back what the demo made ----------------------------------------------------


def _arm(stack: Stack, path: str, **params: str) -> Any:
    resp = requests.get(
        f"{gallery_url(stack)}/subscriptions/{SUBSCRIPTION}/resourceGroups/"
        f"{RESOURCE_GROUP}/providers/Microsoft.Compute/galleries/{GALLERY}{path}",
        params={"api-version": API_VERSION, **params}, verify=str(gallery_ca(stack)),
        headers={"Authorization": f"Bearer {TOKEN}"}, timeout=HTTP_TIMEOUT)
    resp.raise_for_status()
    return resp.json()


def gallery_versions(stack: Stack) -> dict[str, dict[str, Any]]:
    """'<definition>/<version>' -> the image version with its replication status, from the
    gallery stand-in's ARM API."""
    out = {}
    for definition in _arm(stack, "/images")["value"]:
        name = definition["name"]
        for version in _arm(stack, f"/images/{name}/versions")["value"]:
            out[f"{name}/{version['name']}"] = _arm(
                stack, f"/images/{name}/versions/{version['name']}",
                **{"$expand": "ReplicationStatus"})
    return out


def gce_images(stack: Stack) -> dict[str, dict[str, Any]]:
    """image name -> the image resource, from the GCE stand-in's images.list."""
    resp = requests.get(f"{gce_url(stack)}/compute/v1/projects/{GCP_PROJECT}/global/images",
                        timeout=HTTP_TIMEOUT)
    resp.raise_for_status()
    return {i["name"]: i for i in resp.json().get("items", [])}


def staging_left(stack: Stack) -> list[str]:
    """Blobs and objects left in the staging account and bucket (none once the images exist)."""
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(connection_string(stack))
    left = [f"azurite {c.name}/{b.name}" for c in service.list_containers()
            for b in service.get_container_client(c.name).list_blobs()]
    resp = requests.get(f"{gcs_url(stack)}/storage/v1/b/{GCP_BUCKET}/o", timeout=HTTP_TIMEOUT)
    resp.raise_for_status()
    return left + [f"gs://{GCP_BUCKET}/{o['name']}" for o in resp.json().get("items", [])]


def missing() -> str | None:
    """One line if this checkout cannot run the Azure part (azurite not installed), else None."""
    try:
        azurite_blob()
    except Exception as exc:
        return str(exc)
    if shutil.which("node") is None:
        return "node is not on PATH (azurite runs on it): make system"
    return None if os.access(pathlib.Path(sys.executable).parent / "gcp-storage-emulator",
                             os.X_OK) else "gcp-storage-emulator is not in the venv: make venv"


__all__ = ["GALLERY", "GCP_BUCKET", "GCP_PROJECT", "IN_MEMORY", "STATE_DIRS", "TOKEN",
           "after_start", "fedimg_sections", "gallery_versions", "gce_images", "prepare",
           "scrub", "services", "staging_left", "uploader_env"]
