"""The authentication database: users, API keys, refresh tokens, sessions, audit rows.

Its own SQLite file (``auth.users_db``, default ``auth.db`` in the data directory), not
the metrics database: the server opens the metrics database read-only, and credentials
are written by the server workers and the ``sysmon user`` command alike. WAL lets every
reader go on while one writer commits; ``busy_timeout`` makes concurrent writers (several
workers, the CLI) wait their turn instead of failing. The file holds password hashes:
0600 in a 0700 directory, whatever the umask.

Each thread gets its own connection: the middleware reads on the event loop thread
(indexed lookups of a few microseconds; WAL readers never wait for a writer), while
writes run in worker threads. Every write goes through ``transaction()`` (``BEGIN
IMMEDIATE``: the write lock is taken up front, so a check and the change it allows, such
as rotating a refresh token, are atomic across processes).
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sysmon.errors import StorageError
from sysmon.security.principal import Role, parse_role

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS auth_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),
    password_hash TEXT NOT NULL,
    generation INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS api_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),
    key_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    created_at REAL NOT NULL,
    created_by TEXT,
    revoked_at REAL
);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    family TEXT NOT NULL,
    user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    issued_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    used_at REAL,
    revoked_at REAL
);
CREATE INDEX IF NOT EXISTS refresh_tokens_family ON refresh_tokens(family);
CREATE TABLE IF NOT EXISTS sessions (
    id_hash TEXT PRIMARY KEY,
    user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS revoked_jti (jti TEXT PRIMARY KEY, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    event TEXT NOT NULL,
    outcome TEXT NOT NULL,
    actor TEXT,
    role TEXT,
    via TEXT,
    source TEXT,
    detail TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS audit_ts ON audit(ts);
"""

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
    def __init__(self, path: Path, wall: Callable[[], float] = time.time) -> None:
        self.path = path
        self._wall = wall
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []

    # -- connections -------------------------------------------------------------------

    def open(self) -> None:
        """Create the file (0600), WAL mode and the schema; safe to race with others."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
        os.chmod(self.path, 0o600)
        try:
            conn = self._conn()
            conn.execute("PRAGMA journal_mode=WAL")
            with self.transaction() as tx:
                # Not ``executescript``: it commits first, outside this transaction.
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        tx.execute(statement)
                tx.execute(
                    "INSERT OR IGNORE INTO auth_meta (key, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open {self.path}: {exc}") from exc
        for suffix in ("-wal", "-shm"):
            if Path(f"{self.path}{suffix}").exists():
                os.chmod(f"{self.path}{suffix}", 0o600)

    def close(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
        self._local = threading.local()

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=5.0
            )
            conn.execute("PRAGMA busy_timeout=5000")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """The one way to write: ``BEGIN IMMEDIATE``, commit, or roll back on any error."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise
        conn.commit()

    def reader(self) -> sqlite3.Connection:
        """This thread's connection, for single-statement reads (autocommit)."""
        return self._conn()

    def now(self) -> float:
        return self._wall()

    # -- users -------------------------------------------------------------------------

    def add_user(self, name: str, role: Role, password_hash: str) -> User:
        user = User(check_name(name), role, password_hash, 0, self.now())
        try:
            with self.transaction() as tx:
                tx.execute(
                    "INSERT INTO users (name, role, password_hash, created_at) VALUES (?,?,?,?)",
                    (user.name, user.role, user.password_hash, user.created_at),
                )
        except sqlite3.IntegrityError:
            raise UserExistsError(f"user {name!r} already exists") from None
        return user

    def get_user(self, name: str) -> User | None:
        row = (
            self.reader()
            .execute(
                "SELECT name, role, password_hash, generation, created_at FROM users "
                "WHERE name = ?",
                (name,),
            )
            .fetchone()
        )
        return None if row is None else User(row[0], parse_role(row[1]), row[2], row[3], row[4])

    def list_users(self) -> list[User]:
        rows = self.reader().execute(
            "SELECT name, role, password_hash, generation, created_at FROM users ORDER BY name"
        )
        return [User(r[0], parse_role(r[1]), r[2], r[3], r[4]) for r in rows]

    def set_password(self, name: str, password_hash: str) -> bool:
        """New hash; every token, refresh token and session of the user stops working."""
        with self.transaction() as tx:
            changed = tx.execute(
                "UPDATE users SET password_hash = ?, generation = generation + 1 WHERE name = ?",
                (password_hash, name),
            ).rowcount
            tx.execute("DELETE FROM refresh_tokens WHERE user = ?", (name,))
            tx.execute("DELETE FROM sessions WHERE user = ?", (name,))
        return changed == 1

    def rehash(self, name: str, old_hash: str, new_hash: str) -> None:
        """Upgrade a hash after a login (no generation bump: same password)."""
        with self.transaction() as tx:
            tx.execute(
                "UPDATE users SET password_hash = ? WHERE name = ? AND password_hash = ?",
                (new_hash, name, old_hash),
            )

    def delete_user(self, name: str, *, keep_an_admin: bool = True) -> bool:
        with self.transaction() as tx:
            row = tx.execute("SELECT role FROM users WHERE name = ?", (name,)).fetchone()
            if row is None:
                return False
            if keep_an_admin and row[0] == "admin":
                (admins,) = tx.execute("SELECT count(*) FROM users WHERE role = 'admin'").fetchone()
                if admins <= 1:
                    raise LastAdminError(f"{name!r} is the last admin")
            tx.execute("DELETE FROM users WHERE name = ?", (name,))
        return True

    # -- request-time lookup (event loop thread: one indexed read) ----------------------

    def token_user(self, name: str, jti: str) -> tuple[Role, int] | None:
        """Role and token generation of ``name``, or None if gone or ``jti`` revoked."""
        row = (
            self.reader()
            .execute(
                "SELECT role, generation, EXISTS (SELECT 1 FROM revoked_jti WHERE jti = ?) "
                "FROM users WHERE name = ?",
                (jti, name),
            )
            .fetchone()
        )
        if row is None or row[2]:
            return None
        return parse_role(row[0]), int(row[1])


def auth_db_path(users_db: str | None, folder: Path) -> Path:
    """``auth.users_db``, or ``auth.db`` in the data directory."""
    return Path(users_db) if users_db else folder / "auth.db"
