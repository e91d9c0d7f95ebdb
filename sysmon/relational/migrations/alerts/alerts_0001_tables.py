"""Alert tables: adopt the SQLite schema sysmon made before Alembic, or create it.

Revision ID: alerts_0001
Revises:

Before this migration, ``AlertStore.open`` ran ``CREATE TABLE IF NOT EXISTS`` on every
start. On SQLite this revision runs those very statements, so a database made by that
code is adopted as it is (its rows untouched, only the version table added) and a new
one gets exactly the same schema. On PostgreSQL (never used before it) the tables are
created with portable types: ``DOUBLE PRECISION`` timestamps and 64-bit ids.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "alerts_0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

# Verbatim from sysmon/alerts/store.py before Alembic (schema_version 1).
SQLITE_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS alert_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS alert_state (
    rule TEXT NOT NULL,
    labels TEXT NOT NULL,
    state TEXT NOT NULL,
    since REAL NOT NULL,
    firing_since REAL,
    value REAL,
    last_notified_at REAL,
    notified INTEGER NOT NULL DEFAULT 0,
    firing_event_id INTEGER,
    PRIMARY KEY (rule, labels)
)""",
    """CREATE TABLE IF NOT EXISTS alert_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    kind TEXT NOT NULL,
    rule TEXT NOT NULL,
    severity TEXT NOT NULL,
    metric TEXT NOT NULL,
    labels TEXT NOT NULL,
    value REAL,
    threshold REAL NOT NULL,
    operator TEXT NOT NULL,
    since REAL NOT NULL,
    silenced INTEGER NOT NULL DEFAULT 0
)""",
    "CREATE INDEX IF NOT EXISTS alert_events_ts ON alert_events (ts)",
    """CREATE TABLE IF NOT EXISTS alert_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id INTEGER,
    ts REAL NOT NULL,
    channel TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    error TEXT
)""",
    "CREATE INDEX IF NOT EXISTS alert_deliveries_event ON alert_deliveries (event_id)",
    """CREATE TABLE IF NOT EXISTS alert_silences (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at REAL NOT NULL,
    until REAL NOT NULL,
    matchers TEXT NOT NULL,
    comment TEXT NOT NULL DEFAULT ''
)""",
    "INSERT OR IGNORE INTO alert_meta (key, value) VALUES ('schema_version', '1')",
)

TS: sa.Double[float] = sa.Double()
ID = sa.BigInteger()


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for statement in SQLITE_SCHEMA:
            op.execute(statement)
        return
    meta = op.create_table(
        "alert_meta",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.bulk_insert(meta, [{"key": "schema_version", "value": "1"}])
    op.create_table(
        "alert_state",
        sa.Column("rule", sa.Text, primary_key=True),
        sa.Column("labels", sa.Text, primary_key=True),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("since", TS, nullable=False),
        sa.Column("firing_since", TS),
        sa.Column("value", TS),
        sa.Column("last_notified_at", TS),
        sa.Column("notified", sa.Integer, nullable=False, server_default="0"),
        sa.Column("firing_event_id", ID),
    )
    op.create_table(
        "alert_events",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("ts", TS, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("rule", sa.Text, nullable=False),
        sa.Column("severity", sa.Text, nullable=False),
        sa.Column("metric", sa.Text, nullable=False),
        sa.Column("labels", sa.Text, nullable=False),
        sa.Column("value", TS),
        sa.Column("threshold", TS, nullable=False),
        sa.Column("operator", sa.Text, nullable=False),
        sa.Column("since", TS, nullable=False),
        sa.Column("silenced", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_index("alert_events_ts", "alert_events", ["ts"])
    op.create_table(
        "alert_deliveries",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("event_id", ID),
        sa.Column("ts", TS, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("error", sa.Text),
    )
    op.create_index("alert_deliveries_event", "alert_deliveries", ["event_id"])
    op.create_table(
        "alert_silences",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("until", TS, nullable=False),
        sa.Column("matchers", sa.Text, nullable=False),
        sa.Column("comment", sa.Text, nullable=False, server_default=""),
    )


def downgrade() -> None:
    for table in ("alert_silences", "alert_deliveries", "alert_events", "alert_state"):
        op.drop_table(table)
    op.drop_table("alert_meta")
