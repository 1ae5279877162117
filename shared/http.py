"""One HTTP policy for every fedimg client: timeouts, identity, bounded retries, redirects.

Two libraries share the work, each for what it can see:

- urllib3's ``Retry``, mounted on the session's adapters, retries what the transport sees before
  an answer's body is read: connection failures, read errors and timeouts while waiting for the
  headers, and the statuses in ``RETRY_STATUS`` (honouring Retry-After, capped at
  ``MAX_RETRY_AFTER``), for GET and HEAD only, at most ``retries`` times with exponential
  backoff. A status still failing after that is returned to the caller, who names it.
- tenacity (``retry_incomplete``) retries what only the caller can judge: a body cut off while
  streaming, JSON that does not parse, a page or a file shorter than it must be. The caller raises
  ``IncompleteAnswer`` for those; after ``attempts`` tries it gets ``GaveUp``.

Every request has a (connect, read) timeout unless the caller names another one; with
``same_origin_redirects`` a redirect to another scheme://host:port is refused
(``RedirectRefused``) before anything is sent there.

Both call ``on_retry`` with a ``RetryNote`` (which retry of how many, the problem in a few words,
the pause before it) once per retry they grant, so a caller can say in one line of its own words
what is being retried; urllib3's own retry warnings are therefore left to the debug level.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import requests
import tenacity
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, ReadTimeoutError
from urllib3.util.retry import Retry

from shared.errors import TransientError, VerificationFailed

__all__ = [
    "GaveUp",
    "IncompleteAnswer",
    "MAX_REDIRECTS",
    "RETRY_STATUS",
    "RedirectRefused",
    "RetryNote",
    "problem_of",
    "retry_incomplete",
    "retry_policy",
    "session",
]

log = logging.getLogger(__name__)

T = TypeVar("T")
Timeout = float | tuple[float, float]


@dataclass(frozen=True)
class RetryNote:
    """One retry about to happen: the ``attempt``-th of at most ``retries``, ``sleep`` seconds
    from now, because of ``problem`` (a few words: "connection refused", "HTTP 503")."""

    attempt: int
    retries: int
    problem: str
    sleep: float

    def __str__(self) -> str:
        when = "now" if self.sleep < 0.5 else f"in {self.sleep:.0f} s"
        return f"{self.problem}; retry {self.attempt} of {self.retries} {when}"


OnRetry = Callable[[RetryNote], None]

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
MAX_REDIRECTS = 5
MAX_BACKOFF = 10.0  # seconds: the longest pause between two attempts
MAX_RETRY_AFTER = 60.0  # seconds: a longer Retry-After is shortened to this


class IncompleteAnswer(TransientError):
    """The server answered, but not all of it arrived or it is not what it must be; ask again."""


class GaveUp(TransientError):
    """An answer stayed incomplete for every allowed attempt; the message says how many."""


class RedirectRefused(VerificationFailed, requests.RequestException):
    """A redirect pointed at another scheme://host:port and was not followed."""


class _QuietUrllib3Retries(logging.Filter):
    """urllib3 logs every retry as a WARNING with its internal repr; ``_ObservedRetry`` says it
    in words (or its caller does), so urllib3's line is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Retrying (")


logging.getLogger("urllib3.connectionpool").addFilter(_QuietUrllib3Retries())


class _ObservedRetry(Retry):
    """urllib3's Retry that calls ``on_retry`` each time it grants another attempt.

    urllib3 makes a new Retry per attempt through ``new()``, so the callback is carried there.
    """

    def __init__(self, *args: Any, on_retry: OnRetry | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_retry = on_retry

    def new(self, **kwargs: Any) -> _ObservedRetry:
        renewed = super().new(**kwargs)
        renewed.on_retry = self.on_retry
        return renewed

    def increment(self, method: str | None = None, url: str | None = None,
                  response: Any = None, error: Exception | None = None,
                  *args: Any, **kwargs: Any) -> _ObservedRetry:
        # raises MaxRetryError when spent
        renewed = super().increment(method, url, response, error, *args, **kwargs)
        done = len(renewed.history)
        pause = renewed.get_retry_after(response) if response is not None else None
        note = RetryNote(attempt=done, retries=done + max(0, renewed.total or 0),
                         problem=_problem(response, error),
                         sleep=pause if pause is not None else renewed.get_backoff_time())
        if self.on_retry is not None:
            self.on_retry(note)
        else:
            log.warning("%s %s: %s", method, url, note)
        return renewed

    def get_retry_after(self, response: Any) -> float | None:
        after = super().get_retry_after(response)
        return None if after is None else min(after, MAX_RETRY_AFTER)


def _problem(response: Any, error: Exception | None) -> str:
    """A few words for what made urllib3 retry: the status, or the network failure."""
    if response is not None and getattr(response, "status", None):
        return f"HTTP {response.status}"
    if isinstance(error, NameResolutionError):
        return "host name not resolved"
    cause: BaseException | None = error
    while cause is not None:  # NewConnectionError/ProtocolError wrap the socket's error
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror[:1].lower() + cause.strerror[1:]
        cause = cause.__cause__ or cause.__context__
    # after the chain: urllib3's NewConnectionError is a ConnectTimeoutError too
    if isinstance(error, ConnectTimeoutError):
        return "no connection within the timeout"
    if isinstance(error, ReadTimeoutError):
        return "no answer within the timeout"
    return type(error).__name__ if error is not None else "unknown failure"


def problem_of(exc: BaseException) -> str:
    """A few words for a failed request (requests wraps urllib3's reason in MaxRetryError)."""
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)
    if isinstance(reason, Exception):
        return _problem(None, reason)
    if isinstance(exc, requests.Timeout):
        return "no answer within the timeout"
    return f"{type(exc).__name__}: {exc}"


