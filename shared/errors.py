"""Every failure fedimg raises, in one tree, each class saying what it means.

Two class attributes carry the meaning, so no caller works it out again:

- `kind`: the `error_kind` of the failure message (shared.messages.ERROR_KINDS);
- `retryable`: a later attempt may succeed (a hub down, HTTP 5xx, a timeout). For the bus
  consumer this is the difference between Nack (requeue) and Drop (this message will never work);
  `broker_exception` is the one place that mapping is written.

The tree, by family:

    FedimgError
    ├── SetupError          the installation cannot run as configured
    │   ├── ConfigError         a config file that cannot be used (path, key, problem)
    │   └── TargetUnavailable   a configured target has no handler here
    ├── InputError          the request or what its source says cannot be used (kind "source")
    │   ├── Unwanted            fine, but not for us: dropped quietly
    │   └── BadInput            malformed or contradictory
    │       └── UnusableIdentity    an identity that cannot name a download path
    ├── VerificationFailed  a fetched file is not what its source recorded
    ├── TransientError      the source is down or slow: try again later
    ├── TargetError         a target could not publish
    │   ├── TargetFailed        already announced; carries its cause's kind and retryable
    │   ├── AwsError            EC2/EBS refused (AwsTransient, AwsTimeout: worth another try)
    │   ├── CloudError          another cloud's API refused, e.g. Glance (CloudTransient,
    │   │                       CloudTimeout: worth another try)
    │   ├── ConversionFailed    qemu-img / tar / xz failed (ConversionNoSpace, ConversionTimeout:
    │   │                       worth another try)
    │   ├── DestinationError    storing a download or its CHECKSUM failed
    │   └── RegistryError       a container registry refused or failed a push or a read
    ├── ReportError         the report cannot be built (HistoryError, RunError, Unreadable)
    ├── TriggerError        fedimg-build cannot start a build (HubUnreachable, LoginFailed,
    │                       PermissionMissing, JobError)
    └── PublishFailed       the broker did not confirm a message
"""

from __future__ import annotations

import os
import reprlib

from fedora_messaging.exceptions import Drop, Nack

__all__ = [
    "AwsError", "AwsTimeout", "AwsTransient", "BadInput", "CloudError", "CloudTimeout",
    "CloudTransient", "ConfigError", "ConversionFailed",
    "ConversionNoSpace", "ConversionTimeout", "DestinationError",
    "FedimgError", "HistoryError", "HubUnreachable", "InputError", "JobError", "LoginFailed",
    "PermissionMissing", "PublishFailed", "RegistryError", "ReportError", "RunError", "SetupError",
    "TargetError", "TargetFailed", "TargetUnavailable", "TransientError", "TriggerError",
    "Unreadable", "UnusableIdentity", "Unwanted", "VerificationFailed", "as_error",
    "broker_exception", "one_line", "shown",
]


class FedimgError(Exception):
    """The root: str() is the one line shown to a user or put in a failure message."""

    kind: str = "internal"
    retryable: bool = False
    quiet: bool = False  # an expected outcome, logged at info level rather than as a problem


# --- setup: nothing works until the installation is fixed ------------------------------------


class SetupError(FedimgError):
    """This installation cannot run as configured; retrying the same message does not help."""


class ConfigError(SetupError):
    """A config file that cannot be used; str() is the one line shown to the user."""

    def __init__(self, path: str | os.PathLike, key: str | None, problem: str):
        self.path = str(path)
        self.key = key
        self.problem = problem
        where = f"{self.path}: {key}" if key else self.path
        super().__init__(f"{where}: {problem}")


class TargetUnavailable(SetupError):
    """A configured target has no handler in this installation."""


# --- input: the request or its source -----------------------------------------------------------


class InputError(FedimgError):
    """The request, or what its trusted source says about it, cannot be used."""

    kind = "source"


class Unwanted(InputError):
    """The message is fine but not for us (owner, method, format, state). Dropped quietly."""

    quiet = True


class BadInput(InputError):
    """The message or what the source says about it cannot be used. Dropped with a log line."""


class UnusableIdentity(BadInput):
    """An image identity with a field that cannot be used as a download path segment."""


class VerificationFailed(FedimgError):
    """A fetched file does not match its recorded size or checksum, or breaks a fetch rule."""

    kind = "verification"


class TransientError(FedimgError):
    """Koji down, HTTP 5xx, a timeout: the same message may succeed later (bounded Nack)."""

    kind = "source"
    retryable = True


# --- targets ------------------------------------------------------------------------------------


class TargetError(FedimgError):
    """A target (aws, downloads) could not publish an image."""


class TargetFailed(TargetError):
    """A target failed and already published its failure messages; the cause's meaning travels
    with it so the consumer still knows whether a redelivery may help."""

    def __init__(self, message: str, *, kind: str = "internal", retryable: bool = False):
        super().__init__(message)
        self.kind = kind
        self.retryable = retryable


