"""History-stack fixtures: the real RabbitMQ -> datanommer -> PostgreSQL -> datagrepper chain.

Thin pytest wrappers over ``standins.datagrepper``: one stack per session on the session
exchange, and an emptied one per test that counts what comes back. If PostgreSQL is unreachable
the fixture FAILS with a clear message: skipping would hide a broken test environment.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from standins import StandinError
from standins.datagrepper import Datagrepper, start_history_stack


@pytest.fixture(scope="session")
def datagrepper(
    amqp_exchange: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Datagrepper]:
    """The whole history stack, started once per session (a few seconds), torn down by PID."""
    work = tmp_path_factory.mktemp("datagrepper")
    with contextlib.ExitStack() as running:
        try:
            handle = running.enter_context(start_history_stack(amqp_exchange, work))
        except StandinError as exc:
            pytest.fail(f"the datagrepper stack did not start: {exc}")
        yield handle


@pytest.fixture
def datagrepper_empty(datagrepper: Datagrepper) -> Datagrepper:
    """The session stack with an empty history, for tests that count what comes back."""
    datagrepper.reset()
    return datagrepper
