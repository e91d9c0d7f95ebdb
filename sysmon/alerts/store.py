"""Alert persistence in SQLite: per-series state, event history, deliveries, silences.

The tables (prefixed ``alert_``) may share the metrics database file: this class opens
its own connection in WAL mode, so the collection thread's metric writes and ours only
wait on each other for the duration of a commit (``busy_timeout`` covers that).

Why persist state and not just history: a restart must neither lose a firing alert nor
announce it again, and the resolved notification must still go out afterwards. The
engine writes a series' row on every state change (rare), never on a steady tick.

Thread safety: one connection guarded by a lock; callers are the collection thread
(state, events), the channel workers (deliveries) and API threads (reads, silences).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sysmon.errors import StorageError
from sysmon.models import Labels

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alert_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS alert_state (
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
);
CREATE TABLE IF NOT EXISTS alert_events (
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
);
CREATE INDEX IF NOT EXISTS alert_events_ts ON alert_events (ts);
CREATE TABLE IF NOT EXISTS alert_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id INTEGER,
    ts REAL NOT NULL,
    channel TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    error TEXT
);
CREATE INDEX IF NOT EXISTS alert_deliveries_event ON alert_deliveries (event_id);
CREATE TABLE IF NOT EXISTS alert_silences (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at REAL NOT NULL,
    until REAL NOT NULL,
    matchers TEXT NOT NULL,
    comment TEXT NOT NULL DEFAULT ''
);
"""


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
    def __init__(self, path: str, create: bool = True) -> None:
        """``create=False`` (the server process): never create the file or the schema;
        the connection opens on first use once the agent has created them."""
        self._path = path
        self._create = create
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def open(self) -> None:
        if not self._create:
            try:
                conn = sqlite3.connect(
                    f"file:{self._path}?mode=rw",
                    uri=True,
                    timeout=5.0,
                    check_same_thread=False,
                    isolation_level=None,
                )
                conn.execute("PRAGMA busy_timeout=5000")
                conn.execute("SELECT 1 FROM alert_silences LIMIT 1").fetchall()
            except sqlite3.Error as exc:
                raise StorageError(f"alert store not available yet: {exc}") from exc
            self._conn = conn
            return
        if self._path != ":memory:":
            Path(self._path).parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(
                self._path, timeout=5.0, check_same_thread=False, isolation_level=None
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=5000")
            conn.executescript(_SCHEMA)
            conn.execute(
                "INSERT OR IGNORE INTO alert_meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open alert store: {exc}") from exc
        self._conn = conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _opened(self) -> sqlite3.Connection:
        if self._conn is None and not self._create:
            self.open()
        if self._conn is None:
            raise StorageError("alert store is not open")
        return self._conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._opened()
            try:
                conn.execute("BEGIN IMMEDIATE")
                yield conn
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise StorageError(f"alert store: {exc}") from exc
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._opened()
            try:
                yield conn
            except sqlite3.Error as exc:
                raise StorageError(f"alert store: {exc}") from exc

    # --- state -------------------------------------------------------------------------

    def load_states(self) -> list[StoredState]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT rule, labels, state, since, firing_since, value, last_notified_at,"
                " notified, firing_event_id FROM alert_state"
            ).fetchall()
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
        with self._tx() as conn:
            fired: dict[tuple[str, str], int] = {}
            for ev in events:
                key = labels_key(tuple(sorted(ev.labels.items())))
                cur = conn.execute(
                    "INSERT INTO alert_events (ts, kind, rule, severity, metric, labels, value,"
                    " threshold, operator, since, silenced) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        ev.timestamp,
                        ev.kind,
                        ev.rule,
                        ev.severity,
                        ev.metric,
                        json.dumps(ev.labels, sort_keys=True),
                        ev.value,
                        ev.threshold,
                        ev.operator,
                        ev.since,
                        int(ev.silenced),
                    ),
                )
                event_id = int(cur.lastrowid or 0)
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
                        row = conn.execute(
                            "SELECT firing_event_id FROM alert_state WHERE rule = ? AND labels = ?",
                            (st.rule, key),
                        ).fetchone()
                        state_event_id = None if row is None else row[0]
                conn.execute(
                    "INSERT OR REPLACE INTO alert_state (rule, labels, state, since,"
                    " firing_since, value, last_notified_at, notified, firing_event_id)"
                    " VALUES (?,?,?,?,?,?,?,?,?)",
                    (
                        st.rule,
                        key,
                        st.state,
                        st.since,
                        st.firing_since,
                        st.value,
                        st.last_notified_at,
                        int(st.notified),
                        state_event_id,
                    ),
                )
            for rule, labels in delete:
                conn.execute(
                    "DELETE FROM alert_state WHERE rule = ? AND labels = ?",
                    (rule, labels_key(labels)),
                )
        return ids

    def delete_rules_except(self, names: Sequence[str]) -> int:
        """Forget state of rules that are no longer configured (renamed or removed)."""
        with self._tx() as conn:
            marks = ",".join("?" for _ in names)
            sql = "DELETE FROM alert_state"
            if names:
                sql += f" WHERE rule NOT IN ({marks})"
            return conn.execute(sql, tuple(names)).rowcount

    # --- history -----------------------------------------------------------------------

    def events(self, start: float, end: float, limit: int = 1000) -> list[AlertEvent]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT id, ts, kind, rule, severity, metric, labels, value, threshold,"
                " operator, since, silenced FROM alert_events WHERE ts >= ? AND ts <= ?"
                " ORDER BY ts, id LIMIT ?",
                (start, end, limit),
            ).fetchall()
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
        with self._tx() as conn:
            conn.execute(
                "DELETE FROM alert_deliveries WHERE event_id IN"
                " (SELECT id FROM alert_events WHERE ts < ?)",
                (before,),
            )
            conn.execute(
                "DELETE FROM alert_deliveries WHERE event_id IS NULL AND ts < ?", (before,)
            )
            return conn.execute("DELETE FROM alert_events WHERE ts < ?", (before,)).rowcount

    def add_delivery(self, delivery: Delivery) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO alert_deliveries (event_id, ts, channel, kind, status, attempts,"
                " error) VALUES (?,?,?,?,?,?,?)",
                (
                    delivery.event_id,
                    delivery.timestamp,
                    delivery.channel,
                    delivery.kind,
                    delivery.status,
                    delivery.attempts,
                    delivery.error,
                ),
            )

    def deliveries(self, event_ids: Sequence[int]) -> dict[int, list[Delivery]]:
        out: dict[int, list[Delivery]] = {}
        if not event_ids:
            return out
        with self._read() as conn:
            for chunk_start in range(0, len(event_ids), 500):
                chunk = list(event_ids[chunk_start : chunk_start + 500])
                marks = ",".join("?" for _ in chunk)
                rows = conn.execute(
                    "SELECT event_id, ts, channel, kind, status, attempts, error"
                    f" FROM alert_deliveries WHERE event_id IN ({marks}) ORDER BY id",
                    chunk,
                ).fetchall()
                for r in rows:
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
        with self._tx() as conn:
            cur = conn.execute(
                "INSERT INTO alert_silences (created_at, until, matchers, comment)"
                " VALUES (?,?,?,?)",
                (now, until, json.dumps(dict(matchers), sort_keys=True), comment),
            )
            sid = int(cur.lastrowid or 0)
        return Silence(
            id=sid, created_at=now, until=until, matchers=dict(matchers), comment=comment
        )

    def delete_silence(self, silence_id: int) -> bool:
        with self._tx() as conn:
            return (
                conn.execute("DELETE FROM alert_silences WHERE id = ?", (silence_id,)).rowcount > 0
            )

    def silences(self, now: float | None = None) -> list[Silence]:
        """Silences still in force at ``now`` (all of them when ``now`` is None)."""
        sql = "SELECT id, created_at, until, matchers, comment FROM alert_silences"
        params: tuple[float, ...] = ()
        if now is not None:
            sql += " WHERE until > ?"
            params = (now,)
        with self._read() as conn:
            rows = conn.execute(sql + " ORDER BY id", params).fetchall()
        return [
            Silence(id=r[0], created_at=r[1], until=r[2], matchers=json.loads(r[3]), comment=r[4])
            for r in rows
        ]