class AwsError(TargetError):
    """EC2 or EBS refused a request for good (permissions, a bad parameter, a failed state)."""

    kind = "aws"


class AwsTransient(AwsError):
    """Throttling, a 5xx, a dropped connection or an unreadable answer: worth another try."""

    retryable = True


class AwsTimeout(AwsError):
    """An AWS call or wait did not finish in time."""

    kind = "timeout"
    retryable = True


class CloudError(TargetError):
    """A cloud API other than AWS (Glance, ...) refused a request for good: a bad parameter,
    a quota, data the cloud will not take. The failure message's `target` names the cloud."""

    kind = "cloud"


class CloudTransient(CloudError):
    """A cloud API was unreachable, cut off, overloaded (5xx, 429) or mid-change: worth
    another try."""

    retryable = True


class CloudTimeout(CloudError):
    """A cloud API call or wait did not finish in time."""

    kind = "timeout"
    retryable = True


class ConversionFailed(TargetError):
    """A download format could not be produced (qemu-img, tar or xz failed or did not start)."""

    kind = "conversion"


class ConversionNoSpace(ConversionFailed):
    """A conversion could not get the scratch space it needs (disk full, no room for its work
    files): another run, with space freed, may succeed."""

    retryable = True


class ConversionTimeout(ConversionFailed):
    """A conversion did not finish within downloads.timeout and was killed."""

    kind = "timeout"
    retryable = True


class DestinationError(TargetError):
    """Storing a download or the CHECKSUM failed (disk full, permission, S3 error)."""

    kind = "destination"
    retryable = True


class RegistryError(TargetError):
    """A container registry did not take a push or answer a read (down, overloaded, refusing
    the credentials, out of quota): the other registries are unaffected, and a later attempt
    may succeed once the registry or its credentials are fixed."""

    kind = "registry"
    retryable = True


# --- the report ---------------------------------------------------------------------------------


class ReportError(FedimgError):
    """fedimg-report cannot produce a report; its output directory is left untouched."""


class HistoryError(ReportError):
    """History could not be read completely; the run must fail and publish nothing."""


class RunError(ReportError):
    """The run cannot produce a report (bad option, unreadable history)."""


class Unreadable(ReportError, ValueError):
    """A history row that cannot be understood (the message says why, in one line).

    Also a ValueError, because a row is a value: code that reads saved state treats it as one.
    """


# --- the trigger --------------------------------------------------------------------------------


class TriggerError(FedimgError):
    """fedimg-build cannot start a build: one line (str()) and a non-zero exit."""


class HubUnreachable(TriggerError):
    """The Koji hub did not answer (network, TLS, overload)."""

    retryable = True


class LoginFailed(TriggerError):
    """The hub refused the configured identity."""


class PermissionMissing(TriggerError):
    """The logged-in user may not start image builds."""


class JobError(TriggerError):
    """A job that cannot be turned into a Koji request."""


# --- the bus ------------------------------------------------------------------------------------


class PublishFailed(FedimgError):
    """The broker did not confirm a message in time, or refused it."""

    retryable = True


def one_line(exc: BaseException, limit: int = 500) -> str:
    """The error's type and the first line of its text, for logs and failure messages."""
    text = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {text}"[:limit]


class _Brief(reprlib.Repr):
    """reprlib with room for a file name, and ints too long for repr() shown by their size."""

    def __init__(self) -> None:
        super().__init__()
        self.maxstring = self.maxother = 80
        self.maxlong = 40
        self.maxlist = self.maxtuple = self.maxdict = self.maxset = 4
        self.maxlevel = 3

    def repr_int(self, x: int, level: int) -> str:
        try:
            return super().repr_int(x, level)
        except ValueError:  # more digits than Python converts to text (sys.int_info)
            return f"<an integer of {x.bit_length()} bits>"


_BRIEF = _Brief()


def shown(value: object) -> str:
    """A value from outside (a message body, a hub answer) as it may appear in one log line:
    a short repr, so a 10k-character, 100 MB or deeply nested field stays one readable line."""
    text = _BRIEF.repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def as_error(exc: BaseException) -> FedimgError:
    """`exc` itself if it is in the tree, else an internal (not retryable) FedimgError naming
    it: a bug must be reported as one, never mistaken for a known failure."""
    if isinstance(exc, FedimgError):
        return exc
    error = FedimgError(one_line(exc))
    error.__cause__ = exc
    return error


def broker_exception(exc: BaseException) -> Drop | Nack:
    """What a consumer raises for a message whose handling failed with `exc`.

    Nack (requeue) for a retryable error, and for anything outside the tree (an unexpected error
    may be a passing fault, and the broker's delivery limit bounds the retries); Drop otherwise.
    """
    if isinstance(exc, FedimgError) and not exc.retryable:
        return Drop()
    return Nack()