def retry_policy(retries: int, *, backoff: float, on_retry: OnRetry | None = None) -> Retry:
    """The transport retry policy: at most ``retries`` more attempts of a GET or HEAD."""
    return _ObservedRetry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        other=0,  # TLS and protocol failures do not get better by asking again
        allowed_methods=frozenset({"GET", "HEAD"}),
        status_forcelist=RETRY_STATUS,
        backoff_factor=backoff,
        backoff_max=MAX_BACKOFF,
        respect_retry_after_header=True,
        raise_on_status=False,  # hand the last answer back so the caller can name its status
        on_retry=on_retry,
    )


class _DefaultTimeoutAdapter(HTTPAdapter):
    """An adapter that gives every request ``timeout`` unless the request names its own."""

    def __init__(self, timeout: Timeout, **kwargs: Any) -> None:
        self.default_timeout = timeout
        super().__init__(**kwargs)

    def send(self, request: requests.PreparedRequest, timeout: Any = None,
             **kwargs: Any) -> requests.Response:
        return super().send(request, timeout=self.default_timeout if timeout is None else timeout,
                            **kwargs)


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme, parts.hostname, parts.port


def _refuse_off_host_redirect(resp: requests.Response, *args: Any,
                              **kwargs: Any) -> requests.Response:
    """A response hook: stop before following a redirect that leaves scheme://host:port."""
    if resp.is_redirect:
        location = urllib.parse.urljoin(resp.url, resp.headers.get("Location", ""))
        if _origin(location) != _origin(resp.url):
            resp.close()
            raise RedirectRefused(f"refusing redirect from {resp.url} to another host: "
                                  f"{location}", response=resp)
    return resp


def session(
    user_agent: str,
    *,
    timeout: Timeout,
    retries: int,
    backoff: float = 0.5,
    verify: str | None = None,
    same_origin_redirects: bool = False,
    on_retry: OnRetry | None = None,
) -> requests.Session:
    """A requests session with fedimg's HTTP policy (see the module docstring).

    ``verify`` is a CA bundle to trust instead of the system's; ``on_retry`` is called once per
    transport retry (for counting and logging).
    """
    http = requests.Session()
    http.headers["User-Agent"] = user_agent
    if verify:
        http.verify = verify
    http.max_redirects = MAX_REDIRECTS
    adapter = _DefaultTimeoutAdapter(
        timeout, max_retries=retry_policy(retries, backoff=backoff, on_retry=on_retry))
    http.mount("http://", adapter)
    http.mount("https://", adapter)
    if same_origin_redirects:
        http.hooks["response"].append(_refuse_off_host_redirect)
    return http


def retry_incomplete(
    attempt: Callable[[], T],
    *,
    what: str,
    attempts: int,
    backoff: float,
    on_retry: OnRetry | None = None,
) -> T:
    """Call ``attempt`` until it returns without raising IncompleteAnswer, at most ``attempts``
    times, pausing ``backoff`` * 2**n seconds (at most MAX_BACKOFF) in between.

    Any other exception ends it at once. Raises GaveUp (naming ``what``, the last problem and the
    number of attempts) when every attempt was incomplete.
    """

    def before_sleep(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        note = RetryNote(attempt=state.attempt_number, retries=attempts - 1, problem=str(exc),
                         sleep=state.next_action.sleep if state.next_action else 0.0)
        if on_retry is not None:
            on_retry(note)
        else:
            log.warning("%s: %s", what, note)

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(IncompleteAnswer),
        stop=tenacity.stop_after_attempt(max(1, attempts)),
        wait=tenacity.wait_exponential(multiplier=backoff, max=MAX_BACKOFF),
        before_sleep=before_sleep,
    )
    try:
        return retrying(attempt)
    except tenacity.RetryError as exc:
        last = exc.last_attempt
        raise GaveUp(f"{what}: {last.exception()} (gave up after {last.attempt_number} attempts)") \
            from last.exception()
