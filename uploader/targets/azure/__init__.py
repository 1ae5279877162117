"""Azure target: a verified Azure VHD -> an image version in the Compute Gallery (docs/azure.md).

publish_azure is the TargetHandler (see uploader/model.py); cleanup.py is `fedimg-azure-cleanup`.
"""

from uploader.targets.azure.publish import publish_azure

__all__ = ["publish_azure"]
