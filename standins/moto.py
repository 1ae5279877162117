"""AWS on loopback: a ``moto_server`` process reached over real HTTP through AWS_ENDPOINT_URL.

Why a server and not ``mock_aws``: fedimg's uploader (and its CLI subprocesses) find AWS through
boto3's standard chain, exactly as in production; ``AWS_ENDPOINT_URL`` pointing at a moto server
exercises that path, works across processes, and keeps botocore's real HTTP, retry and
serialisation code in the loop. ``MotoServer.reset`` wipes its state (POST /moto-api/reset).

moto does not implement every EC2 call fedimg could use (import_snapshot, image deprecation):
what it lacks, fedimg does not rely on against it.
"""

from __future__ import annotations

import os
import pathlib
import sys
from typing import Any

import requests

from standins import StandinError
from standins.processes import ManagedProcess, ProcessExited, free_port, wait_until

MOTO_SERVER = pathlib.Path(sys.executable).parent / "moto_server"
DEFAULT_REGION = "us-east-1"
START_TIMEOUT = 30.0  # seconds until the moto server must answer
HTTP_TIMEOUT = 10.0  # seconds for our own HTTP calls (reset, health)
# A reset drops every resource in every region; on a loaded machine, right after a test whose
# timed-out region threads were still calling moto, its answer took longer than HTTP_TIMEOUT.
RESET_TIMEOUT = 120.0

# Anything in the environment that could send boto3 elsewhere or to real credentials.
AWS_ENV_TO_CLEAR = (
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


def aws_env(endpoint_url: str, no_files: pathlib.Path, region: str = DEFAULT_REGION,
            key: str = "testing") -> dict[str, str]:
    """Environment that sends any boto3 to ``endpoint_url`` with fake credentials.

    The shared config and credentials files point at ``no_files/no-aws-*`` (files that do not
    exist), so a developer's ~/.aws can never leak in; instance metadata is off.
    """
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": key,
        "AWS_SECRET_ACCESS_KEY": key,
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "AWS_CONFIG_FILE": str(no_files / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(no_files / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def is_foreign_aws_variable(name: str) -> bool:
    """True for variables that could point boto3 at another endpoint or real credentials."""
    return name in AWS_ENV_TO_CLEAR or name.startswith("AWS_ENDPOINT_URL_")


class MotoServer:
    """A running ``moto_server`` on 127.0.0.1."""

    def __init__(self, process: ManagedProcess, port: int) -> None:
        self.process = process
        self.port = port
        self.endpoint_url = f"http://127.0.0.1:{port}"

    def reset(self) -> None:
        """Forget every resource in every region (moto's own reset API)."""
        resp = requests.post(f"{self.endpoint_url}/moto-api/reset",
                             timeout=(HTTP_TIMEOUT, RESET_TIMEOUT))
        resp.raise_for_status()

    def stop(self) -> None:
        """Stop the server by its PID."""
        self.process.stop()


def moto_answers(url: str) -> bool:
    """True if a moto server answers at ``url``."""
    return requests.get(f"{url}/moto-api/", timeout=2).status_code < 500


def _alive_and_answers(proc: ManagedProcess, url: str) -> bool:
    if not proc.alive():
        raise ProcessExited(f"moto_server exited with {proc.proc.returncode}:\n{proc.tail()}")
    return moto_answers(url)


def start_moto_server(log: pathlib.Path, attempts: int = 3) -> MotoServer:
    """Start ``moto_server -H 127.0.0.1 -p <free port>``; StandinError if it never answers.

    A free port can be taken between probing and binding, so up to ``attempts`` ports are tried.
    """
    last_error: Exception | None = None
    for _attempt in range(attempts):
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
        return MotoServer(proc, port)
    raise StandinError(
        f"moto_server did not start: {last_error}\n{log.read_text(errors='replace')}"
    )


def boto_config(**overrides: Any) -> Any:
    """botocore Config with bounded retries and timeouts: a hung call fails fast."""
    from botocore.config import Config

    settings: dict[str, Any] = {
        "retries": {"max_attempts": 3, "mode": "standard"},
        "connect_timeout": 5,
        "read_timeout": 30,
    }
    settings.update(overrides)
    return Config(**settings)


class MotoAWS:
    """A moto account as boto3 sees it: the endpoint and ready-made clients."""

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

    def direct_client(self, service: str, region: str | None = None, **config: Any) -> Any:
        """Like ``client``, but always to the moto server itself, whatever AWS_ENDPOINT_URL
        says: for checking moto's state while the code under test goes through a fault proxy."""
        import boto3

        return boto3.session.Session().client(
            service, region_name=region or self.region, endpoint_url=self.endpoint_url,
            config=boto_config(**config))

    def reset(self) -> None:
        """Wipe moto's state."""
        self.server.reset()
