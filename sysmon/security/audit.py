"""The audit log: who did what, from where, and whether it worked.

Each event becomes a row in the ``audit`` table of the authentication database (for
``GET /api/v1/audit``) *and* one JSON log line on the ``sysmon.audit`` logger (for whatever
collects the service's logs, which survives a deleted database). Events: ``login``
(success and failure, with the source address), ``token.refresh``, ``token.reuse``,
``logout``, ``key.create``, ``key.revoke``, ``user.create``, ``user.passwd``,
``user.delete``, and ``request`` for every other successful state-changing request by an
admin (method, path, status) and every refused one (403).

Callers pass names, roles, paths and statuses, never a password, token or key: nothing
here could tell a secret from a name, so the rule is kept at the call sites, and the
tests search the captured logs and answers for every secret they used.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, insert, select
from sqlalchemy import delete as sql_delete
from sqlalchemy.exc import SQLAlchemyError

from sysmon.relational.database import error_text
from sysmon.relational.tables import audit
from sysmon.security.principal import Principal
from sysmon.security.store import AuthStore

LOGGER = "sysmon.audit"
PRUNE_EVERY = 500  # inserts between deletions of rows past the retention

_INSERT = insert(audit)
_PRUNE = sql_delete(audit).where(audit.c.ts < bindparam("before"))
_COLUMNS = ("id", "ts", "event", "outcome", "actor", "role", "via", "source", "detail")
_QUERY = (
    select(*(audit.c[name] for name in _COLUMNS))
    .where(audit.c.ts >= bindparam("start"), audit.c.ts <= bindparam("end"))
    .order_by(audit.c.ts.desc(), audit.c.id.desc())
    .limit(bindparam("limit"))
)


@dataclass(frozen=True)
class AuditEvent:
    id: int
    ts: float
    event: str
    outcome: str
    actor: str | None
    role: str | None
    via: str | None
    source: str | None
    detail: dict[str, Any]


class Auditor:
    def __init__(self, store: AuthStore, retention_days: float = 365.0) -> None:
        self._store = store
        self._retention = retention_days * 86400.0
        self._logger = logging.getLogger(LOGGER)

    def record(
        self,
        event: str,
        *,
        outcome: str = "success",
        principal: Principal | None = None,
        actor: str | None = None,
        role: str | None = None,
        via: str | None = None,
        source: str | None = None,
        **detail: str | int | float | bool | None,
    ) -> None:
        """Write the row and the log line. ``principal`` (when given) names the actor, its
        role and how it authenticated; otherwise ``actor``/``role``/``via`` do. A database
        failure is logged, never raised: the action it describes has already happened."""
        now = self._store.now()
        line: dict[str, Any] = {
            "audit": event,
            "outcome": outcome,
            "actor": principal.name if principal else actor,
            "role": principal.role if principal else role,
            "via": principal.via if principal else via,
            "source": source,
            "ts": now,
            **detail,
        }
        try:
            with self._store.transaction() as tx:
                result = tx.execute(
                    _INSERT,
                    {
                        "ts": now,
                        "event": event,
                        "outcome": outcome,
                        "actor": line["actor"],
                        "role": line["role"],
                        "via": line["via"],
                        "source": source,
                        "detail": json.dumps(detail, sort_keys=True),
                    },
                )
                row_id = (result.inserted_primary_key or (0,))[0] or 0
                if row_id % PRUNE_EVERY == 0:
                    tx.execute(_PRUNE, {"before": now - self._retention})
        except SQLAlchemyError as exc:
            line["stored"] = False
            self._logger.error("audit row not stored: %s", error_text(exc))
        level = logging.INFO if outcome == "success" else logging.WARNING
        self._logger.log(level, "%s", json.dumps(line, sort_keys=True, default=str))

    def query(self, start: float, end: float, limit: int) -> list[AuditEvent]:
        """Events with ``start <= ts <= end``, the newest ``limit`` of them, newest first."""
        with self._store.reader() as conn:
            rows = conn.execute(_QUERY, {"start": start, "end": end, "limit": limit}).all()
        return [
            AuditEvent(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], json.loads(r[8]))
            for r in rows
        ]
