"""GCP target: a verified GCE archive -> a GCE image in its family (docs/gcp.md).

publish_gcp is the TargetHandler (see uploader/model.py); cleanup.py is `fedimg-gcp-cleanup`.
"""

from uploader.targets.gcp.publish import publish_gcp

__all__ = ["publish_gcp"]
