"""Bring a database's tables up to date on start: ``alembic upgrade head``.

The migration scripts ship inside the package (``migrations/``), so an installed wheel
migrates its own databases; no ``alembic.ini`` and no ``alembic`` command are involved.
Long-running processes pass ``child=True``: Alembic then runs in a short-lived
``python -m sysmon.relational.migrate`` process, so its ~11 MiB never stay resident in
the agent (a fresh install's first start, or the first start after an upgrade).
Each history has its own version table, so the alert tables (in the metrics database
file by default) and the authentication tables (``auth.db``) migrate independently, and
both can share one PostgreSQL database.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Sequence
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


def upgrade(db: Database, history: History, *, child: bool = False) -> None:
    """Migrate to the newest revision, under the write lock (``Database.write``): of
    several processes starting at once, one migrates and the others then find the
    database up to date. A database already at head costs one small read.

    ``child``: run Alembic in a child process (see the module docstring); its target
    (which may hold a password) goes through the environment, never the command line.
    Raises ``MigrationError`` with the child's last error line if it fails."""
    if current(db, history) == HEADS[history]:
        return
    if child and db.target is not None:
        _upgrade_in_child(db, history)
        return
    from alembic import command

    config = alembic_config(history)
    with _ALEMBIC, db.write() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


class MigrationError(RuntimeError):
    """The migration child failed (its last error line is the message)."""


TARGET_ENV = "SYSMON_MIGRATE_TARGET"


def _upgrade_in_child(db: Database, history: History) -> None:
    assert db.target is not None
    env = {**os.environ, TARGET_ENV: db.target}
    argv = [sys.executable, "-m", "sysmon.relational.migrate", history, db.kind, str(db.lock_key)]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise MigrationError(
            f"migrating the {history} tables failed: {lines[-1] if lines else done.returncode}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sysmon.relational.migrate <history> <sqlite|postgresql> <lock key>`` with
    ``$SYSMON_MIGRATE_TARGET``: what ``upgrade(child=True)`` runs."""
    history, kind, key = argv if argv is not None else sys.argv[1:]
    if history not in HEADS or kind not in ("sqlite", "postgresql"):
        sys.stderr.write(f"usage: migrate <{'|'.join(HEADS)}> <sqlite|postgresql> <lock key>\n")
        return 2
    target = os.environ.pop(TARGET_ENV)
    db = (
        Database.sqlite(target, lock_key=int(key))
        if kind == "sqlite"
        else Database.postgresql(target, lock_key=int(key), pool_size=1)
    )
    try:
        upgrade(db, history)
    finally:
        db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
