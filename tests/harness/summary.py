"""Tables a test wants in every run's log, not only with -s: ``terminal_summary(title, text)``.

The text is kept on the pytest config and written by ``pytest_terminal_summary`` after the
results, so `make test` logs carry it even when the test passed (print() output of a passing
test is hidden unless -s or -rP is given).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

_KEY = pytest.StashKey[list[tuple[str, str]]]()


@pytest.fixture
def terminal_summary(request: pytest.FixtureRequest) -> Callable[[str, str], None]:
    """``terminal_summary(title, text)``: print now and again in the terminal summary."""

    def add(title: str, text: str) -> None:
        print(f"\n{title}\n{text}")
        request.config.stash.setdefault(_KEY, []).append((title, text))

    return add


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for title, text in terminalreporter.config.stash.get(_KEY, []):
        terminalreporter.write_sep("-", title)
        terminalreporter.write_line(text)
