"""Container images: each arch pushed with skopeo to every configured registry, then one
multi-arch manifest list per tag. The target handler is `publish_containers` (docs/containers.md).
"""

from uploader.targets.containers.handler import TARGET, publish_containers

__all__ = ["TARGET", "publish_containers"]
