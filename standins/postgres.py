"""The local PostgreSQL server: one admin URL, and databases made and dropped through it.

Everything runs against the server on 127.0.0.1:5432 with trust authentication for ``postgres``
(``make services`` starts it). Each user of it (a test session, the demo stack) works in a
database of its own, created here with the time zone pinned to UTC: datanommer and datagrepper
convert timestamps with the session time zone and datagrepper assumes UTC.
"""

from __future__ import annotations

import contextlib
from typing import Any

from standins import StandinError

PG_ADMIN_URL = "postgresql://postgres:postgres@127.0.0.1:5432/postgres"
PG_ADDRESS = PG_ADMIN_URL.rsplit("@", 1)[-1].rsplit("/", 1)[0]
CONNECT_TIMEOUT = 5  # seconds
DROP_TIMEOUT_MS = 30000  # statement timeout for DROP DATABASE


def database_url(name: str) -> str:
    """URL of database ``name`` on the local server, as the admin user."""
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def pg_connect(url: str = PG_ADMIN_URL) -> Any:
    """An autocommit psycopg2 connection to ``url`` with a bounded connect timeout."""
    import psycopg2

    conn = psycopg2.connect(url, connect_timeout=CONNECT_TIMEOUT)
    conn.autocommit = True
    return conn


def check_postgres() -> None:
    """StandinError naming the fix if the local server does not accept the admin user."""
    try:
        pg_connect().close()
    except Exception as exc:
        raise StandinError(
            f"PostgreSQL is not reachable on {PG_ADDRESS} as postgres ({str(exc).strip()}); "
            "run `make services` or `apt-get install postgresql`"
        ) from None


def create_database(name: str) -> str:
    """Create database ``name`` (time zone UTC) and return its URL."""
    check_postgres()
    _as_admin(f'CREATE DATABASE "{name}"', f"ALTER DATABASE \"{name}\" SET timezone TO 'UTC'")
    return database_url(name)


def drop_database(name: str) -> None:
    """Drop database ``name`` if it exists, even if something still holds a connection."""
    _as_admin(f"SET statement_timeout = {DROP_TIMEOUT_MS}",
              f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _as_admin(*statements: str) -> None:
    """Run statements in order on one admin connection (CREATE/DROP DATABASE need autocommit)."""
    admin = pg_connect()
    try:
        with admin.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
    finally:
        admin.close()


def drop_database_quietly(name: str) -> None:
    """``drop_database`` for cleanup paths, where an error must not mask the caller's failure."""
    with contextlib.suppress(Exception):
        drop_database(name)
