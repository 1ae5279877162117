"""fedimg's HTTP policy against a real loopback server: what is retried, how often, what is not."""

from __future__ import annotations

import http.server
import threading

import pytest
import urllib3

from shared import http as shared_http
from shared.http import GaveUp, IncompleteAnswer, retry_incomplete


class _Server:
    """Answers request n with ``statuses[n-1]`` (the last one for every later request)."""

    def __init__(self, statuses: list[int]) -> None:
        self.seen: list[tuple[str, str]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                outer.seen.append((self.command, self.path))
                status = statuses[min(len(outer.seen), len(statuses)) - 1]
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            do_GET = do_POST = _answer  # noqa: N815 - http.server's names

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/x"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def serve():
    servers: list[_Server] = []

    def start(statuses: list[int]) -> _Server:
        servers.append(_Server(statuses))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def _session(retries: int, retried: list[int]):
    return shared_http.session("fedimg-test", timeout=5, retries=retries, backoff=0.001,
                               on_retry=lambda note: retried.append(note))


def test_5xx_and_429_are_retried_until_an_answer_comes(serve):
    server = serve([503, 429, 200])
    retried: list[int] = []
    resp = _session(3, retried).get(server.url)
    assert resp.status_code == 200 and resp.content == b"ok"
    assert server.seen == [("GET", "/x")] * 3 and len(retried) == 2
    # each retry is described for the caller's own line: which of how many, and why
    assert [(n.attempt, n.retries, n.problem) for n in retried] == [
        (1, 3, "HTTP 503"), (2, 3, "HTTP 429")]
    assert str(retried[0]) == "HTTP 503; retry 1 of 3 now"


def test_a_status_still_failing_is_handed_back_after_the_bound(serve):
    server = serve([502])
    retried: list[int] = []
    resp = _session(2, retried).get(server.url)
    assert resp.status_code == 502
    assert len(server.seen) == 3 and len(retried) == 2


def test_post_and_client_errors_are_not_retried(serve):
    server = serve([503, 404])
    retried: list[int] = []
    session = _session(3, retried)
    assert session.post(server.url).status_code == 503
    assert session.get(server.url).status_code == 404
    assert server.seen == [("POST", "/x"), ("GET", "/x")] and retried == []


def test_requests_carry_the_user_agent(serve):
    server = serve([200])
    session = _session(0, [])
    assert session.get(server.url).request.headers["User-Agent"] == "fedimg-test"


def test_a_long_retry_after_is_shortened():
    policy = shared_http.retry_policy(3, backoff=0.5)
    long = urllib3.HTTPResponse(status=503, headers={"Retry-After": "3600"})
    short = urllib3.HTTPResponse(status=503, headers={"Retry-After": "2"})
    assert policy.get_retry_after(long) == shared_http.MAX_RETRY_AFTER
    assert policy.get_retry_after(short) == 2


def test_incomplete_answers_are_asked_again_within_the_bound():
    calls: list[int] = []
    retried: list[int] = []

    def twice_short() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise IncompleteAnswer(f"short page {len(calls)}")
        return "whole"

    assert retry_incomplete(twice_short, what="page", attempts=3, backoff=0.001,
                            on_retry=lambda note: retried.append(note)) == "whole"
    assert len(calls) == 3 and len(retried) == 2



def test_an_answer_incomplete_every_time_gives_up_after_the_bound():
    calls: list[int] = []

    def always_short() -> str:
        calls.append(1)
        raise IncompleteAnswer(f"short page {len(calls)}")

    with pytest.raises(GaveUp, match=r"^page: short page 3 \(gave up after 3 attempts\)$"):
        retry_incomplete(always_short, what="page", attempts=3, backoff=0.001)
    assert len(calls) == 3


def test_other_errors_end_at_once():
    calls: list[int] = []

    def broken() -> None:
        calls.append(1)
        raise ValueError("not a retry matter")

    with pytest.raises(ValueError, match="not a retry matter"):
        retry_incomplete(broken, what="x", attempts=5, backoff=0.001)
    assert calls == [1]
