"""Authentication tables: adopt the SQLite schema sysmon made before Alembic, or create it.

Revision ID: auth_0001
Revises:

Before this migration, ``AuthStore.open`` ran ``CREATE TABLE IF NOT EXISTS`` on every
start. On SQLite this revision runs those very statements, so an ``auth.db`` made by that
code is adopted as it is (users, keys, tokens and audit rows untouched, only the version
table added) and a new one gets exactly the same schema. On PostgreSQL (never used
before it) the tables are created with portable types: ``DOUBLE PRECISION`` timestamps
and 64-bit ids.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "auth_0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

# Verbatim from sysmon/security/store.py before Alembic (schema_version 1).
SQLITE_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS auth_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),
    password_hash TEXT NOT NULL,
    generation INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS api_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),
    key_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    created_at REAL NOT NULL,
    created_by TEXT,
    revoked_at REAL
)""",
    """CREATE TABLE IF NOT EXISTS refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    family TEXT NOT NULL,
    user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    issued_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    used_at REAL,
    revoked_at REAL
)""",
    "CREATE INDEX IF NOT EXISTS refresh_tokens_family ON refresh_tokens(family)",
    """CREATE TABLE IF NOT EXISTS sessions (
    id_hash TEXT PRIMARY KEY,
    user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL
)""",
    "CREATE TABLE IF NOT EXISTS revoked_jti (jti TEXT PRIMARY KEY, expires_at REAL NOT NULL)",
    """CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    event TEXT NOT NULL,
    outcome TEXT NOT NULL,
    actor TEXT,
    role TEXT,
    via TEXT,
    source TEXT,
    detail TEXT NOT NULL DEFAULT '{}'
)""",
    "CREATE INDEX IF NOT EXISTS audit_ts ON audit(ts)",
    "INSERT OR IGNORE INTO auth_meta (key, value) VALUES ('schema_version', '1')",
)

TS: sa.Double[float] = sa.Double()
ID = sa.BigInteger()
ROLE_CHECK = "role IN ('admin', 'viewer')"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for statement in SQLITE_SCHEMA:
            op.execute(statement)
        return
    meta = op.create_table(
        "auth_meta",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.bulk_insert(meta, [{"key": "schema_version", "value": "1"}])
    op.create_table(
        "users",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("generation", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", TS, nullable=False),
        sa.CheckConstraint(ROLE_CHECK, name="users_role"),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("key_hash", sa.Text, nullable=False, unique=True),
        sa.Column("prefix", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.Text),
        sa.Column("revoked_at", TS),
        sa.CheckConstraint(ROLE_CHECK, name="api_keys_role"),
    )
    op.create_table(
        "refresh_tokens",
        sa.Column("token_hash", sa.Text, primary_key=True),
        sa.Column("family", sa.Text, nullable=False),
        sa.Column("user", sa.Text, sa.ForeignKey("users.name", ondelete="CASCADE"), nullable=False),
        sa.Column("issued_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("used_at", TS),
        sa.Column("revoked_at", TS),
    )
    op.create_index("refresh_tokens_family", "refresh_tokens", ["family"])
    op.create_table(
        "sessions",
        sa.Column("id_hash", sa.Text, primary_key=True),
        sa.Column("user", sa.Text, sa.ForeignKey("users.name", ondelete="CASCADE"), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
    )
    op.create_table(
        "revoked_jti",
        sa.Column("jti", sa.Text, primary_key=True),
        sa.Column("expires_at", TS, nullable=False),
    )
    op.create_table(
        "audit",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("ts", TS, nullable=False),
        sa.Column("event", sa.Text, nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("actor", sa.Text),
        sa.Column("role", sa.Text),
        sa.Column("via", sa.Text),
        sa.Column("source", sa.Text),
        sa.Column("detail", sa.Text, nullable=False, server_default="{}"),
    )
    op.create_index("audit_ts", "audit", ["ts"])


def downgrade() -> None:
    for table in ("audit", "revoked_jti", "sessions", "refresh_tokens", "api_keys", "users"):
        op.drop_table(table)
    op.drop_table("auth_meta")
