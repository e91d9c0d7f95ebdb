"""Alert persistence: per-series state, event history, deliveries, silences.

The tables (prefixed ``alert_``) live in the metrics database file by default (SQLite,
WAL mode: the collection thread's metric writes and ours only wait on each other for the
duration of a commit, ``busy_timeout`` covers that), or in the PostgreSQL database named
by ``relational.url``. ``sysmon.relational`` holds the engine, the tables and the Alembic
migrations, which run when the agent opens the store.

Why persist state and not just history: a restart must neither lose a firing alert nor
announce it again, and the resolved notification must still go out afterwards. The
engine writes a series' row on every state change (rare), never on a steady tick.

Thread safety and writers: every write takes this object's lock and then the database's
write lock (``Database.write``: ``BEGIN IMMEDIATE`` on SQLite, an advisory lock on
PostgreSQL), so writes apply one at a time, in the order they were made, across threads
and processes. Callers are the collection thread (state, events), the channel workers
(deliveries) and API threads in the server process (silences). Reads take pooled
connections of their own and never wait for a writer.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import Table, bindparam, insert, select
from sqlalchemy import delete as sql_delete
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.dialects.postgresql import Insert as PgInsert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, CursorResult
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.expression import Executable

from sysmon.errors import StorageError
from sysmon.models import Labels
from sysmon.relational import migrate
from sysmon.relational.database import Database, error_text, lock_key
from sysmon.relational.tables import (
    alert_deliveries,
    alert_events,
    alert_silences,
    alert_state,
)

SCHEMA_VERSION = 1
"""The ``alert_meta`` schema_version row (kept for older readers); the schema's real
version is the Alembic revision in ``alembic_version_alerts``."""

LOCK_KEY = lock_key("sysmon.alerts")

# Statements are built once: building one costs more than running it on SQLite, and
# each runs from SQLAlchemy's compiled cache afterwards.
_st, _ev, _dl, _si = alert_state, alert_events, alert_deliveries, alert_silences
_STATE_COLUMNS = ("state", "since", "firing_since", "value", "last_notified_at", "notified",
                  "firing_event_id")  # fmt: skip


def _upsert_state(insert_for: Callable[[Table], PgInsert | SqliteInsert]) -> Executable:
    statement = insert_for(_st)
    return statement.on_conflict_do_update(
        index_elements=[_st.c.rule, _st.c.labels],
        set_={name: statement.excluded[name] for name in _STATE_COLUMNS},
    )


_UPSERT_STATE = {"sqlite": _upsert_state(sqlite_insert), "postgresql": _upsert_state(pg_insert)}
_LOAD_STATES = select(*(_st.c[name] for name in ("rule", "labels", *_STATE_COLUMNS)))
_FIRING_EVENT_ID = select(_st.c.firing_event_id).where(
    _st.c.rule == bindparam("rule"), _st.c.labels == bindparam("labels")
)
_DELETE_STATE = sql_delete(_st).where(
    _st.c.rule == bindparam("rule"), _st.c.labels == bindparam("labels")
)
_DELETE_ALL_STATES = sql_delete(_st)
_DELETE_STATES_EXCEPT = sql_delete(_st).where(_st.c.rule.not_in(bindparam("names", expanding=True)))
_INSERT_EVENT = insert(_ev)
_EVENT_COLUMNS = ("id", "ts", "kind", "rule", "severity", "metric", "labels", "value",
                  "threshold", "operator", "since", "silenced")  # fmt: skip
_EVENTS = (
    select(*(_ev.c[name] for name in _EVENT_COLUMNS))
    .where(_ev.c.ts >= bindparam("start"), _ev.c.ts <= bindparam("end"))
    .order_by(_ev.c.ts, _ev.c.id)
    .limit(bindparam("limit"))
)
_PRUNE = (
    sql_delete(_dl).where(
        _dl.c.event_id.in_(select(_ev.c.id).where(_ev.c.ts < bindparam("before")))
    ),
    sql_delete(_dl).where(_dl.c.event_id.is_(None), _dl.c.ts < bindparam("before")),
)
_PRUNE_EVENTS = sql_delete(_ev).where(_ev.c.ts < bindparam("before"))
_INSERT_DELIVERY = insert(_dl)
_DELIVERY_COLUMNS = ("event_id", "ts", "channel", "kind", "status", "attempts", "error")
_DELIVERIES = (
    select(*(_dl.c[name] for name in _DELIVERY_COLUMNS))
    .where(_dl.c.event_id.in_(bindparam("ids", expanding=True)))
    .order_by(_dl.c.id)
)
_INSERT_SILENCE = insert(_si)
_DELETE_SILENCE = sql_delete(_si).where(_si.c.id == bindparam("id"))
_SILENCE_COLUMNS = (_si.c.id, _si.c.created_at, _si.c.until, _si.c.matchers, _si.c.comment)
_ALL_SILENCES = select(*_SILENCE_COLUMNS).order_by(_si.c.id)
_SILENCES_AT = select(*_SILENCE_COLUMNS).where(_si.c.until > bindparam("now")).order_by(_si.c.id)


def labels_key(labels: Labels) -> str:
    """Canonical text form of a label tuple (the primary-key column)."""
    return json.dumps([list(p) for p in labels], separators=(",", ":"))


def labels_from_key(text: str) -> Labels:
    return tuple((str(k), str(v)) for k, v in json.loads(text))


@dataclass(frozen=True, slots=True)
class StoredState:
    rule: str
    labels: Labels
    state: str
    since: float
    firing_since: float | None
    value: float | None
    last_notified_at: float | None
    notified: bool
    firing_event_id: int | None


@dataclass(frozen=True, slots=True)
class AlertEvent:
    id: int
    timestamp: float
    kind: str
    rule: str
    severity: str
    metric: str
    labels: dict[str, str]
    value: float | None
    threshold: float
    operator: str
    since: float
    silenced: bool


@dataclass(frozen=True, slots=True)
class Delivery:
    event_id: int | None
    timestamp: float
    channel: str
    kind: str
    status: str
    attempts: int
    error: str | None


@dataclass(frozen=True, slots=True)
class Silence:
    id: int
    created_at: float
    until: float
    matchers: dict[str, str]
    comment: str


class AlertStore:
    def __init__(
        self,
        path: str,
        create: bool = True,
        *,
        url: str | None = None,
        migrate_in_child: bool = False,
    ) -> None:
        """``path``: the SQLite file; ``url``: a PostgreSQL database instead (``path`` is
        then unused). ``create=False`` (the server process): never create the file, the
        tables or run a migration; the store opens on first use once the agent has.
        ``migrate_in_child`` (the agent): a migration runs in a child process
        (``migrate.upgrade(child=True)``), so Alembic never stays in a long-lived one."""
        self._path = path
        self._url = url
        self._create = create
        self._migrate_in_child = migrate_in_child
        self._lock = threading.Lock()
        self._db: Database | None = None
        self._probe: sqlite3.Connection | None = None
        self._silenced: tuple[list[Any], list[Silence]] | None = None
        """The last per-tick silence rows and the ``Silence`` objects made of them."""

    def open(self) -> None:
        if not self._create:
            db = self._database(must_exist=True)
            try:
                with db.read() as conn:
                    conn.execute(select(alert_silences.c.id).limit(1)).fetchall()
            except SQLAlchemyError as exc:
                db.close()
                raise StorageError(f"alert store not available yet: {error_text(exc)}") from exc
            self._db = db
            return
        if self._url is None and self._path != ":memory:":
            Path(self._path).parent.mkdir(parents=True, exist_ok=True)
        db = self._database(must_exist=False)
        try:
            db.use_wal()
            migrate.upgrade(db, "alerts", child=self._migrate_in_child)
        except SQLAlchemyError as exc:
            db.close()
            raise StorageError(f"cannot open alert store: {error_text(exc)}") from exc
        except migrate.MigrationError as exc:
            db.close()
            raise StorageError(f"cannot open alert store: {exc}") from exc
        self._db = db

    def _database(self, *, must_exist: bool) -> Database:
        if self._url is not None:
            return Database.postgresql(self._url, lock_key=LOCK_KEY)
        return Database.sqlite(self._path, lock_key=LOCK_KEY, must_exist=must_exist)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
            if self._probe is not None:
                self._probe.close()
                self._probe = None
            self._silenced = None

    def _opened(self) -> Database:
        if self._db is None and not self._create:
            self.open()
        if self._db is None:
            raise StorageError("alert store is not open")
        return self._db

    @contextmanager
    def _tx(self) -> Iterator[tuple[Database, Connection]]:
        with self._lock:
            db = self._opened()
            try:
                with db.write() as conn:
                    yield db, conn
            except SQLAlchemyError as exc:
                raise StorageError(f"alert store: {error_text(exc)}") from exc

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        db = self._opened()
        try:
            with db.read() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StorageError(f"alert store: {error_text(exc)}") from exc

    # --- state -------------------------------------------------------------------------

    def load_states(self) -> list[StoredState]:
        with self._read() as conn:
            rows = conn.execute(_LOAD_STATES).all()
        return [
            StoredState(
                rule=r[0],
                labels=labels_from_key(r[1]),
                state=r[2],
                since=r[3],
                firing_since=r[4],
                value=r[5],
                last_notified_at=r[6],
                notified=bool(r[7]),
                firing_event_id=r[8],
            )
            for r in rows
        ]

    def record(
        self,
        *,
        upsert: Sequence[StoredState] = (),
        delete: Sequence[tuple[str, Labels]] = (),
        events: Sequence[AlertEvent] = (),
    ) -> list[int]:
        """Apply one tick's state changes and events atomically; returns the event ids.

        Event ids are assigned here; ``AlertEvent.id`` of the inputs is ignored. A state
        whose ``firing_event_id`` is -1 gets the id of the first ``firing`` event of its
        rule and labels in this batch (the engine learns ids only after the insert).
        """
        ids: list[int] = []
        with self._tx() as (db, conn):
            fired: dict[tuple[str, str], int] = {}
            for ev in events:
                key = labels_key(tuple(sorted(ev.labels.items())))
                result = conn.execute(
                    _INSERT_EVENT,
                    {
                        "ts": ev.timestamp,
                        "kind": ev.kind,
                        "rule": ev.rule,
                        "severity": ev.severity,
                        "metric": ev.metric,
                        "labels": json.dumps(ev.labels, sort_keys=True),
                        "value": ev.value,
                        "threshold": ev.threshold,
                        "operator": ev.operator,
                        "since": ev.since,
                        "silenced": int(ev.silenced),
                    },
                )
                event_id = _new_id(result)
                ids.append(event_id)
                if ev.kind == "firing":
                    fired[(ev.rule, key)] = event_id
            for st in upsert:
                key = labels_key(st.labels)
                state_event_id = st.firing_event_id
                if state_event_id == -1:
                    # Fired in this batch, or earlier with the id not yet known to the
                    # engine (the write is asynchronous): keep the stored one.
                    state_event_id = fired.get((st.rule, key))
                    if state_event_id is None:
                        state_event_id = conn.execute(
                            _FIRING_EVENT_ID, {"rule": st.rule, "labels": key}
                        ).scalar()
                conn.execute(
                    _UPSERT_STATE[db.kind],
                    {
                        "rule": st.rule,
                        "labels": key,
                        "state": st.state,
                        "since": st.since,
                        "firing_since": st.firing_since,
                        "value": st.value,
                        "last_notified_at": st.last_notified_at,
                        "notified": int(st.notified),
                        "firing_event_id": state_event_id,
                    },
                )
            for rule, labels in delete:
                conn.execute(_DELETE_STATE, {"rule": rule, "labels": labels_key(labels)})
        return ids

    def delete_rules_except(self, names: Sequence[str]) -> int:
        """Forget state of rules that are no longer configured (renamed or removed)."""
        with self._tx() as (_, conn):
            if not names:
                return conn.execute(_DELETE_ALL_STATES).rowcount
            return conn.execute(_DELETE_STATES_EXCEPT, {"names": list(names)}).rowcount

    # --- history -----------------------------------------------------------------------

    def events(self, start: float, end: float, limit: int = 1000) -> list[AlertEvent]:
        with self._read() as conn:
            rows = conn.execute(_EVENTS, {"start": start, "end": end, "limit": limit}).all()
        return [
            AlertEvent(
                id=r[0],
                timestamp=r[1],
                kind=r[2],
                rule=r[3],
                severity=r[4],
                metric=r[5],
                labels=json.loads(r[6]),
                value=r[7],
                threshold=r[8],
                operator=r[9],
                since=r[10],
                silenced=bool(r[11]),
            )
            for r in rows
        ]

    def prune(self, before: float) -> int:
        with self._tx() as (_, conn):
            for statement in _PRUNE:
                conn.execute(statement, {"before": before})
            return conn.execute(_PRUNE_EVENTS, {"before": before}).rowcount

    def add_delivery(self, delivery: Delivery) -> None:
        with self._tx() as (_, conn):
            conn.execute(
                _INSERT_DELIVERY,
                {
                    "event_id": delivery.event_id,
                    "ts": delivery.timestamp,
                    "channel": delivery.channel,
                    "kind": delivery.kind,
                    "status": delivery.status,
                    "attempts": delivery.attempts,
                    "error": delivery.error,
                },
            )

    def deliveries(self, event_ids: Sequence[int]) -> dict[int, list[Delivery]]:
        out: dict[int, list[Delivery]] = {}
        if not event_ids:
            return out
        with self._read() as conn:
            for chunk_start in range(0, len(event_ids), 500):
                chunk = list(event_ids[chunk_start : chunk_start + 500])
                for r in conn.execute(_DELIVERIES, {"ids": chunk}):
                    out.setdefault(r[0], []).append(
                        Delivery(
                            event_id=r[0],
                            timestamp=r[1],
                            channel=r[2],
                            kind=r[3],
                            status=r[4],
                            attempts=r[5],
                            error=r[6],
                        )
                    )
        return out

    # --- silences ----------------------------------------------------------------------

    def add_silence(
        self, matchers: Mapping[str, str], until: float, comment: str, now: float
    ) -> Silence:
        with self._tx() as (_, conn):
            result = conn.execute(
                _INSERT_SILENCE,
                {
                    "created_at": now,
                    "until": until,
                    "matchers": json.dumps(dict(matchers), sort_keys=True),
                    "comment": comment,
                },
            )
            sid = _new_id(result)
        return Silence(
            id=sid, created_at=now, until=until, matchers=dict(matchers), comment=comment
        )

    def delete_silence(self, silence_id: int) -> bool:
        with self._tx() as (_, conn):
            return conn.execute(_DELETE_SILENCE, {"id": silence_id}).rowcount > 0

    def silences(self, now: float | None = None) -> list[Silence]:
        """Silences still in force at ``now`` (all of them when ``now`` is None)."""
        with self._read() as conn:
            if now is None:
                rows = conn.execute(_ALL_SILENCES).all()
            else:
                rows = conn.execute(_SILENCES_AT, {"now": now}).all()
        return [_silence(r) for r in rows]

    def silences_now(self, now: float) -> list[Silence]:
        """``silences(now)`` for the per-tick path, cheaply.

        On SQLite: the same query as plain ``sqlite3`` on a read-only connection of our
        own (~20 µs; through SQLAlchemy's connection pool and result machinery it cost
        ~0.35 ms a tick), and ``Silence`` objects are rebuilt only when the rows
        changed. On PostgreSQL, or when the plain read fails, ``silences(now)``."""
        if self._url is not None or self._path == ":memory:":
            return self.silences(now)
        try:
            if self._probe is None:
                uri = Path(self._path).resolve().as_uri() + "?mode=ro"
                self._probe = sqlite3.connect(uri, uri=True, check_same_thread=False)
            rows = self._probe.execute(_silences_at_sqlite(), (now,)).fetchall()
        except sqlite3.Error:
            return self.silences(now)  # reports its own errors
        last = self._silenced
        if last is None or last[0] != rows:
            last = self._silenced = (rows, [_silence(r) for r in rows])
        return last[1]


@cache
def _silences_at_sqlite() -> str:
    """``_SILENCES_AT`` as SQLite SQL with one ``?`` (the query is written once, above)."""
    return str(_SILENCES_AT.compile(dialect=sqlite_dialect.dialect()))


def _silence(r: Sequence[Any]) -> Silence:
    return Silence(id=r[0], created_at=r[1], until=r[2], matchers=json.loads(r[3]), comment=r[4])


def _new_id(result: CursorResult[Any]) -> int:
    """The id the database gave the row just inserted."""
    key = result.inserted_primary_key
    if key is None or key[0] is None:
        raise StorageError("alert store: the database returned no id for a new row")
    return int(key[0])
