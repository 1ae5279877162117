"""Stand-ins for the services fedimg talks to, shipped with the project so anyone can run them.

The local demo stack (``make demo``), the benchmarks and the test suite all run fedimg against
the same real parts: a Koji hub speaking XML-RPC over HTTPS, small real disk images, RabbitMQ
through fedora-messaging, a moto server for AWS, and datanommer + datagrepper over PostgreSQL.
This package holds the code that starts and drives those parts. It imports no test framework:
a failure raises ``StandinError`` (or a more specific built-in exception); the pytest fixtures
that wrap these helpers turn it into a test failure.
"""

import pathlib

# The checkout these stand-ins belong to: the fedimg processes they start run this code.
REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


class StandinError(RuntimeError):
    """A stand-in could not do its job; ``str()`` is the one line to show the operator."""
