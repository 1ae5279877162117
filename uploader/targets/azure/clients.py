"""Azure clients for the azure target, built from the environment, and error meaning.

Credentials: azure-identity's DefaultAzureCredential (service principal variables, workload or
managed identity, the Azure CLI login), never fedimg's config or a message. The staging account
is reached with AZURE_STORAGE_CONNECTION_STRING when it is set (an account key or SAS, or the
local emulator), else at https://<account>.blob.core.windows.net with the same credential.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from shared.errors import CloudError, CloudTimeout, CloudTransient, FedimgError, one_line
from uploader.targets.azure.settings import AzureConfig

CONNECTION_STRING_ENV = "AZURE_STORAGE_CONNECTION_STRING"
RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})


@dataclasses.dataclass
class AzureClients:
    container: Any  # azure.storage.blob.ContainerClient
    compute: Any  # azure.mgmt.compute.ComputeManagementClient
    storage_account_id: str


def make_clients(azure: AzureConfig) -> AzureClients:
    from azure.identity import DefaultAzureCredential
    from azure.mgmt.compute import ComputeManagementClient
    from azure.storage.blob import BlobServiceClient

    credential = DefaultAzureCredential()
    connection = os.environ.get(CONNECTION_STRING_ENV)
    if connection:
        service = BlobServiceClient.from_connection_string(connection,
                                                           connection_timeout=azure.timeout,
                                                           read_timeout=azure.timeout)
    else:
        service = BlobServiceClient(f"https://{azure.storage_account}.blob.core.windows.net",
                                    credential=credential, connection_timeout=azure.timeout,
                                    read_timeout=azure.timeout)
    endpoint = azure.management_endpoint.rstrip("/")
    compute = ComputeManagementClient(credential, azure.subscription_id, base_url=endpoint,
                                      credential_scopes=[f"{endpoint}/.default"],
                                      connection_timeout=azure.timeout,
                                      read_timeout=azure.timeout)
    account_id = (f"/subscriptions/{azure.subscription_id}/resourceGroups/"
                  f"{azure.storage_resource_group or azure.resource_group}/providers/"
                  f"Microsoft.Storage/storageAccounts/{azure.storage_account}")
    return AzureClients(service.get_container_client(azure.storage_container), compute,
                        account_id)


def azure_error(exc: BaseException) -> FedimgError:
    """What an Azure SDK exception means for the failure message and the broker."""
    from azure.core import exceptions as aexc

    if isinstance(exc, FedimgError):
        return exc
    if isinstance(exc, TimeoutError):
        error: FedimgError = CloudTimeout(one_line(exc))
    elif isinstance(exc, aexc.HttpResponseError):
        status = exc.status_code or 0
        error = (CloudTransient if status in RETRY_STATUS else CloudError)(one_line(exc))
    elif isinstance(exc, aexc.ServiceRequestError | aexc.ServiceResponseError
                    | aexc.ClientAuthenticationError | ConnectionError):
        # an unreachable endpoint or token service may be back later
        error = CloudTransient(one_line(exc))
    else:
        return CloudError(one_line(exc))
    error.__cause__ = exc
    return error
