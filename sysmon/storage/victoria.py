"""A ``TimeSeriesStore`` on a VictoriaMetrics single-node server (HTTP only).

Naming: sample ``(metric, field, labels)`` is the series
``sysmon_<metric>_<field>{host="<host>", <labels>}``, e.g.
``sysmon_disk_percent{host="web1", mount="/"}``; names and label keys are reduced to
Prometheus' alphabet (anything else becomes ``_``). Like Telegraf's Prometheus output,
the name does not say where the metric ends and the field begins: a read of metric
``disk`` would also see the fields of a metric called ``disk_io``. No collector is named
like that; a plugin that is would need a label of its own.

Writes: one ``POST /api/v1/import/prometheus`` per snapshot (the text exposition format
with millisecond timestamps). Chosen over ``/api/v1/import`` (JSON lines) because the
text format carries ``+Inf``/``-Inf``, which JSON cannot (VictoriaMetrics 1.79 skips a
JSON line holding ``Infinity`` with only a log line on its side and answers 204), and it
is a third of the bytes. ``NaN`` samples are not sent: in sysmon NaN means "absent", as
in the SQLite store. VictoriaMetrics stores values as decimals and is not bit-exact
like the SQLite store (measured on 1.79.5): long fractions are cut after about 10-12
decimal places (``88.63636363637538`` reads back as ``88.6363636363``, a relative error
below 1e-11), tiny magnitudes become 0 (``1e-300``); integers (byte counts) and values
with a few decimals round-trip exactly.
A write either reaches the server whole (204) or fails with ``StorageError``; the
agent's writer then keeps the snapshot and sends it again later. A retry of a write that
did arrive (a timeout after the server took it) stores the same values at the same
timestamps again, which changes no mean, min, max or last.

Reads: ``/api/v1/query_range`` evaluates ``<fn>_over_time(<series>[step] offset -d)``
at the grid points ``t0, t0 + step, ...`` (``t0 = floor(start / step) * step``, as
SQLite), so each point aggregates exactly the samples of its bucket:

* rollup steps (1m, 5m, 1h, merged): ``[t, t + step)``;
* raw (step = collection interval): ``[t - step/2, t + step/2)``, the nearest slot,
  like SQLite's ``floor(ts / interval + 0.5)``; read with ``last_over_time`` (the later
  write wins, the aggregate does not apply to single values);
* merged raw (factor > 1): ``[t - interval/2, t + step - interval/2)``.

PromQL windows are ``(a, b]``; the offset is one millisecond short of the shift, so at
VictoriaMetrics' millisecond resolution the window is ``[a, b)``. ``keep_metric_names``
keeps the field in the answer; ``nocache=1`` bypasses the server's rollup cache, whose
alignment of ``start`` and whose reuse of answers across late (replayed) writes are not
ours to reason about. A bucket without samples is ``None``.

The server, not this class, owns retention and downsampling (``-retentionPeriod``,
``-dedup.minScrapeInterval``, its own merges): ``maintain`` only re-reads the size
and the retention period that ``stats`` and ``capabilities`` show. The newest
``-search.latencyOffset`` (default 30 s) of every range is hidden by the server; run it
with ``-search.latencyOffset=1s`` to see recent points in range queries (the live view
does not read the store).

Hosts: reads filter on ``RangeQuery.host`` (``series(metric, host)``), default this
store's own ``host``, so one server answers for every agent that writes to it.
``hosts()`` lists the ``host`` label values of sysmon series
(``/api/v1/label/host/values``) and each one's newest sample time from one instant query,
``max by (host) (tlast_over_time({__name__=~"sysmon_.+"}[5m]))`` at the clock's now
(``nocache=1``, so the server does not move "now" back by ``-search.latencyOffset``).
A host with nothing in the last ``HOSTS_RECENT_SECONDS`` is looked up once over the
whole retention and remembered until it reports again (a long window over a dead host's
history is the expensive part; its answer does not change while the host is silent).
A stopped host gives gaps, not a flat line: every range read above aggregates only the
samples inside its own bucket (an explicit window per point), never the server's 5
minute lookback of a bare selector, which would repeat the last value.

Process tables are not kept (VictoriaMetrics stores numbers): ``query_processes``
returns ``None``. The process *count* and *threads* are samples and are stored.

Threads: one ``httpx.Client`` (thread-safe connection pool) serves the writer thread and
the API's worker threads; counters live under a lock.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from sysmon.clock import Clock
from sysmon.errors import QueryError, StorageError
from sysmon.models import Labels, Snapshot
from sysmon.storage.base import (
    RESOLUTION_STEP_SECONDS,
    Capabilities,
    HostSeen,
    NativeResolution,
    RangeQuery,
    SeriesResult,
    StoreStats,
)

log = logging.getLogger(__name__)

PREFIX = "sysmon_"
HOST_LABEL = "host"
MAX_POINTS_LIMIT = 10_000
"""Same bound as the SQLite store (and below the server's default 30000 per series)."""
FACTS_REFRESH_SECONDS = 60.0
"""``maintain`` (every ~10 s) re-reads the server's size and retention at most this often."""
HOSTS_RECENT_SECONDS = 300.0
"""``hosts()`` reads each host's newest sample in this window first (see the module doc)."""
EPOCH_FLOOR = 31_536_000.0
"""The oldest time ``hosts()`` looks back to (1971): a window reaching back to the epoch
itself finds nothing on VictoriaMetrics 1.79 (measured)."""
ALL_TIME = ("1", "4102444800")
"""``start``/``end`` for "every series ever": VictoriaMetrics reads ``start=0`` as
"not given" and then looks at the last day only."""
_EPS = 1e-9
_INVALID_NAME = re.compile(r"[^a-zA-Z0-9_:]")
_INVALID_LABEL = re.compile(r"[^a-zA-Z0-9_]")
_AGG_FN = {"mean": "avg_over_time", "min": "min_over_time", "max": "max_over_time"}


def series_name(metric: str, field: str) -> str:
    """``sysmon_<metric>_<field>`` in Prometheus' metric-name alphabet."""
    return _INVALID_NAME.sub("_", f"{PREFIX}{metric}_{field}")


def label_key(key: str) -> str:
    """A label key in Prometheus' alphabet (no leading digit)."""
    clean = _INVALID_LABEL.sub("_", key)
    return f"_{clean}" if clean[:1].isdigit() else clean


def _name_prefix(metric: str) -> str:
    return series_name(metric, "")


def _escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _format_value(value: float) -> str:
    if value == math.inf:
        return "+Inf"
    if value == -math.inf:
        return "-Inf"
    return repr(float(value))  # shortest repr: parses back to the same float64


def encode_snapshot(snapshot: Snapshot, host: str) -> bytes:
    """The snapshot as Prometheus text lines with millisecond timestamps (one per sample;
    NaN samples left out)."""
    ts_ms = round(snapshot.timestamp * 1000)
    lines: list[str] = []
    for sample in snapshot.samples():
        value = float(sample.value)
        if value != value:
            continue
        labels = {label_key(k): v for k, v in sample.labels}
        labels[HOST_LABEL] = host  # the store's, whatever a sample says
        body = ",".join(f'{k}="{_escape_label_value(v)}"' for k, v in sorted(labels.items()))
        lines.append(
            f"{series_name(sample.metric, sample.field)}{{{body}}} {_format_value(value)} {ts_ms}"
        )
    return ("\n".join(lines) + "\n").encode() if lines else b""


def _quote(value: str) -> str:
    """A PromQL string literal (JSON escapes are valid Go/MetricsQL escapes)."""
    return json.dumps(value)


@dataclass(frozen=True, slots=True)
class Plan:
    """How one range query is read: the grid and the window around each grid point."""

    resolution: str
    step: float
    t0: float
    points: int
    lead: float
    """The window of grid point ``t`` is ``[t - lead, t - lead + step)``."""
    function: str


def _grid_points(start: float, end: float, step: float) -> int:
    return math.floor(end / step + _EPS) - math.floor(start / step + _EPS) + 1


def plan_query(q: RangeQuery, interval: float) -> Plan:
    """The step for ``q``: the named tier's, or for ``auto`` the finest with at most
    ``max_points`` points; any step is multiplied up until the grid fits, like SQLite."""
    steps = {"raw": interval, **RESOLUTION_STEP_SECONDS}  # fine to coarse
    if q.resolution == "auto":
        name = next(
            (n for n, step in steps.items() if _grid_points(q.start, q.end, step) <= q.max_points),
            max(steps, key=steps.__getitem__),
        )
    elif q.resolution in steps:
        name = q.resolution
    else:
        raise QueryError(
            "resolution", f"resolution must be auto, raw, 1m, 5m or 1h, not {q.resolution!r}"
        )
    base = steps[name]
    factor = max(1, math.ceil(_grid_points(q.start, q.end, base) / q.max_points))
    while _grid_points(q.start, q.end, base * factor) > q.max_points:
        factor += 1
    step = base * factor
    t0 = math.floor(q.start / step + _EPS) * step
    raw = name == "raw"
    return Plan(
        resolution=name,
        step=step,
        t0=t0,
        points=_grid_points(q.start, q.end, step),
        lead=interval / 2 if raw else 0.0,
        function="last_over_time" if raw and factor == 1 else _AGG_FN[q.agg],
    )


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def range_expression(plan: Plan, selector: str) -> str:
    """``fn(selector[step] offset -(step - lead - 1ms)) keep_metric_names``: evaluated at
    ``t`` it covers ``(t - lead - 1ms, t - lead + step - 1ms]`` = ``[t - lead, t - lead +
    step)`` in milliseconds."""
    window = _ms(plan.step)
    shift = window - _ms(plan.lead) - 1
    offset = f" offset {-shift}ms" if shift else ""
    return f"{plan.function}({selector}[{window}ms]{offset}) keep_metric_names"


def _strip_userinfo(url: str) -> str:
    parsed = httpx.URL(url)
    return str(parsed.copy_with(username=None, password=None)) if parsed.userinfo else url


class VictoriaStore:
    """``TimeSeriesStore`` on a VictoriaMetrics server at ``url`` (e.g.
    ``http://127.0.0.1:8428``); see the module docstring for naming, windows and limits.

    ``host`` is the ``host`` label of every series written and the filter of every read,
    so several hosts can share one server. ``interval_seconds`` is the collection
    interval: the ``raw`` step. Every request gives up after ``timeout_seconds``; a
    server that is down, slow or answers an error raises ``StorageError``.
    """

    backend = "victoriametrics"

    def __init__(
        self,
        url: str,
        *,
        clock: Clock,
        host: str,
        timeout_seconds: float = 5.0,
        interval_seconds: float = 1.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if interval_seconds < 0.002:
            raise ValueError("interval_seconds must be at least 2 ms (the server keeps ms)")
        self._url = url.rstrip("/")
        self._clock = clock
        self._host = host
        self._timeout = timeout_seconds
        self._interval = float(interval_seconds)
        self._headers = dict(headers or {})
        """Sent with every request (a forwarder's ``Authorization``); never logged."""
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()
        self._ticks_written = 0
        self._samples_written = 0
        self._last_write_error: str | None = None
        self._size_bytes: int | None = None
        self._retention_seconds = math.inf
        self._facts_checked = -math.inf
        self._silent_hosts: dict[str, float | None] = {}
        """``hosts()``: last seen of hosts silent for ``HOSTS_RECENT_SECONDS`` (see the
        module doc); a host that reports again leaves it."""

    @property
    def host(self) -> str:
        """The ``host`` label written, and read when a query names no host."""
        return self._host

    # ------------------------------------------------------------------ lifecycle
    def open(self) -> None:
        """Build the HTTP client and read the server's retention and size. A server that
        is down is not an error here: writes fail (and are kept by the agent) until it is
        back, and health reports it."""
        self._client = httpx.Client(
            base_url=self._url, timeout=self._timeout, headers=self._headers
        )
        if not self._refresh_facts():
            log.warning("victoriametrics at %s is not reachable yet", self.display_url)

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    @property
    def display_url(self) -> str:
        """The server URL without credentials (for stats, health and logs)."""
        return _strip_userinfo(self._url)

    def _http(self) -> httpx.Client:
        client = self._client
        if client is None:
            raise StorageError("victoriametrics store is not open")
        return client

    def _request(
        self,
        action: str,
        method: str,
        path: str,
        *,
        params: tuple[tuple[str, str], ...] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        try:
            response = self._http().request(method, path, params=params, content=content)
        except httpx.HTTPError as exc:
            raise StorageError(
                f"{action}: victoriametrics at {self.display_url}: {type(exc).__name__}: {exc}"
            ) from exc
        if response.status_code >= 300:
            raise StorageError(
                f"{action}: victoriametrics answered HTTP {response.status_code}: "
                f"{response.text.strip()[:300]}"
            )
        return response

    def _json(self, action: str, path: str, params: tuple[tuple[str, str], ...]) -> Any:
        response = self._request(action, "GET", path, params=params)
        try:
            body = response.json()
        except ValueError as exc:
            raise StorageError(f"{action}: victoriametrics answered no JSON: {exc}") from exc
        if not isinstance(body, dict) or body.get("status") != "success":
            raise StorageError(f"{action}: victoriametrics answered {str(body)[:300]}")
        return body.get("data")

    # ------------------------------------------------------------------ write
    def write(self, snapshot: Snapshot) -> None:
        """One HTTP request for the whole tick; raises ``StorageError`` if it failed."""
        self.write_many((snapshot,))

    def write_many(self, snapshots: Sequence[Snapshot]) -> None:
        """Several ticks in one request (a forwarder catching up): all arrive or none
        does, like ``write``; an empty batch sends nothing."""
        body = b"".join(encode_snapshot(s, self._host) for s in snapshots)
        if not body:
            return
        try:
            self._request("write failed", "POST", "/api/v1/import/prometheus", content=body)
        except StorageError as exc:
            with self._lock:
                self._last_write_error = str(exc)[:300]
            raise
        with self._lock:
            self._ticks_written += len(snapshots)
            self._samples_written += body.count(b"\n")
            self._last_write_error = None

    # ------------------------------------------------------------------ reads
    def _stored(self, metric: str, host: str | None = None) -> list[tuple[str, Labels]]:
        """``(field, labels)`` of every series of ``metric`` for ``host`` (default this
        store's), all time."""
        prefix = _name_prefix(metric)
        who = self._host if host is None else host
        match = f"{{__name__=~{_quote(re.escape(prefix) + '.+')},{HOST_LABEL}={_quote(who)}}}"
        data = self._json(
            "series lookup failed",
            "/api/v1/series",
            (("match[]", match), ("start", ALL_TIME[0]), ("end", ALL_TIME[1])),
        )
        out: list[tuple[str, Labels]] = []
        for item in data or []:
            name = str(item.get("__name__", ""))
            if not name.startswith(prefix) or len(name) == len(prefix):
                continue
            labels = tuple(
                sorted(
                    (str(k), str(v)) for k, v in item.items() if k not in ("__name__", HOST_LABEL)
                )
            )
            out.append((name[len(prefix) :], labels))
        return out

    def series(self, metric: str, host: str | None = None) -> Sequence[Labels]:
        """Every label set of ``metric`` (for ``host``, default this store's), totals
        ``()`` first."""
        found = {labels for _field, labels in self._stored(metric, host)}
        return sorted(found, key=lambda labels: (len(labels), labels))

    def query(self, q: RangeQuery) -> SeriesResult:
        _validate(q)
        labels = tuple(sorted((label_key(k), v) for k, v in q.labels))
        host = self._host if q.host is None else q.host
        stored = self._stored(q.metric, host)
        if not stored:
            if q.host is not None:
                raise QueryError(
                    "host", f"no data stored for metric {q.metric!r} of host {q.host!r}"
                )
            raise QueryError("metric", f"no data stored for metric {q.metric!r}")
        fields = sorted({f for f, group in stored if group == labels})
        if not fields:
            shown = ",".join(f"{k}={v}" for k, v in labels) or "totals"
            raise QueryError("labels", f"no series {shown!r} stored for metric {q.metric!r}")
        # Keys of the metric's other groups must be absent (``key=""``), so the totals
        # are not mixed with ``device=sda`` and one device with another label set.
        absent = sorted({k for _f, group in stored for k, _v in group} - {k for k, _ in labels})
        prefix = _name_prefix(q.metric)
        names = "|".join(re.escape(f) for f in fields)
        matchers = [
            f"__name__=~{_quote(re.escape(prefix) + '(?:' + names + ')')}",
            f"{HOST_LABEL}={_quote(host)}",
            *(f"{k}={_quote(v)}" for k, v in labels),
            *(f'{k}=""' for k in absent),
        ]
        plan = plan_query(q, self._interval)
        data = self._json(
            "query failed",
            "/api/v1/query_range",
            (
                ("query", range_expression(plan, "{" + ",".join(matchers) + "}")),
                ("start", f"{plan.t0:.3f}"),
                ("end", f"{plan.t0 + (plan.points - 1) * plan.step:.3f}"),
                ("step", f"{_ms(plan.step)}ms"),
                ("nocache", "1"),
            ),
        )
        columns: dict[str, list[float | None]] = {f: [None] * plan.points for f in fields}
        for item in (data or {}).get("result", []):
            name = str(item.get("metric", {}).get("__name__", ""))
            column = columns.get(name[len(prefix) :]) if name.startswith(prefix) else None
            if column is None:
                continue
            for ts, text in item.get("values", []):
                k = round((float(ts) - plan.t0) / plan.step)
                value = float(text)
                if 0 <= k < plan.points and value == value:
                    column[k] = value
        return SeriesResult(
            metric=q.metric,
            labels=labels,
            resolution=plan.resolution,
            agg=q.agg,
            step_seconds=plan.step,
            timestamps=[plan.t0 + k * plan.step for k in range(plan.points)],
            fields=columns,
        )

    def hosts(self) -> Sequence[HostSeen]:
        """Every host with sysmon series on the server, by name, with the time of its
        newest sample (``None`` if none is left within the retention); see the module
        docstring for the two lookups."""
        names = self._json(
            "hosts lookup failed",
            f"/api/v1/label/{HOST_LABEL}/values",
            (
                ("match[]", f"{{__name__=~{_quote(PREFIX + '.+')}}}"),
                ("start", ALL_TIME[0]),
                ("end", ALL_TIME[1]),
            ),
        )
        hosts = sorted({str(n) for n in names or [] if n})
        now = self._clock.time()
        seen = self._newest(now, HOSTS_RECENT_SECONDS, None)
        silent = [h for h in hosts if h not in seen]
        unknown = [h for h in silent if h not in self._silent_hosts]
        if unknown:
            older = self._newest(now, now - EPOCH_FLOOR, unknown)
            for h in unknown:
                self._silent_hosts[h] = older.get(h)
        for h in seen:
            self._silent_hosts.pop(h, None)
        return [HostSeen(h, seen[h] if h in seen else self._silent_hosts.get(h)) for h in hosts]

    def _newest(self, now: float, window: float, hosts: Sequence[str] | None) -> dict[str, float]:
        """Per host, the newest sample time in ``(now - window, now]``."""
        matchers = [f"__name__=~{_quote(PREFIX + '.+')}"]
        if hosts is not None:
            matchers.append(f"{HOST_LABEL}=~{_quote('|'.join(re.escape(h) for h in hosts))}")
        query = (
            f"max by ({HOST_LABEL}) (tlast_over_time({{{','.join(matchers)}}}[{_ms(window)}ms]))"
        )
        data = self._json(
            "hosts lookup failed",
            "/api/v1/query",
            (("query", query), ("time", f"{now:.3f}"), ("nocache", "1")),
        )
        out: dict[str, float] = {}
        for item in (data or {}).get("result", []):
            host = str(item.get("metric", {}).get(HOST_LABEL, ""))
            value = item.get("value") or []
            if host and len(value) == 2:
                out[host] = float(value[1])
        return out

    def query_processes(self, at: float) -> tuple[float, Sequence[Mapping[str, object]]] | None:
        """Always ``None``: VictoriaMetrics stores numbers, not process tables."""
        return None

    # ------------------------------------------------------------------ upkeep, health
    def maintain(self, now: float) -> None:
        """Retention and downsampling are the server's; this only re-reads its data size
        and retention (``/metrics``) for ``stats`` and ``capabilities``, at most once a
        minute. Never raises: a failed read keeps what was known."""
        if self._clock.monotonic() - self._facts_checked >= FACTS_REFRESH_SECONDS:
            self._refresh_facts()

    def _refresh_facts(self) -> bool:
        self._facts_checked = self._clock.monotonic()
        try:
            text = self._request("server facts lookup failed", "GET", "/metrics").text
        except StorageError as exc:
            log.debug("victoriametrics facts not refreshed: %s", exc)
            return False
        facts = server_facts(text.splitlines())
        if facts.size_bytes is not None:
            self._size_bytes = facts.size_bytes
        if facts.retention_seconds is not None:
            self._retention_seconds = facts.retention_seconds
        return True

    def capabilities(self) -> Capabilities:
        """One native step, the collection interval (the write interval): 1m/5m/1h are
        aggregated by the server at query time. Retention is the server's
        ``-retentionPeriod`` as read by ``open``/``maintain`` (infinite until known).
        No process tables. No request is made."""
        return Capabilities(
            backend=self.backend,
            resolutions=(NativeResolution("raw", self._interval, self._retention_seconds),),
            process_tables=False,
            writable=True,
        )

    def ping(self) -> bool:
        """True when ``/health`` answers ``OK``; never raises."""
        try:
            response = self._http().get("/health")
        except (httpx.HTTPError, StorageError):
            return False
        return response.status_code == 200 and response.text.strip() == "OK"

    def stats(self) -> StoreStats:
        """No request (the agent calls this every tick): what this process wrote, and the
        server's data size as of the last ``maintain``."""
        with self._lock:
            rows = {"ticks_written": self._ticks_written, "samples_written": self._samples_written}
            error = self._last_write_error
        return StoreStats(
            backend=self.backend,
            path=self.display_url,
            size_bytes=self._size_bytes,
            rows=rows,
            pending_writes=0,
            last_write_error=error,
        )


@dataclass(frozen=True, slots=True)
class ServerFacts:
    size_bytes: int | None
    retention_seconds: float | None


_RETENTION_FLAG = re.compile(r'^flag\{name="retentionPeriod", value="([^"]*)"')
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|y|w|d|h|m|s)")
_DURATION_UNIT = {
    "ms": 0.001,
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86_400,
    "w": 604_800,
    "y": 31_536_000,
}
_VM_MONTH_SECONDS = 31 * 86_400.0


def retention_period_seconds(value: str) -> float | None:
    """VictoriaMetrics' ``-retentionPeriod`` in seconds: a bare number counts months of
    31 days (its rule), else a duration like ``100y``, ``2w``, ``1y6d``; None if
    unreadable."""
    try:
        return float(value) * _VM_MONTH_SECONDS
    except ValueError:
        pass
    parts = _DURATION_PART.findall(value.strip().lower())
    if not parts or "".join(n + u for n, u in parts) != value.strip().lower():
        return None
    return sum(float(n) * _DURATION_UNIT[u] for n, u in parts)


def server_facts(lines: Iterable[str]) -> ServerFacts:
    """The data size (sum of ``vm_data_size_bytes``) and the retention flag from a
    ``/metrics`` page; None where absent."""
    size: int | None = None
    retention: float | None = None
    for line in lines:
        if line.startswith("vm_data_size_bytes{"):
            try:
                size = (size or 0) + int(float(line.rsplit(" ", 1)[1]))
            except (IndexError, ValueError):
                continue
        elif (found := _RETENTION_FLAG.match(line)) is not None:
            retention = retention_period_seconds(found.group(1))
    return ServerFacts(size, retention)


def _validate(q: RangeQuery) -> None:
    """The same checks, parameter names and messages as the SQLite store."""
    if q.agg not in _AGG_FN:
        raise QueryError("agg", f"agg must be mean, min or max, not {q.agg!r}")
    if not 1 <= q.max_points <= MAX_POINTS_LIMIT:
        raise QueryError("max_points", f"max_points must be 1..{MAX_POINTS_LIMIT}")
    if not (math.isfinite(q.start) and math.isfinite(q.end)):
        raise QueryError("start", "start and end must be finite epoch seconds")
    if q.end < q.start:
        raise QueryError("end", "end must not be before start")
    if q.start < 0:
        raise QueryError("start", "start must not be before 1970-01-01 (epoch 0)")
