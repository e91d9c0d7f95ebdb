"""Bring a database's tables up to date on start: ``alembic upgrade head``, in-process.

The migration scripts ship inside the package (``migrations/``), so an installed wheel
migrates its own databases; no ``alembic.ini`` and no ``alembic`` command are involved.
Each history has its own version table, so the alert tables (in the metrics database
file by default) and the authentication tables (``auth.db``) migrate independently, and
both can share one PostgreSQL database.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import sqlalchemy as sa

from sysmon.relational.database import Database

if TYPE_CHECKING:
    from alembic.config import Config

History = Literal["alerts", "auth"]

MIGRATIONS = Path(__file__).resolve().with_name("migrations")

_ALEMBIC = threading.Lock()
"""Alembic runs a migration through module-level proxies (``alembic.context``,
``alembic.op``): two in one process at once would trample each other (the in-process
test stack opens the agent's and the server's stores together), so they take turns."""


HEADS: dict[History, str] = {"alerts": "alerts_0001", "auth": "auth_0001"}
"""The newest revision of each history, written down so that a database already at head
is recognised without importing Alembic (about 11 MiB per process, measured; the server
and the agent both open these stores). A test checks it against the scripts
(``head``); a new migration updates it."""


def version_table(history: History) -> str:
    return f"alembic_version_{history}"


def alembic_config(history: History) -> Config:
    """The configuration Alembic's commands need, built in code (no ini file)."""
    from alembic.config import Config

    config = Config()
    # ConfigParser interpolation: a '%' in the install path must be doubled.
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    config.set_main_option("version_locations", str(MIGRATIONS / history).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_table", version_table(history))
    return config


def head(history: History) -> str:
    """The newest revision of ``history`` among the shipped scripts (imports Alembic)."""
    from alembic.script import ScriptDirectory

    revision = ScriptDirectory.from_config(alembic_config(history)).get_current_head()
    if revision is None:
        raise RuntimeError(f"no migrations found for {history} in {MIGRATIONS}")
    return revision


def current(db: Database, history: History) -> str | None:
    """The revision the database is at; None before the first migration (what Alembic's
    ``MigrationContext.get_current_revision`` answers, read with one query)."""
    table = sa.table(version_table(history), sa.column("version_num", sa.String))
    with db.read() as conn:
        if not sa.inspect(conn).has_table(version_table(history)):
            return None
        rows = conn.execute(sa.select(table.c.version_num)).scalars().all()
    return rows[0] if len(rows) == 1 else None


def upgrade(db: Database, history: History) -> None:
    """Migrate to the newest revision, under the write lock (``Database.write``): of
    several processes starting at once, one migrates and the others then find the
    database up to date. A database already at head costs one small read."""
    if current(db, history) == HEADS[history]:
        return
    from alembic import command

    config = alembic_config(history)
    with _ALEMBIC, db.write() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
