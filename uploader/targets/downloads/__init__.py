"""Download artifacts: compressed qcow2 and sparse raw.tar.xz with a CHECKSUM, published to a
directory or an S3 prefix. The target handler is `publish_downloads`."""

from uploader.targets.downloads.handler import TARGET, Layout, layout_for, publish_downloads

__all__ = ["TARGET", "Layout", "layout_for", "publish_downloads"]
