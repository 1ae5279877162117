"""Failures that carry their broker meaning, so the consumer maps them without guessing.

`retryable` decides Nack (a later delivery may succeed: hub down, HTTP 5xx, timeouts) versus
Drop (this message will never work: malformed, unwanted, checksum mismatch). `kind` is the
`error_kind` of the failure message (shared.messages.ERROR_KINDS).
"""

from __future__ import annotations


class FedimgError(Exception):
    kind = "internal"
    retryable = False


class Unwanted(FedimgError):
    """The message is fine but not for us (owner, method, format, state). Drop quietly."""

    kind = "source"


class BadInput(FedimgError):
    """The message or what the source says about it cannot be used. Drop with a log line."""

    kind = "source"


class VerificationFailed(FedimgError):
    """A fetched file does not match its recorded size or checksum, or breaks a fetch rule."""

    kind = "verification"


class TransientError(FedimgError):
    """Koji down, HTTP 5xx, a timeout: the same message may succeed later. Nack (bounded)."""

    kind = "source"
    retryable = True


class TargetFailed(FedimgError):
    """A target (aws, downloads) failed; its failure messages were already published."""

    kind = "internal"

    def __init__(self, message: str, *, kind: str = "internal", retryable: bool = False):
        super().__init__(message)
        self.kind = kind
        self.retryable = retryable
