"""The authentication database: users, API keys, refresh tokens, sessions, audit rows.

Its own SQLite file by default (``auth.users_db``, default ``auth.db`` in the data
directory), not the metrics database: the server opens the metrics database read-only,
and credentials are written by the server workers and the ``sysmon user`` command alike.
WAL lets every reader go on while one writer commits; ``busy_timeout`` makes concurrent
writers (several workers, the CLI) wait their turn instead of failing. The file holds
password hashes: 0600 in a 0700 directory, whatever the umask. With ``relational.url``
the tables live in that PostgreSQL database instead (``sysmon.relational``); ``open()``
runs the Alembic migrations either way.

Reads (``reader()``) never wait for a writer: the middleware reads on the event loop
thread (indexed lookups of a few microseconds on SQLite, where each thread keeps its own
connection), while writes run in worker threads. Every write goes through
``transaction()``, which holds the database's write lock from its first statement
(``BEGIN IMMEDIATE`` on SQLite, an advisory lock on PostgreSQL: ``Database.write``), so
a check and the change it allows, such as rotating a refresh token, are atomic across
processes.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import bindparam, exists, func, insert, select, update
from sqlalchemy import delete as sql_delete
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from sysmon.errors import StorageError
from sysmon.relational import migrate
from sysmon.relational.database import Database, error_text, lock_key
from sysmon.relational.tables import refresh_tokens, revoked_jti, sessions, users
from sysmon.security.principal import Role, parse_role

SCHEMA_VERSION = 1
"""The ``auth_meta`` schema_version row (kept for older readers); the schema's real
version is the Alembic revision in ``alembic_version_auth``."""

LOCK_KEY = lock_key("sysmon.auth")

_u = users
_USER_COLUMNS = (_u.c.name, _u.c.role, _u.c.password_hash, _u.c.generation, _u.c.created_at)
_GET_USER = select(*_USER_COLUMNS).where(_u.c.name == bindparam("name"))
_LIST_USERS = select(*_USER_COLUMNS).order_by(_u.c.name)
_INSERT_USER = insert(_u)
_SET_PASSWORD = (
    update(_u)
    .where(_u.c.name == bindparam("user_name"))
    .values(password_hash=bindparam("hash"), generation=_u.c.generation + 1)
)
_REHASH = (
    update(_u)
    .where(_u.c.name == bindparam("user_name"), _u.c.password_hash == bindparam("old"))
    .values(password_hash=bindparam("new"))
)
_DELETE_REFRESH_OF = sql_delete(refresh_tokens).where(refresh_tokens.c.user == bindparam("user"))
_DELETE_SESSIONS_OF = sql_delete(sessions).where(sessions.c.user == bindparam("user"))
_ROLE_OF = select(_u.c.role).where(_u.c.name == bindparam("name"))
_ADMINS = select(func.count()).select_from(_u).where(_u.c.role == "admin")
_DELETE_USER = sql_delete(_u).where(_u.c.name == bindparam("name"))
_TOKEN_USER = select(
    _u.c.role,
    _u.c.generation,
    exists().where(revoked_jti.c.jti == bindparam("jti")),
).where(_u.c.name == bindparam("name"))


NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


class UserExistsError(ValueError):
    pass


class LastAdminError(ValueError):
    """Deleting this user would leave nobody able to administer the service."""


@dataclass(frozen=True)
class User:
    name: str
    role: Role
    password_hash: str
    generation: int
    created_at: float


def check_name(name: str) -> str:
    if not NAME_RE.fullmatch(name):
        raise ValueError("user names are 1-64 letters, digits, '.', '_', '@' or '-'")
    return name


class AuthStore:
    def __init__(
        self, path: Path, wall: Callable[[], float] = time.time, *, url: str | None = None
    ) -> None:
        """``path``: the SQLite file; ``url``: a PostgreSQL database instead (``path`` is
        then unused, but kept: it names the data directory's file in messages)."""
        self.path = path
        self._url = url
        self._wall = wall
        self._lock = threading.Lock()
        self._db: Database | None = None

    # -- connections -------------------------------------------------------------------

    def open(self) -> None:
        """Create the file (0600) and WAL mode on SQLite, then migrate the tables to the
        newest revision; safe to race with other processes doing the same."""
        if self._url is None:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
            os.chmod(self.path, 0o600)
            db = Database.sqlite(str(self.path), lock_key=LOCK_KEY)
        else:
            db = Database.postgresql(self._url, lock_key=LOCK_KEY)
        try:
            db.use_wal()
            migrate.upgrade(db, "auth")
        except SQLAlchemyError as exc:
            db.close()
            where = self.path if self._url is None else db.describe()
            raise StorageError(f"cannot open {where}: {error_text(exc)}") from exc
        with self._lock:
            self._db = db
        if self._url is None:
            for suffix in ("-wal", "-shm"):
                if Path(f"{self.path}{suffix}").exists():
                    os.chmod(f"{self.path}{suffix}", 0o600)

    def close(self) -> None:
        with self._lock:
            db, self._db = self._db, None
        if db is not None:
            db.close()

    def _database(self) -> Database:
        db = self._db
        if db is None:
            raise StorageError(f"{self.path} is not open")
        return db

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """The one way to write: the write lock up front, commit, or roll back on any
        error (``Database.write``)."""
        with self._database().write() as conn:
            yield conn

    @contextmanager
    def reader(self) -> Iterator[Connection]:
        """A connection for lookups (nothing is committed); on SQLite this thread's own."""
        with self._database().read() as conn:
            yield conn

    def now(self) -> float:
        return self._wall()

    # -- users -------------------------------------------------------------------------

    def add_user(self, name: str, role: Role, password_hash: str) -> User:
        user = User(check_name(name), role, password_hash, 0, self.now())
        try:
            with self.transaction() as tx:
                tx.execute(
                    _INSERT_USER,
                    {
                        "name": user.name,
                        "role": user.role,
                        "password_hash": user.password_hash,
                        "created_at": user.created_at,
                    },
                )
        except IntegrityError:
            raise UserExistsError(f"user {name!r} already exists") from None
        return user

    def get_user(self, name: str) -> User | None:
        with self.reader() as conn:
            row = conn.execute(_GET_USER, {"name": name}).first()
        return None if row is None else User(row[0], parse_role(row[1]), row[2], row[3], row[4])

    def list_users(self) -> list[User]:
        with self.reader() as conn:
            rows = conn.execute(_LIST_USERS).all()
        return [User(r[0], parse_role(r[1]), r[2], r[3], r[4]) for r in rows]

    def set_password(self, name: str, password_hash: str) -> bool:
        """New hash; every token, refresh token and session of the user stops working."""
        with self.transaction() as tx:
            changed = tx.execute(_SET_PASSWORD, {"hash": password_hash, "user_name": name})
            tx.execute(_DELETE_REFRESH_OF, {"user": name})
            tx.execute(_DELETE_SESSIONS_OF, {"user": name})
        return changed.rowcount == 1

    def rehash(self, name: str, old_hash: str, new_hash: str) -> None:
        """Upgrade a hash after a login (no generation bump: same password)."""
        with self.transaction() as tx:
            tx.execute(_REHASH, {"new": new_hash, "user_name": name, "old": old_hash})

    def delete_user(self, name: str, *, keep_an_admin: bool = True) -> bool:
        with self.transaction() as tx:
            role = tx.execute(_ROLE_OF, {"name": name}).scalar()
            if role is None:
                return False
            if keep_an_admin and role == "admin":
                admins = tx.execute(_ADMINS).scalar_one()
                if admins <= 1:
                    raise LastAdminError(f"{name!r} is the last admin")
            tx.execute(_DELETE_USER, {"name": name})
        return True

    # -- request-time lookup (event loop thread: one indexed read) ----------------------

    def token_user(self, name: str, jti: str) -> tuple[Role, int] | None:
        """Role and token generation of ``name``, or None if gone or ``jti`` revoked."""
        with self.reader() as conn:
            row = conn.execute(_TOKEN_USER, {"jti": jti, "name": name}).first()
        if row is None or row[2]:
            return None
        return parse_role(row[0]), int(row[1])


def auth_db_path(users_db: str | None, folder: Path) -> Path:
    """``auth.users_db``, or ``auth.db`` in the data directory."""
    return Path(users_db) if users_db else folder / "auth.db"
