"""The time-series store contract.

Lifecycle guarantees (kept by the service):

* ``open`` is called once before anything else; it creates or migrates the schema.
* ``write`` is called from one thread only (the agent's store-writer thread), once per tick, and
  stores the whole snapshot in one transaction: either every sample of the tick is
  stored or none is (the caller then keeps the snapshot and retries it later).
* ``query``/``query_processes``/``series``/``stats``/``ping`` may be called from any
  thread, concurrently with ``write``; they never block the event loop because the API
  calls them in a worker thread.
* ``maintain`` (rollups + retention) is called from the same writer thread between writes
  and must do its work in bounded chunks.
* ``close`` is called once, after the last write.

What a backend can do is in ``capabilities()`` (its native resolutions and how long
each is kept, whether it keeps process tables, whether this process may write), so
callers ask instead of assuming SQLite's tiers. A backend that keeps no process tables
implements ``query_processes`` as "always ``None``".

Resolutions: ``RangeQuery.resolution`` is a name from ``Resolution``. ``"auto"`` lets
the backend choose the finest step whose grid fits ``max_points``. The other names are
steps: ``"raw"`` is the backend's finest native step (for SQLite the collection
interval), ``"1m"``/``"5m"``/``"1h"`` are ``RESOLUTION_STEP_SECONDS``. The SQLite store
keeps one tier per name; a backend without tiers (VictoriaMetrics) maps the name to that
step and aggregates at query time. ``SeriesResult.resolution`` is the name of what
answered and ``step_seconds`` the step actually used (a step may be merged to honour
``max_points``).

Hosts: every sample a store writes belongs to one host (the writer's ``agent.host``).
A store shared by several agents (VictoriaMetrics, InfluxDB) keeps each one's samples
under a ``host`` label; a SQLite file holds one host's. Reads take an optional host
(``RangeQuery.host``, ``series(metric, host)``): ``None`` is the store's own host.
``hosts()`` lists every host the store holds with the time of its newest sample, so a
caller can tell a host that stopped reporting (old ``last_seen``) from one that reports.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from sysmon.models import Labels, Snapshot

Resolution = Literal["auto", "raw", "1m", "5m", "1h"]
Aggregate = Literal["mean", "min", "max"]

RESOLUTION_STEP_SECONDS: Mapping[str, float] = {"1m": 60.0, "5m": 300.0, "1h": 3600.0}
"""The step each named resolution stands for; ``"raw"`` is the backend's finest step."""


@dataclass(frozen=True, slots=True)
class RangeQuery:
    metric: str
    start: float
    end: float
    labels: Labels = ()
    resolution: Resolution = "auto"
    agg: Aggregate = "mean"
    max_points: int = 1000
    host: str | None = None
    """Whose samples (the ``host`` label); ``None``: the store's own host."""


@dataclass(frozen=True, slots=True)
class SeriesResult:
    """Columnar answer: ``timestamps[i]`` goes with ``fields[name][i]``.

    ``None`` in a field is a gap (no data in that bucket), never interpolated.
    """

    metric: str
    labels: Labels
    resolution: str
    agg: str
    step_seconds: float
    timestamps: list[float]
    fields: dict[str, list[float | None]]
    partial_from: float | None = None
    """The first timestamp whose bucket is partial: computed at query time from finer
    data because the tier has not rolled it up yet (the current, unfinished bucket;
    closed ones ``maintain`` has not reached). Those values may still change. ``None``
    when every bucket is final (and always for raw answers and backends without tiers)."""


@dataclass(frozen=True, slots=True)
class RawGrid:
    """The finest slots that answer a range query one slot per point: ``n`` slots of
    ``step`` seconds from ``t0`` (a multiple of ``step``), a sample at ``ts`` in slot
    ``floor(ts / step + 0.5) - t0 / step``. ``resolution`` is what the answer says."""

    resolution: str
    step: float
    t0: float
    n: int

    @property
    def timestamps(self) -> list[float]:
        return grid_timestamps(self.t0, self.step, self.n)


def grid_timestamps(t0: float, step: float, n: int) -> list[float]:
    """The ``n`` instants of an answer's grid from ``t0`` (one formula for every path, so
    the live head's timestamps are the store's to the bit)."""
    return [t0 + k * step for k in range(n)]


