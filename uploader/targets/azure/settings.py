"""The `[azure]` section: the gallery the azure target publishes to and where it stages VHDs.

Owned by the target (read with `shared.config.section(config, "azure", AzureConfig)`); every key
is documented in docs/configuration.md and docs/azure.md. Credentials are never here: they come
from azure-identity's DefaultAzureCredential (environment, managed identity, Azure CLI), and a
connection string for the staging account may come from AZURE_STORAGE_CONNECTION_STRING.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from shared.config import Config, section


@dataclasses.dataclass(frozen=True)
class AzureConfig:
    subscription_id: str
    resource_group: str
    gallery: str
    storage_account: str
    storage_resource_group: str = ""  # "" = resource_group
    storage_container: str = "fedimg-staging"
    regions: list[str] = dataclasses.field(default_factory=list)  # + the gallery's own region
    sharing: Literal["private", "community"] = "community"
    definition_prefix: str = "Fedora-Cloud"
    publisher: str = "Fedora"
    offer: str = "Fedora-Cloud"
    hyper_v_generation: Literal["V1", "V2"] = "V2"
    disk_controller_types: str = "SCSI, NVMe"
    security_type: str = "TrustedLaunchSupported"
    accelerated_networking: bool = True
    replica_count: int = 1
    storage_account_type: str = "Standard_LRS"
    nightly_end_of_life_days: int = 14
    nightly_keep: int = 7
    upload_workers: int = 8
    operation_timeout: int = 3600
    timeout: int = 120
    management_endpoint: str = "https://management.azure.com"


def azure_config(config: Config) -> AzureConfig:
    """The validated `[azure]` section; ConfigError naming the key if it is wrong or missing."""
    return section(config, "azure", AzureConfig)
