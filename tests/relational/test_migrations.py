"""Alembic on start: databases made before Alembic are adopted with every row, new ones
get the same schema, a database at head costs nothing, and processes starting at once
migrate one after the other. The migration scripts are package data."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from sysmon.alerts.store import AlertStore
from sysmon.relational import migrate
from sysmon.relational.database import Database
from sysmon.security.audit import Auditor
from sysmon.security.credentials import Credentials
from sysmon.security.store import AuthStore
from tests.relational.backends import BACKENDS, backend_url

# The schemas exactly as sysmon wrote them before Alembic (sysmon/alerts/store.py and
# sysmon/security/store.py at schema_version 1), with rows as that code inserted them.
LEGACY_ALERTS = """
CREATE TABLE IF NOT EXISTS alert_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS alert_state (
    rule TEXT NOT NULL, labels TEXT NOT NULL, state TEXT NOT NULL, since REAL NOT NULL,
    firing_since REAL, value REAL, last_notified_at REAL,
    notified INTEGER NOT NULL DEFAULT 0, firing_event_id INTEGER,
    PRIMARY KEY (rule, labels));
CREATE TABLE IF NOT EXISTS alert_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, kind TEXT NOT NULL,
    rule TEXT NOT NULL, severity TEXT NOT NULL, metric TEXT NOT NULL, labels TEXT NOT NULL,
    value REAL, threshold REAL NOT NULL, operator TEXT NOT NULL, since REAL NOT NULL,
    silenced INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS alert_events_ts ON alert_events (ts);
CREATE TABLE IF NOT EXISTS alert_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT, event_id INTEGER, ts REAL NOT NULL,
    channel TEXT NOT NULL, kind TEXT NOT NULL, status TEXT NOT NULL,
    attempts INTEGER NOT NULL, error TEXT);
CREATE INDEX IF NOT EXISTS alert_deliveries_event ON alert_deliveries (event_id);
CREATE TABLE IF NOT EXISTS alert_silences (
    id INTEGER PRIMARY KEY AUTOINCREMENT, created_at REAL NOT NULL, until REAL NOT NULL,
    matchers TEXT NOT NULL, comment TEXT NOT NULL DEFAULT '');
INSERT OR IGNORE INTO alert_meta (key, value) VALUES ('schema_version', '1');
CREATE TABLE metrics_raw (ts REAL, value REAL);
INSERT INTO metrics_raw VALUES (1.0, 2.0);
INSERT INTO alert_state VALUES ('cpu', '[["core","1"]]', 'firing', 10.0, 20.0, 93.5, 20.5, 1, 7);
INSERT INTO alert_events (id, ts, kind, rule, severity, metric, labels, value, threshold,
    operator, since, silenced)
    VALUES (7, 20.0, 'firing', 'cpu', 'critical', 'cpu.percent', '{"core": "1"}', 93.5,
    90.0, '>', 10.0, 0);
INSERT INTO alert_deliveries (event_id, ts, channel, kind, status, attempts, error)
    VALUES (7, 21.0, 'email', 'firing', 'sent', 1, NULL);
INSERT INTO alert_silences (created_at, until, matchers, comment)
    VALUES (1.0, 1e12, '{"rule": "disk*"}', 'kept');
"""

LEGACY_AUTH = """
CREATE TABLE IF NOT EXISTS auth_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY, role TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),
    password_hash TEXT NOT NULL, generation INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS api_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'viewer')), key_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL, created_at REAL NOT NULL, created_by TEXT, revoked_at REAL);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token_hash TEXT PRIMARY KEY, family TEXT NOT NULL,
    user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    issued_at REAL NOT NULL, expires_at REAL NOT NULL, used_at REAL, revoked_at REAL);
