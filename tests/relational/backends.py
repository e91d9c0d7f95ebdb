"""The relational backends every store test runs against: SQLite files and PostgreSQL.

A test module opts in with three lines::

    @pytest.fixture(params=BACKENDS)
    def relational_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
        with backend_url(request) as url:
            yield url

``None`` means the SQLite files (the stores' default); otherwise the URL of a fresh
PostgreSQL schema made for this one test and dropped after it. The schemas live in one
database created for the test session (``sysmon_test_<pid>_<random>``) and dropped at
its end. The server is the machine's own on 127.0.0.1:5432 with trust authentication
(``SYSMON_TEST_POSTGRES_URL`` names another); when it cannot be reached the PostgreSQL
cases are skipped with the reason, never failed (CI starts the server).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, make_url
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

ADMIN_URL = os.environ.get(
    "SYSMON_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = [pytest.param("sqlite", id="sqlite"), pytest.param("postgresql", id="postgresql")]


@dataclass
class TestDatabase:
    """A database of this test session; ``schema()`` hands out fresh schemas in it."""

    __test__ = False  # not a test class, whatever its name

    url: str
    engine: Engine
    admin: Engine
    name: str

    @classmethod
    def create(cls, admin_url: str) -> TestDatabase:
        admin = create_engine(
            admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
        )
        name = f"sysmon_test_{os.getpid()}_{secrets.token_hex(4)}"
        try:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        except SQLAlchemyError:
            admin.dispose()
            raise
        url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        engine = create_engine(url, isolation_level="AUTOCOMMIT")
        return cls(url, engine, admin, name)

    @contextmanager
    def schema(self) -> Iterator[str]:
        """The URL of a new empty schema (first on the search path); dropped afterwards."""
        schema = f"t_{secrets.token_hex(6)}"
        with self.engine.connect() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        try:
            yield f"{self.url}?options={quote(f'-csearch_path={schema}')}"
        finally:
            with self.engine.connect() as conn:
                conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')

    def drop(self) -> None:
        self.engine.dispose()
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        self.admin.dispose()


_DATABASE = pytest.StashKey["TestDatabase | str"]()


def postgres(config: pytest.Config) -> TestDatabase:
    """This session's database (created on first use), or a skip saying why there is none."""
    found = config.stash.get(_DATABASE, None)
    if found is None:
        try:
            found = TestDatabase.create(ADMIN_URL)
            config.add_cleanup(found.drop)
        except SQLAlchemyError as exc:
            shown = make_url(ADMIN_URL).render_as_string(hide_password=True)
            reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
            found = f"PostgreSQL unreachable at {shown}: {reason}"
        config.stash[_DATABASE] = found
    if isinstance(found, str):
        pytest.skip(found)
    return found


@contextmanager
def backend_url(request: pytest.FixtureRequest, backend: str | None = None) -> Iterator[str | None]:
    """``None`` for SQLite, or a fresh PostgreSQL schema's URL; the backend is ``backend``
    or else the fixture's parameter."""
    if (backend or request.param) == "sqlite":
        yield None
        return
    with postgres(request.config).schema() as url:
        yield url
