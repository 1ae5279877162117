"""The failure message (UploadFailedV1): the one place it is built and sent.

Every failure the uploader announces, whether intake could not fetch an image, a target crashed,
an AWS region failed or a download format could not be stored, goes through `announce_failure`,
so each carries the same fields: `error_kind` and `retryable` from the error's class (see
shared.errors), and the error text cut to MAX_ERROR_TEXT characters so one runaway traceback or
HTML page cannot bloat the bus and the history.
"""

from __future__ import annotations

from shared.errors import FedimgError
from shared.messages import UploadFailedV1
from uploader.model import Emit, ImageSource

__all__ = ["MAX_ERROR_TEXT", "announce_failure", "failure_text"]

MAX_ERROR_TEXT = 2000


def failure_text(error: FedimgError, context: str = "") -> str:
    """`<context>: <error>` (or just the error), at most MAX_ERROR_TEXT characters."""
    text = f"{context}: {error}" if context else str(error)
    return text[:MAX_ERROR_TEXT]


def announce_failure(
    emit: Emit,
    source: ImageSource,
    *,
    target: str,
    destination: str,
    error: FedimgError,
    context: str = "",
) -> UploadFailedV1:
    """Emit the UploadFailedV1 for `destination` (a region, a format, a file name) of
    `target` ("intake", "aws", "downloads"); `context` prefixes the error text (e.g. the AMI
    name). Returns the message sent."""
    text = failure_text(error, context)
    message = UploadFailedV1.from_body(source.body(
        target=target, destination=destination, error_kind=error.kind, error=text,
        retryable=error.retryable,
    ))
    emit(message)
    return message
