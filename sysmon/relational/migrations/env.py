"""Alembic's entry point: migrate the connection ``sysmon.relational.migrate`` hands over.

The connection is already inside a ``Database.write()`` transaction (the write lock is
held), so two processes starting at once migrate one after the other, and the second
finds nothing left to do. Alembic sees an external transaction and adds none of its own;
on both SQLite and PostgreSQL the DDL is transactional, so a failed migration leaves the
database as it was.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection


def run() -> None:
    config = context.config
    connection = config.attributes["connection"]
    if not isinstance(connection, Connection):
        raise TypeError("sysmon migrations run on a connection passed in config.attributes")
    context.configure(
        connection=connection,
        version_table=config.get_main_option("version_table") or "alembic_version",
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run()
