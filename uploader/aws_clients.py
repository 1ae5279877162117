"""boto3 clients for both targets that talk to AWS (EC2/EBS, and S3 downloads), with bounded
retries and timeouts, and the one place a botocore failure becomes a fedimg error.

Credentials, endpoint (AWS_ENDPOINT_URL) and region defaults come from boto3's standard chain;
the `[aws]` config adds the retry and timeout policy. botocore's "standard" retry mode retries
throttling, 5xx and connection errors with jittered exponential backoff, bounded by
`aws.max_attempts`; waits for a state (an AMI or snapshot becoming available) use botocore's
waiters. `retry_on_codes` (tenacity) covers the one wait botocore knows nothing about: EBS
answering "no such snapshot" for a while right after start_snapshot.

A region's work can be put under a `Deadline` (`ClientFactory.limit`): from then on every
attempt botocore is about to send to that region (first tries, retries and waiter polls alike)
raises AwsTimeout once the deadline has passed. A region that stops answering therefore holds its
thread for at most the attempt in flight when the deadline passed (connect_timeout +
read_timeout), never for max_attempts more.

`aws_error` turns whatever an AWS call raised into a class of shared.errors, so callers read
`kind` and `retryable` from the error and never classify botocore exceptions themselves.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import botocore.config
import botocore.exceptions
import tenacity
from botocore.parsers import ResponseParserError

from shared.config import AwsConfig
from shared.errors import AwsError, AwsTimeout, AwsTransient, FedimgError, as_error, one_line

__all__ = [
    "THROTTLING_CODES", "TRANSIENT_CODES", "ClientFactory", "Deadline", "aws_error", "error_code",
    "retry_on_codes",
]

T = TypeVar("T")

# Codes after which the same request may well work later.
THROTTLING_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "RequestLimitExceeded", "TooManyRequestsException", "SlowDown", "RequestThrottled",
    "ProvisionedThroughputExceededException", "EC2ThrottledException",
})
TRANSIENT_CODES = THROTTLING_CODES | {
    "InternalError", "InternalFailure", "InternalServerException", "ServiceUnavailable",
    "ServiceUnavailableException", "Unavailable", "RequestTimeout", "RequestTimeoutException",
    "IncorrectState", "ConcurrentSnapshotLimitExceeded", "ResourceLimitExceeded",
}

_DEFAULT_POOL = 10


@dataclasses.dataclass(frozen=True)
class Deadline:
    """`seconds` from `start` (time.monotonic), for the work of one region."""

    seconds: float
    what: str
    start: float = dataclasses.field(default_factory=time.monotonic)

    def remaining(self) -> float:
        return self.start + self.seconds - time.monotonic()

    def passed(self) -> bool:
        return self.remaining() <= 0

    def error(self) -> AwsTimeout:
        return AwsTimeout(f"{self.what}: not done within {self.seconds:g} s")


class ClientFactory:
    """One client per (service, region), shared by threads (botocore clients are thread-safe)."""

    def __init__(self, session: Any, aws: AwsConfig):
        self.session = session
        self.aws = aws
        self._clients: dict[tuple[str, str | None], Any] = {}
        self._deadlines: dict[str, Deadline] = {}
        self._lock = threading.Lock()

    def limit(self, region: str, deadline: Deadline) -> None:
        """Every later attempt to send a request to `region` raises deadline.error() once the
        deadline has passed (botocore does not retry it: it is no connection error)."""
        self._deadlines[region] = deadline

    def deadline(self, region: str) -> Deadline | None:
        return self._deadlines.get(region)

    def _check_deadline(self, region: str | None, **_: Any) -> None:
        deadline = self._deadlines.get(region) if region else None
        if deadline is not None and deadline.passed():
            raise deadline.error()

    def config(self, pool: int = _DEFAULT_POOL) -> botocore.config.Config:
        return botocore.config.Config(
            retries={"mode": "standard", "max_attempts": self.aws.max_attempts},
            connect_timeout=self.aws.connect_timeout,
            read_timeout=self.aws.read_timeout,
            max_pool_connections=max(_DEFAULT_POOL, pool),
        )

    def client(self, service: str, region: str | None = None) -> Any:
        """The shared client; `region` None means boto3's default region (the S3 case)."""
        key = (service, region)
        with self._lock:
            if key not in self._clients:
                pool = self.aws.upload_workers + 2 if service == "ebs" else _DEFAULT_POOL
                client = self.session.client(service, region_name=region,
                                             config=self.config(pool))
                client.meta.events.register(
                    "before-send", functools.partial(self._check_deadline, region))
                self._clients[key] = client
            return self._clients[key]

    def ec2(self, region: str) -> Any:
        return self.client("ec2", region)

    def ebs(self, region: str) -> Any:
        return self.client("ebs", region)

    def s3(self) -> Any:
        return self.client("s3")


def error_code(exc: BaseException) -> str | None:
    if isinstance(exc, botocore.exceptions.ClientError):
        return exc.response.get("Error", {}).get("Code")
    return None


def aws_error(exc: BaseException) -> FedimgError:
    """`exc`, raised by an AWS call or wait, as a class of shared.errors (its text: the botocore
    type and first line). Errors already in the tree pass through unchanged."""
    if isinstance(exc, FedimgError):
        return exc
    cls = _aws_class(exc)
    if cls is None:
        return as_error(exc)
    error = cls(one_line(exc))
    error.__cause__ = exc
    return error


def _aws_class(exc: BaseException) -> type[AwsError] | None:
    if isinstance(exc, botocore.exceptions.WaiterError):
        # Max attempts reached = it did not finish in time; a failure state is final, unless
        # the waiter stopped on throttling.
        if "Max attempts exceeded" in str(exc):
            return AwsTimeout
        reason = str(getattr(exc, "last_response", "") or "")
        return AwsTransient if "Throttl" in reason else AwsError
    if isinstance(exc, botocore.exceptions.ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        transient = (error_code(exc) or "") in TRANSIENT_CODES or status >= 500
        return AwsTransient if transient else AwsError
    if isinstance(exc, (botocore.exceptions.ConnectTimeoutError,
                        botocore.exceptions.ReadTimeoutError, TimeoutError)):
        return AwsTimeout
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return AwsError
    if isinstance(exc, (botocore.exceptions.BotoCoreError, ResponseParserError)):
        # a dropped connection, an unparseable answer (an HTML 500 page): worth another try
        return AwsTransient
    return None


def retry_on_codes(
    call: Callable[[], T],
    *,
    codes: frozenset[str] | set[str],
    deadline: float,
    first_delay: float = 0.5,
    max_delay: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call until it stops raising a ClientError with one of `codes`; give up (re-raising the
    last error) when the next wait would end past `deadline` seconds from the first call.

    For waits botocore's own retries do not cover: "snapshot does not exist yet" right after
    start_snapshot, throttling that outlasts max_attempts on a hot snapshot.
    """
    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(lambda e: error_code(e) in codes),
        wait=tenacity.wait_exponential(multiplier=first_delay, max=max_delay),
        stop=tenacity.stop_before_delay(deadline),
        sleep=sleep,
        reraise=True,
    )
    return retrying(call)
