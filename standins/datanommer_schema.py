"""Create datanommer's database schema on a plain PostgreSQL (no TimescaleDB).

Why this exists: ``datanommer.models.init(create=True)`` (datanommer-models 1.5.0) insists on
TimescaleDB, which Debian does not ship. It runs ``CREATE EXTENSION timescaledb`` and, through
an ``after_create`` DDL listener on the ``messages`` table, ``SELECT create_hypertable(...)``.
Both fail on stock PostgreSQL. This script builds the same tables, indexes and
``recent_topics`` materialized view without those two steps: the listener is detached *in this
process only* (nothing in site-packages changes), so ``messages`` is simply a regular table.
Queries behave the same, because hypertables are transparent to SQL.

It also installs an exact-count ``approximate_row_count(regclass)`` function, so a datagrepper
left at its default ``DATAGREPPER_APPROXIMATE_COUNT = True`` works too (it would otherwise 500
on ``/`` and ``/messagecount``).

Used by the history stacks of ``standins.datagrepper`` (test sessions and the local demo stack).
Idempotent: running it against an existing schema changes nothing.

Usage:
    python -m standins.datanommer_schema [--create-database] postgresql://user:pw@host:port/dbname
"""

from __future__ import annotations

import argparse
import sys

APPROXIMATE_ROW_COUNT_STUB = """
CREATE OR REPLACE FUNCTION approximate_row_count(relation regclass)
RETURNS bigint LANGUAGE plpgsql STABLE AS $fn$
DECLARE n bigint;
BEGIN
  EXECUTE format('SELECT count(*) FROM %s', relation) INTO n;
  RETURN n;
END $fn$;
"""


def detach_hypertable_listener() -> None:
    """Remove datanommer's ``create_hypertable`` after_create hook from the messages table.

    Fails loudly if the hook is not found exactly once: that means datanommer changed and the
    workaround must be revisited rather than silently producing a different schema.
    """
    import datanommer.models as dm
    from sqlalchemy import event
    from sqlalchemy.sql.ddl import DDL

    table = dm.Message.__table__
    hooks = [
        fn
        for fn in list(table.dispatch.after_create)
        if isinstance(fn, DDL) and "create_hypertable" in str(fn.statement)
    ]
    if len(hooks) != 1:
        raise RuntimeError(
            f"expected exactly one create_hypertable after_create hook on {table.name}, "
            f"found {len(hooks)}; datanommer-models changed, revisit this script"
        )
    event.remove(table, "after_create", hooks[0])


def create_database(url: str) -> bool:
    """Create the database named in ``url`` (UTC time zone) if it does not exist yet.

    Connects to the ``postgres`` maintenance database of the same server. Returns True if it
    created the database.
    """
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    target = make_url(url)
    name = target.database
    if not name:
        raise ValueError(f"no database name in {url!r}")
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
            ).scalar()
            if exists:
                return False
            quoted = conn.dialect.identifier_preparer.quote(name)
            conn.execute(text(f"CREATE DATABASE {quoted}"))
            # datanommer stores sent-at in a "timestamp without time zone" column converted to the
            # session time zone; datagrepper assumes UTC. Pin it on the database.
            conn.execute(text(f"ALTER DATABASE {quoted} SET timezone TO 'UTC'"))
            return True
    finally:
        admin.dispose()


def create_schema(url: str) -> None:
    """Create datanommer's tables, indexes and materialized view at ``url``."""
    import datanommer.models as dm
    from datanommer.models.view import create_view
    from sqlalchemy import create_engine

    detach_hypertable_listener()
    engine = create_engine(url, future=True)
    try:
        dm.DeclarativeBase.metadata.create_all(engine)
        with engine.begin() as conn:
            create_view(conn)
        raw = engine.raw_connection()  # DBAPI cursor: no %-parameter interpolation of the SQL
        try:
            raw.cursor().execute(APPROXIMATE_ROW_COUNT_STUB)
            raw.commit()
        finally:
            raw.close()
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the process exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="SQLAlchemy URL of the datanommer database")
    parser.add_argument(
        "--create-database",
        action="store_true",
        help="create the database first if it does not exist (needs CREATEDB)",
    )
    args = parser.parse_args(argv)
    try:
        if args.create_database and create_database(args.url):
            print(f"created database {args.url.rsplit('/', 1)[-1]}")
        create_schema(args.url)
    except Exception as exc:  # a script: one clear line instead of a traceback
        print(f"datanommer_schema: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print("datanommer schema ready (plain PostgreSQL; messages is not a hypertable)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
