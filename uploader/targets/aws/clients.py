"""boto3 clients with bounded retries and timeouts, and what a botocore failure means for us.

Credentials, endpoint (AWS_ENDPOINT_URL) and region defaults come from boto3's standard chain;
we only add the retry/timeout policy from [aws] config. botocore's "standard" retry mode
retries throttling, 5xx and connection errors with jittered exponential backoff, bounded by
max_attempts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import botocore.config
import botocore.exceptions
from botocore.parsers import ResponseParserError

from shared.config import AwsConfig

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


class ClientFactory:
    """One client per (service, region), shared by threads (botocore clients are thread-safe)."""

    def __init__(self, session: Any, aws: AwsConfig):
        self.session = session
        self.aws = aws
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def config(self, pool: int = 10) -> botocore.config.Config:
        return botocore.config.Config(
            retries={"mode": "standard", "max_attempts": self.aws.max_attempts},
            connect_timeout=self.aws.connect_timeout,
            read_timeout=self.aws.read_timeout,
            max_pool_connections=max(10, pool),
        )

    def client(self, service: str, region: str) -> Any:
        key = (service, region)
        with self._lock:
            if key not in self._clients:
                pool = self.aws.upload_workers + 2 if service == "ebs" else 10
                self._clients[key] = self.session.client(
                    service, region_name=region, config=self.config(pool)
                )
            return self._clients[key]

    def ec2(self, region: str) -> Any:
        return self.client("ec2", region)

    def ebs(self, region: str) -> Any:
        return self.client("ebs", region)


def error_code(exc: BaseException) -> str | None:
    if isinstance(exc, botocore.exceptions.ClientError):
        return exc.response.get("Error", {}).get("Code")
    return None


def classify(exc: BaseException) -> tuple[str, bool]:
    """(error_kind, retryable) for a failure message about an AWS step."""
    from uploader.errors import FedimgError

    if isinstance(exc, FedimgError):
        return exc.kind, exc.retryable
    if isinstance(exc, botocore.exceptions.WaiterError):
        # Max attempts reached = it did not finish in time; a failure state is final.
        reason = str(getattr(exc, "last_response", "") or "")
        timed_out = "Max attempts exceeded" in str(exc)
        return ("timeout", True) if timed_out else ("aws", "Throttl" in reason)
    if isinstance(exc, botocore.exceptions.ClientError):
        code = error_code(exc) or ""
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return "aws", code in TRANSIENT_CODES or status >= 500
    if isinstance(exc, (botocore.exceptions.ConnectTimeoutError,
                        botocore.exceptions.ReadTimeoutError)):
        return "timeout", True
    if isinstance(exc, (botocore.exceptions.EndpointConnectionError,
                        botocore.exceptions.ConnectionError)):
        return "aws", True
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return "aws", False
    if isinstance(exc, (botocore.exceptions.BotoCoreError, ResponseParserError)):
        # an unparseable answer (an HTML 500 page), a transport problem: worth another try
        return "aws", True
    if isinstance(exc, TimeoutError):
        return "timeout", True
    return "internal", False


def retry_on_codes(
    call: Callable[[], T],
    *,
    codes: frozenset[str] | set[str],
    deadline: float,
    first_delay: float = 0.5,
    max_delay: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call until it stops raising one of `codes` or `deadline` seconds have passed.

    For waits botocore's own retries do not cover: "snapshot does not exist yet" right after
    start_snapshot, throttling that outlasts max_attempts on a hot snapshot.
    """
    end = time.monotonic() + deadline
    delay = first_delay
    while True:
        try:
            return call()
        except botocore.exceptions.ClientError as e:
            if error_code(e) not in codes or time.monotonic() + delay > end:
                raise
        sleep(delay)
        delay = min(delay * 2, max_delay)


def describe_error(exc: BaseException, limit: int = 500) -> str:
    """One line for logs and failure messages: the error's type and the first line of its text."""
    text = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {text}"[:limit]
