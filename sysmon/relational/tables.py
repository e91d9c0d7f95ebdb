"""The relational tables, as SQLAlchemy Core ``Table`` objects the stores query through.

Two groups, each with its own ``MetaData`` and its own migration history (they may live
in different SQLite files): ``ALERTS`` (``sysmon.alerts.store``) and ``AUTH``
(``sysmon.security.store`` and the modules over it). On PostgreSQL both live in the one
database, each with its own Alembic version table.

These describe the tables as the newest migration leaves them; the migrations under
``migrations/`` carry their own frozen copies (a migration must mean the same thing
forever, whatever this file becomes).

Types: timestamps are epoch seconds in ``DOUBLE PRECISION`` (SQLite: ``REAL``); flags
are integers 0/1 (as the SQLite schema always had them); ids are 64-bit on PostgreSQL and
SQLite's rowid alias (``INTEGER PRIMARY KEY AUTOINCREMENT``) there.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
)

ID = BigInteger().with_variant(Integer(), "sqlite")
TS: Double[float] = Double()

ALERTS = MetaData()

alert_meta = Table(
    "alert_meta",
    ALERTS,
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
)

alert_state = Table(
    "alert_state",
    ALERTS,
    Column("rule", Text, primary_key=True),
    Column("labels", Text, primary_key=True),
    Column("state", Text, nullable=False),
    Column("since", TS, nullable=False),
    Column("firing_since", TS),
    Column("value", TS),
    Column("last_notified_at", TS),
    Column("notified", Integer, nullable=False, server_default="0"),
    Column("firing_event_id", ID),
)

alert_events = Table(
    "alert_events",
    ALERTS,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("ts", TS, nullable=False),
    Column("kind", Text, nullable=False),
    Column("rule", Text, nullable=False),
    Column("severity", Text, nullable=False),
    Column("metric", Text, nullable=False),
    Column("labels", Text, nullable=False),
    Column("value", TS),
    Column("threshold", TS, nullable=False),
    Column("operator", Text, nullable=False),
    Column("since", TS, nullable=False),
    Column("silenced", Integer, nullable=False, server_default="0"),
    Index("alert_events_ts", "ts"),
    sqlite_autoincrement=True,
)

alert_deliveries = Table(
    "alert_deliveries",
    ALERTS,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("event_id", ID),
    Column("ts", TS, nullable=False),
    Column("channel", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("error", Text),
    Index("alert_deliveries_event", "event_id"),
    sqlite_autoincrement=True,
)

alert_silences = Table(
    "alert_silences",
    ALERTS,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("created_at", TS, nullable=False),
    Column("until", TS, nullable=False),
    Column("matchers", Text, nullable=False),
    Column("comment", Text, nullable=False, server_default=""),
    sqlite_autoincrement=True,
)

AUTH = MetaData()

_ROLE_CHECK = "role IN ('admin', 'viewer')"

auth_meta = Table(
    "auth_meta",
    AUTH,
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
)

users = Table(
    "users",
    AUTH,
    Column("name", Text, primary_key=True),
    Column("role", Text, CheckConstraint(_ROLE_CHECK), nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("generation", Integer, nullable=False, server_default="0"),
    Column("created_at", TS, nullable=False),
)

api_keys = Table(
    "api_keys",
    AUTH,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("name", Text, nullable=False),
    Column("role", Text, CheckConstraint(_ROLE_CHECK), nullable=False),
    Column("key_hash", Text, nullable=False, unique=True),
    Column("prefix", Text, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("created_by", Text),
    Column("revoked_at", TS),
    sqlite_autoincrement=True,
)

refresh_tokens = Table(
    "refresh_tokens",
    AUTH,
    Column("token_hash", Text, primary_key=True),
    Column("family", Text, nullable=False),
    Column("user", Text, ForeignKey("users.name", ondelete="CASCADE"), nullable=False),
    Column("issued_at", TS, nullable=False),
    Column("expires_at", TS, nullable=False),
    Column("used_at", TS),
    Column("revoked_at", TS),
    Index("refresh_tokens_family", "family"),
)

sessions = Table(
    "sessions",
    AUTH,
    Column("id_hash", Text, primary_key=True),
    Column("user", Text, ForeignKey("users.name", ondelete="CASCADE"), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("expires_at", TS, nullable=False),
)

revoked_jti = Table(
    "revoked_jti",
    AUTH,
    Column("jti", Text, primary_key=True),
    Column("expires_at", TS, nullable=False),
)

audit = Table(
    "audit",
    AUTH,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("ts", TS, nullable=False),
    Column("event", Text, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("actor", Text),
    Column("role", Text),
    Column("via", Text),
    Column("source", Text),
    Column("detail", Text, nullable=False, server_default="{}"),
    Index("audit_ts", "ts"),
    sqlite_autoincrement=True,
)