CREATE INDEX IF NOT EXISTS refresh_tokens_family ON refresh_tokens(family);
CREATE TABLE IF NOT EXISTS sessions (
    id_hash TEXT PRIMARY KEY, user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    created_at REAL NOT NULL, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS revoked_jti (jti TEXT PRIMARY KEY, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, event TEXT NOT NULL,
    outcome TEXT NOT NULL, actor TEXT, role TEXT, via TEXT, source TEXT,
    detail TEXT NOT NULL DEFAULT '{}');
CREATE INDEX IF NOT EXISTS audit_ts ON audit(ts);
INSERT OR IGNORE INTO auth_meta (key, value) VALUES ('schema_version', '1');
INSERT INTO users VALUES ('alice', 'admin', '$argon2id$old', 3, 5.0);
INSERT INTO api_keys (name, role, key_hash, prefix, created_at, created_by)
    VALUES ('backup', 'viewer', 'kh', 'smk_ab', 6.0, 'alice');
INSERT INTO refresh_tokens VALUES ('rt', 'fam', 'alice', 7.0, 1e12, NULL, NULL);
INSERT INTO sessions VALUES ('sid', 'alice', 8.0, 1e12);
INSERT INTO revoked_jti VALUES ('jti-1', 1e12);
INSERT INTO audit (ts, event, outcome, actor, detail)
    VALUES (9.0, 'login', 'success', 'alice', '{"x": 1}');
"""


def legacy_file(path: Path, script: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(script)
    conn.close()


def schema_of(path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' "
            "AND name NOT LIKE 'alembic_version%' AND name != 'metrics_raw' ORDER BY name"
        ).fetchall()
    conn.close()
    # Compared up to layout: the same statements, written over fewer lines here.
    return [
        (name, re.sub(r"\s*([(),])\s*", r"\1", " ".join((sql or "").split()))) for name, sql in rows
    ]


def versions(path: Path) -> dict[str, list[str]]:
    with sqlite3.connect(path) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE name LIKE 'alembic_version%'"
            )
        ]
        found = {t: [r[0] for r in conn.execute(f"SELECT version_num FROM {t}")] for t in tables}
    conn.close()
    return found


def test_a_metrics_database_with_alert_tables_is_adopted_with_its_rows(tmp_path: Path) -> None:
    db = tmp_path / "sysmon.db"
    legacy_file(db, LEGACY_ALERTS)
    before = schema_of(db)
    store = AlertStore(str(db))
    store.open()
    try:
        (state,) = store.load_states()
        assert (state.rule, state.labels, state.firing_event_id, state.notified) == (
            "cpu",
            (("core", "1"),),
            7,
            True,
        )
        (event,) = store.events(0, 100)
        assert (event.id, event.labels, event.value) == (7, {"core": "1"}, 93.5)
        assert [d.channel for d in store.deliveries([7])[7]] == ["email"]
        (silence,) = store.silences(now=2.0)
        assert (silence.matchers, silence.comment) == ({"rule": "disk*"}, "kept")
        assert store.record(events=[event]) == [8]  # AUTOINCREMENT goes on from 7
    finally:
        store.close()
    assert schema_of(db) == before
    assert versions(db) == {"alembic_version_alerts": [migrate.head("alerts")]}
    with sqlite3.connect(db) as conn:  # the storage's own tables are left alone
        assert conn.execute("SELECT * FROM metrics_raw").fetchall() == [(1.0, 2.0)]
    conn.close()


def test_an_auth_database_is_adopted_with_its_rows(tmp_path: Path) -> None:
    db = tmp_path / "auth.db"
    legacy_file(db, LEGACY_AUTH)
    before = schema_of(db)
    store = AuthStore(db, wall=lambda: 10.0)
    store.open()
    try:
        alice = store.get_user("alice")
        assert alice is not None and (alice.password_hash, alice.generation) == (
            "$argon2id$old",
            3,
        )
        credentials = Credentials(store)
        assert credentials.key_by_hash("kh") is not None
        assert credentials.session_user("sid") == ("alice", "admin")
        assert store.token_user("alice", "jti-1") is None
        assert credentials.rotate_refresh("rt", "rt2", 1e12) == ("rotated", "alice")
        (row,) = Auditor(store).query(0, 100, 10)
        assert (row.event, row.actor, row.detail) == ("login", "alice", {"x": 1})
    finally:
        store.close()
    assert schema_of(db) == before
    assert versions(db) == {"alembic_version_auth": [migrate.head("auth")]}


def test_new_files_get_the_schema_the_old_code_made(tmp_path: Path) -> None:
    legacy_file(tmp_path / "old" / "sysmon.db", LEGACY_ALERTS)
    legacy_file(tmp_path / "old" / "auth.db", LEGACY_AUTH)
    alerts = AlertStore(str(tmp_path / "new" / "sysmon.db"))
    auth = AuthStore(tmp_path / "new" / "auth.db")
    alerts.open()
    auth.open()
    alerts.close()
    auth.close()
    for name in ("sysmon.db", "auth.db"):
        assert schema_of(tmp_path / "new" / name) == schema_of(tmp_path / "old" / name)


def test_both_histories_can_share_one_file(tmp_path: Path) -> None:
    """``auth.users_db`` may name the metrics database itself: two version tables."""
    db = tmp_path / "sysmon.db"
    alerts, auth = AlertStore(str(db)), AuthStore(db)
    alerts.open()
    auth.open()
    alerts.close()
    auth.close()
    assert versions(db) == {
        "alembic_version_alerts": [migrate.head("alerts")],
        "alembic_version_auth": [migrate.head("auth")],
    }


@pytest.fixture(params=BACKENDS)
def relational_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    with backend_url(request) as url:
        yield url


def test_processes_starting_at_once_migrate_once(
    tmp_path: Path, relational_url: str | None
) -> None:
    """Server workers and the agent open the same database at the same moment."""
    stores: list[AuthStore | AlertStore] = []
    for _ in range(4):
        stores.append(AuthStore(tmp_path / "auth.db", url=relational_url))
        stores.append(AlertStore(str(tmp_path / "sysmon.db"), url=relational_url))
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(stores))

    def start(store: AuthStore | AlertStore) -> None:
        barrier.wait()
        try:
            store.open()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in stores:
        s.close()
    assert errors == []
    url = relational_url or f"sqlite:///{tmp_path / 'auth.db'}"
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql("SELECT version_num FROM alembic_version_auth").all()
            assert [r[0] for r in rows] == [migrate.head("auth")]
            tables = set(inspect(conn).get_table_names())
    finally:
        engine.dispose()
    assert {"users", "api_keys", "refresh_tokens", "sessions", "revoked_jti", "audit"} <= tables


@pytest.fixture
def postgresql_url(request: pytest.FixtureRequest) -> Iterator[str]:
    with backend_url(request, "postgresql") as url:
        assert url is not None
        yield url


def test_postgresql_columns_are_portable(postgresql_url: str, tmp_path: Path) -> None:
    """Timestamps keep sub-second precision and ids are 64-bit on PostgreSQL."""
    relational_url = postgresql_url
    store = AlertStore(str(tmp_path / "unused.db"), url=relational_url)
    store.open()
    try:
        store.add_silence({"rule": "x"}, until=1_800_000_000.123456, comment="", now=1.5)
        assert store.silences()[0].until == 1_800_000_000.123456
    finally:
        store.close()
    engine = create_engine(relational_url)
    try:
        with engine.connect() as conn:
            columns = {c["name"]: str(c["type"]) for c in inspect(conn).get_columns("alert_events")}
    finally:
        engine.dispose()
    assert (columns["id"], columns["ts"]) == ("BIGINT", "DOUBLE PRECISION")


def test_the_migrations_are_package_data() -> None:
    """An installed wheel migrates too: the scripts are listed for setuptools."""
    import tomllib

    root = Path(__file__).resolve().parents[2]
    package_data = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["sysmon"]
    shipped = {
        p for p in migrate.MIGRATIONS.rglob("*") if p.is_file() and "__pycache__" not in p.parts
    }
    package = root / "sysmon"
    for path in shipped:
        relative = path.relative_to(package)
        assert any(relative.match(pattern) for pattern in package_data) or (
            path.suffix == ".py" and (path.parent / "__init__.py").exists()
        ), f"{relative} would not be in the wheel"
    assert {p.name for p in shipped} >= {"env.py", "script.py.mako"}
    assert any(p.parent.name == "alerts" for p in shipped)
    assert any(p.parent.name == "auth" for p in shipped)


def test_written_down_heads_are_the_scripts_heads() -> None:
    """``migrate.HEADS`` lets a process skip importing Alembic when nothing is to do;
    it must name the newest shipped script of each history."""
    assert {h: migrate.head(h) for h in migrate.HEADS} == migrate.HEADS
    assert set(migrate.HEADS) == {"alerts", "auth"}


# --- migrating in a child process (the agent: Alembic never resident)

_OPEN_IN_CHILD = """
import sys
from sysmon.alerts.store import AlertStore
store = AlertStore(sys.argv[1], url=sys.argv[2] or None, migrate_in_child=True)
store.open()
store.add_silence({"rule": "cpu"}, 2.0, "", 1.0)
store.close()
print("alembic" in sys.modules, "sqlalchemy" in sys.modules)
"""


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_store_migrated_in_a_child_is_at_head_without_alembic_in_the_process(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    with backend_url(request, backend) as url:
        path = tmp_path / "sysmon.db"
        run = subprocess.run(
            [sys.executable, "-c", _OPEN_IN_CHILD, str(path), url or ""],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, run.stderr
        assert run.stdout.split() == ["False", "True"], "Alembic ran in the child only"
        store = AlertStore(str(path), create=False, url=url)
        try:
            assert [s.matchers for s in store.silences()] == [{"rule": "cpu"}]
        finally:
            store.close()
    if backend == "sqlite":
        assert versions(path) == {"alembic_version_alerts": [migrate.HEADS["alerts"]]}


def test_a_failed_child_migration_is_a_storage_error_naming_the_cause(tmp_path: Path) -> None:
    db = Database.sqlite(str(tmp_path / "x.db"), lock_key=1)
    db.target = str(tmp_path / "no" / "such" / "dir" / "x.db")  # the child cannot open it
    try:
        with pytest.raises(migrate.MigrationError, match="migrating the alerts tables failed"):
            migrate.upgrade(db, "alerts", child=True)
    finally:
        db.close()
