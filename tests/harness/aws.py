"""AWS fixtures: one moto server per test session, reached over real HTTP through AWS_ENDPOINT_URL.

Thin pytest wrappers over ``standins.moto``. State is wiped before every test.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterator

import pytest

from standins import StandinError
from standins.fault_proxy import FaultProxy
from standins.moto import (
    DEFAULT_REGION,
    MotoAWS,
    MotoServer,
    aws_env,
    is_foreign_aws_variable,
    start_moto_server,
)


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """A ``moto_server`` on a free port, started once; stopped by PID at session end."""
    try:
        server = start_moto_server(tmp_path_factory.mktemp("moto") / "moto_server.log")
    except StandinError as exc:
        pytest.fail(str(exc))
    try:
        yield server
    finally:
        server.stop()


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
        if is_foreign_aws_variable(name):
            monkeypatch.delenv(name, raising=False)
    for name, value in aws_env(moto_server.endpoint_url, tmp_path, DEFAULT_REGION).items():
        monkeypatch.setenv(name, value)
    return MotoAWS(moto_server)


@pytest.fixture
def fault_proxy(aws: MotoAWS, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    """A FaultProxy in front of this test's moto account, with AWS_ENDPOINT_URL pointing at it:
    boto3 clients made from now on (and child processes started with this environment) go
    through it. ``aws.direct_client()`` still reaches moto itself. Stopped after the test."""
    proxy = FaultProxy(aws.endpoint_url).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    try:
        yield proxy
    finally:
        proxy.stop()
