"""Google Cloud clients for the gcp target, built from the environment, and error meaning.

Credentials are Google's Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS, the
metadata server, gcloud's login): never fedimg's config or a message. The emulator convention of
Google's libraries is honoured for both APIs: with STORAGE_EMULATOR_HOST, google-cloud-storage
talks to that host anonymously by itself; with COMPUTE_EMULATOR_HOST the images API goes to that
host with anonymous credentials (what the tests and the demo use).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import requests

from shared.errors import CloudError, CloudTimeout, CloudTransient, FedimgError, one_line
from uploader.targets.gcp.settings import GcpConfig

COMPUTE_EMULATOR_ENV = "COMPUTE_EMULATOR_HOST"
RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})


@dataclasses.dataclass
class GcpClients:
    storage: Any  # google.cloud.storage.Client
    images: Any  # compute_v1.ImagesClient
    operations: Any  # compute_v1.GlobalOperationsClient
    project: str


def make_clients(gcp: GcpConfig) -> GcpClients:
    """Storage and compute clients for the configured project; CloudError if none can be made."""
    from google.api_core.client_options import ClientOptions
    from google.auth.exceptions import DefaultCredentialsError
    from google.cloud import compute_v1, storage

    credentials = options = None
    emulator = os.environ.get(COMPUTE_EMULATOR_ENV)
    if emulator:
        from google.auth.credentials import AnonymousCredentials

        credentials = AnonymousCredentials()
        options = ClientOptions(api_endpoint=emulator)
    try:
        return GcpClients(
            storage=storage.Client(project=gcp.project),
            images=compute_v1.ImagesClient(credentials=credentials, client_options=options),
            operations=compute_v1.GlobalOperationsClient(credentials=credentials,
                                                         client_options=options),
            project=gcp.project,
        )
    except DefaultCredentialsError as exc:
        raise CloudError(f"no Google Cloud credentials: {one_line(exc)}") from exc


def gcp_error(exc: BaseException) -> FedimgError:
    """What a Google client exception means for the failure message and the broker."""
    from google.api_core import exceptions as gexc

    if isinstance(exc, FedimgError):
        return exc
    if isinstance(exc, gexc.RetryError | gexc.DeadlineExceeded | TimeoutError):
        error: FedimgError = CloudTimeout(one_line(exc))
    elif isinstance(exc, gexc.GoogleAPICallError):
        code = exc.code or 0
        error = (CloudTransient if code in RETRY_STATUS else CloudError)(one_line(exc))
    elif isinstance(exc, requests.RequestException | ConnectionError):
        error = CloudTransient(one_line(exc))
    elif type(exc).__name__ == "DataCorruption":  # google.resumable_media: checksum mismatch
        error = CloudTransient(f"upload checksum mismatch: {one_line(exc)}")
    else:
        return CloudError(one_line(exc))
    error.__cause__ = exc
    return error
