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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from sysmon.models import Labels, Snapshot

Resolution = Literal["auto", "raw", "1m", "5m", "1h"]
Aggregate = Literal["mean", "min", "max"]


@dataclass(frozen=True, slots=True)
class RangeQuery:
    metric: str
    start: float
    end: float
    labels: Labels = ()
    resolution: Resolution = "auto"
    agg: Aggregate = "mean"
    max_points: int = 1000


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


@dataclass(frozen=True, slots=True)
class StoreStats:
    backend: str
    path: str | None
    size_bytes: int | None
    rows: Mapping[str, int] = field(default_factory=dict)
    pending_writes: int = 0
    last_write_error: str | None = None


class TimeSeriesStore(Protocol):
    def open(self) -> None: ...

    def write(self, snapshot: Snapshot) -> None: ...

    def query(self, q: RangeQuery) -> SeriesResult: ...

    def series(self, metric: str) -> Sequence[Labels]:
        """Every label set stored for ``metric`` (``()`` = totals)."""
        ...

    def query_processes(self, at: float) -> tuple[float, Sequence[Mapping[str, object]]] | None:
        """The stored process table nearest before ``at``: (its timestamp, rows)."""
        ...

    def maintain(self, now: float) -> None: ...

    def ping(self) -> bool: ...

    def stats(self) -> StoreStats: ...

    def close(self) -> None: ...
