"""The embedded SQLite time-series store (the default backend), one job per module.

=================  ============================================================
``store``          ``SQLiteStore``: lifecycle, locks, the ``TimeSeriesStore`` calls
``pool``           the writer connection's setup and the bounded reader pool
``tx``             the transaction helper; SQLite/OS errors -> ``StorageError`` once
``writer``         ticks (one transaction each) and imported rollup buckets
``planner``        which tier answers a query, merge factor, answer grid (pure)
``reader``         slot columns from chunks + hot rows; merged answers
``aggregate``      bucket partials, combine, mask, finish (pure, over arrays)
``maintenance``    rollups, compaction, retention, checkpoints (bounded per call)
``processes``      process tables: store, compact, expire, look up
``state``          the writer's mirrors: series ids, field layouts, watermarks, counts
``layout``         tier ids, chunk windows, label keys (file-format constants)
=================  ============================================================

Threads: the agent's writer thread owns the writer connection (``write``, ``maintain``);
reads borrow one of at most ``READER_POOL_SIZE`` read-only connections for the duration
of one call (WAL lets readers run alongside the writer without blocking it or seeing
half a tick). See sysmon/storage/README.md.
"""

from __future__ import annotations

from sysmon.storage.sqlite.layout import CHUNK_SPAN_SECONDS, COMPACT_CHECK_EVERY_SECONDS, TIER_CODE
from sysmon.storage.sqlite.maintenance import (
    CHECKPOINT_EVERY_SECONDS,
    COMPACT_UNITS_PER_CALL,
    DELETE_BATCH_CHUNKS,
    DELETE_BATCH_ROWS,
    RETENTION_EVERY_SECONDS,
    ROLLUP_BUCKETS_PER_CALL,
    VACUUM_PAGES_PER_CALL,
)
from sysmon.storage.sqlite.planner import MAX_POINTS_LIMIT
from sysmon.storage.sqlite.pool import BUSY_TIMEOUT_MS, READER_POOL_SIZE, WAL_SIZE_LIMIT_BYTES
from sysmon.storage.sqlite.reader import ALIGN_FACTOR_LIMIT, SEGMENT_GAP_SLOTS
from sysmon.storage.sqlite.store import SQLiteStore

__all__ = [
    "ALIGN_FACTOR_LIMIT",
    "BUSY_TIMEOUT_MS",
    "CHECKPOINT_EVERY_SECONDS",
    "CHUNK_SPAN_SECONDS",
    "COMPACT_CHECK_EVERY_SECONDS",
    "COMPACT_UNITS_PER_CALL",
    "DELETE_BATCH_CHUNKS",
    "DELETE_BATCH_ROWS",
    "MAX_POINTS_LIMIT",
    "READER_POOL_SIZE",
    "RETENTION_EVERY_SECONDS",
    "ROLLUP_BUCKETS_PER_CALL",
    "SEGMENT_GAP_SLOTS",
    "TIER_CODE",
    "VACUUM_PAGES_PER_CALL",
    "WAL_SIZE_LIMIT_BYTES",
    "SQLiteStore",
]
