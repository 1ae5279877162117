"""AWS fixtures: one moto server per test session, reached over real HTTP through AWS_ENDPOINT_URL.

Why a server and not ``mock_aws``: the uploader (and its CLI subprocesses) must find AWS through
boto3's standard chain, exactly as in production; ``AWS_ENDPOINT_URL`` pointing at a moto server
exercises that path, works across processes, and keeps botocore's real HTTP, retry and
serialisation code in the loop. State is wiped before every test (POST /moto-api/reset).

See design.md "AWS facts" for what moto does not implement (import_snapshot, deprecation, ...).
"""

from __future__ import annotations

import os
import pathlib
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.harness.processes import ManagedProcess, ProcessExited, free_port, wait_until

MOTO_SERVER = pathlib.Path(sys.executable).parent / "moto_server"
DEFAULT_REGION = "us-east-1"
START_TIMEOUT = 30.0  # seconds until the moto server must answer
HTTP_TIMEOUT = 10.0  # seconds for harness HTTP calls (reset, health)

# Anything in the environment that could send boto3 elsewhere or to real credentials.
_AWS_ENV_TO_CLEAR = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CA_BUNDLE",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_MAX_ATTEMPTS",
    "AWS_RETRY_MODE",
)


class MotoServer:
    """A running ``moto_server`` on 127.0.0.1 (session-wide)."""

    def __init__(self, process: ManagedProcess, port: int) -> None:
        self.process = process
        self.port = port
        self.endpoint_url = f"http://127.0.0.1:{port}"

    def reset(self) -> None:
        """Forget every resource in every region (moto's own reset API)."""
        resp = requests.post(f"{self.endpoint_url}/moto-api/reset", timeout=HTTP_TIMEOUT)
        resp.raise_for_status()


def _answers(url: str) -> bool:
    return requests.get(f"{url}/moto-api/", timeout=2).status_code < 500


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """Start ``moto_server -H 127.0.0.1 -p <free port>`` once; stopped by PID at session end."""
    log = tmp_path_factory.mktemp("moto") / "moto_server.log"
    last_error: Exception | None = None
    for _attempt in range(3):  # a free port can be taken between probing and binding
        port = free_port()
        proc = ManagedProcess(
            "moto_server",
            [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)],
            log,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until(
                lambda proc=proc, url=url: _alive_and_answers(proc, url),
                START_TIMEOUT,
                f"moto_server on {url}",
                interval=0.1,
            )
        except Exception as exc:
            last_error = exc
            proc.stop()
            continue
        server = MotoServer(proc, port)
        try:
            yield server
        finally:
            proc.stop()
        return
    pytest.fail(f"moto_server did not start: {last_error}\n{log.read_text(errors='replace')}")


def _alive_and_answers(proc: ManagedProcess, url: str) -> bool:
    if not proc.alive():
        raise ProcessExited(f"moto_server exited with {proc.proc.returncode}:\n{proc.tail()}")
    return _answers(url)


def boto_config(**overrides: Any) -> Any:
    """botocore Config with bounded retries and timeouts: a hung call fails a test, not CI."""
    from botocore.config import Config

    settings: dict[str, Any] = {
        "retries": {"max_attempts": 3, "mode": "standard"},
        "connect_timeout": 5,
        "read_timeout": 30,
    }
    settings.update(overrides)
    return Config(**settings)


class MotoAWS:
    """What a test gets from the ``aws`` fixture: the endpoint and ready-made boto3 clients."""

    def __init__(self, server: MotoServer, region: str = DEFAULT_REGION) -> None:
        self.server = server
        self.endpoint_url = server.endpoint_url
        self.region = region

    def client(self, service: str, region: str | None = None, **config: Any) -> Any:
        """A boto3 client for ``service`` in ``region`` (default us-east-1).

        It finds the moto server through AWS_ENDPOINT_URL like production code would; nothing
        is passed explicitly except the bounded-retry Config (``config`` overrides its keys).
        """
        import boto3

        session = boto3.session.Session()
        return session.client(
            service, region_name=region or self.region, config=boto_config(**config)
        )

    def reset(self) -> None:
        """Wipe moto's state in the middle of a test."""
        self.server.reset()


@pytest.fixture
def aws(
    moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path
) -> MotoAWS:
    """A clean moto account for this test, reachable by any boto3 through the environment.

    Sets AWS_ENDPOINT_URL (honoured by boto3 >= 1.28), fake credentials and us-east-1; clears
    profiles, tokens and service-specific endpoint overrides, and points the shared config and
    credentials files at nothing, so a developer's ~/.aws can never leak in.
    """
    moto_server.reset()
    for name in list(os.environ):
        if name in _AWS_ENV_TO_CLEAR or name.startswith("AWS_ENDPOINT_URL_"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", DEFAULT_REGION)
    monkeypatch.setenv("AWS_REGION", DEFAULT_REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return MotoAWS(moto_server)