@runtime_checkable
class RawGridQuery(Protocol):
    """A store that can say when a query is answered from plain raw slots (SQLite): a
    copy of its newest raw slots (the server's ``LiveHead``) then gives the same answer."""

    def raw_grid(self, q: RangeQuery) -> RawGrid | None: ...


@dataclass(frozen=True, slots=True)
class StoreStats:
    backend: str
    path: str | None
    size_bytes: int | None
    rows: Mapping[str, int] = field(default_factory=dict)
    pending_writes: int = 0
    last_write_error: str | None = None


@dataclass(frozen=True, slots=True)
class HostSeen:
    """One host a store holds samples of, and the timestamp of its newest sample."""

    name: str
    last_seen: float | None
    """Epoch seconds of the newest sample; ``None`` when the store cannot tell."""


@dataclass(frozen=True, slots=True)
class NativeResolution:
    """One step a backend stores (or answers) natively, and how long it keeps it."""

    name: str
    """What ``SeriesResult.resolution`` says when this step answers (``"raw"``, ``"1m"``)."""
    step_seconds: float
    retention_seconds: float


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a store can do, asked instead of assumed (health, API, contract tests).

    ``resolutions`` go fine to coarse; a query older than one's retention is answered by
    a coarser one (or not at all). ``process_tables``: ``query_processes`` can return
    tables. ``writable``: this process may call ``write``/``maintain`` (the server opens
    the SQLite file read-only; the agent writes it).
    """

    backend: str
    resolutions: tuple[NativeResolution, ...]
    process_tables: bool
    writable: bool

    @property
    def finest_step_seconds(self) -> float:
        return self.resolutions[0].step_seconds

    @property
    def max_retention_seconds(self) -> float:
        return max(r.retention_seconds for r in self.resolutions)


class ProcessHistory(Protocol):
    """Stored top-process tables (``Collected.rows`` of the ``processes`` collector)."""

    def query_processes(self, at: float) -> tuple[float, Sequence[Mapping[str, object]]] | None:
        """The stored process table nearest before ``at``: (its timestamp, rows), or
        ``None`` when none is recent enough (or the backend keeps none)."""
        ...


@dataclass(frozen=True, slots=True)
class ProcessSeries:
    """The history of some processes from the stored tables: per grid point, the sums of
    the matching rows of one stored table (``count``: how many rows matched; 0 = the
    table was stored and nothing matched; ``None`` everywhere = no table stored)."""

    step_seconds: float
    timestamps: list[float]
    fields: dict[str, list[float | None]]
    """``cpu_percent``, ``memory_percent``, ``rss_bytes``, ``count``."""
    tables_parsed: int
    """Stored tables whose JSON rows were parsed for the answer (the cost): the open
    window's picked tables, plus every table of a window that has no per-name sums."""


@runtime_checkable
class ProcessHistoryQuery(Protocol):
    """A store that can answer the history of processes by name or pid (SQLite)."""

    def process_history(
        self,
        start: float,
        end: float,
        max_points: int,
        name: str | None = None,
        pid: int | None = None,
    ) -> ProcessSeries:
        """Grid ``floor(start / step) * step`` .. ``end``, ``step`` a multiple of the
        table interval with at most ``max_points`` points; per point the first stored
        table in it. Exactly one of ``name`` (exact process name) and ``pid``."""
        ...


class TimeSeriesStore(ProcessHistory, Protocol):
    def open(self) -> None: ...

    def write(self, snapshot: Snapshot) -> None: ...

    def query(self, q: RangeQuery) -> SeriesResult: ...

    def series(self, metric: str, host: str | None = None) -> Sequence[Labels]:
        """Every label set stored for ``metric`` (``()`` = totals) of ``host`` (``None``:
        the store's own host)."""
        ...

    def hosts(self) -> Sequence[HostSeen]:
        """Every host with samples in the store, by name, with its newest sample's time."""
        ...

    def capabilities(self) -> Capabilities:
        """Static facts about this store; cheap, never raises, callable before ``open``."""
        ...

    def maintain(self, now: float) -> None: ...

    def ping(self) -> bool: ...

    def stats(self) -> StoreStats: ...

    def close(self) -> None: ...
