"""Uploader intake: from a bus message or an id to verified raw images and their identities.

    request_from_message(topic, body) -> Request          (route.py: trusts only the id)
    find_images(request, config=, clients=) -> [ImageSource] (koji_sources.py, compose.py)
    with fetched(source, config=, clients=) as image: ...  (fetch.py: VerifiedImage, sparse raw)
"""

from uploader.intake.compose import compose_images
from uploader.intake.fetch import allowed_roots, download, fetched, to_sparse_raw
from uploader.intake.koji_sources import build_images, task_images
from uploader.intake.route import Request, find_images, request_from_message

__all__ = [
    "Request",
    "allowed_roots",
    "build_images",
    "compose_images",
    "download",
    "fetched",
    "find_images",
    "request_from_message",
    "task_images",
    "to_sparse_raw",
]
