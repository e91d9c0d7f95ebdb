"""A ``TimeSeriesStore`` on InfluxDB: line protocol over HTTP, reads through InfluxQL.

What was verified against which server (``tests/storage/test_influx*.py``,
``tests/storage/test_contract_influx.py``):

* **InfluxDB 1.6.7** (Debian's ``influxdb``), ``api: v1``: writes (``/write``), every
  read (``/query``: raw and grouped ranges, label sets, retention), the shared store
  contract, escaping of odd label values, partial-write handling, ``/ping``.
* **VictoriaMetrics 1.79.5** (Debian's ``victoria-metrics``), ``api: v2``: the write
  path only (``/api/v2/write?org=&bucket=&precision=ns`` with ``Authorization: Token``),
  checked by reading back what it stored (``/api/v1/export``). VictoriaMetrics has no
  InfluxQL, so reads against it are not possible with this store (use ``VictoriaStore``).
* **No InfluxDB 2 server was reached.** The v2 write request is the one InfluxDB 2
  documents (and VictoriaMetrics accepted); reads on InfluxDB 2 go to its 1.x
  compatibility ``/query`` endpoint with ``db=<bucket>``, which needs a DBRP mapping for
  the bucket (InfluxDB 2 creates a virtual one, database = bucket name, for buckets
  made since 2.1; else ``influx v1 dbrp create``). The InfluxQL used is the 1.x subset
  InfluxDB 2 documents; it was run on 1.6.7 only.

Schema (the spec's): measurement ``system_metrics``; tags ``host`` (the store's, whatever
a sample says), ``metric_type`` (the collector, e.g. ``cpu``) and the sample's labels
(``core``, ``device``, ``mount``, ``interface``...); one line per ``(metric, labels)``
group holding every field of that group (``percent``, ``load_1``...); nanosecond
timestamps. A tick's timestamp becomes nanoseconds through its decimal repr
(``1700000000.004`` -> ``1700000000004000000`` exactly, not float rounding).

Fields declared ``integer`` by the collectors (``sysmon.catalog``: bytes, counts) are
written as integers (``123i``), everything else as floats. InfluxDB fixes a field's type
per measurement (per shard), so a name is an integer only if no metric declares it as a
float (``integer_field_names``). Line protocol cannot carry NaN or +-Inf: such samples
are left out and counted (``samples_skipped``); NaN means "absent" in sysmon anyway.

Escaping: keys and tag values escape ``,``, ``=`` and space with a backslash. InfluxDB
1.x keeps a backslash before any other character literally and VictoriaMetrics reads
``\\\\`` as one backslash, so a backslash that ends a value or precedes ``\\``, ``,``,
``=`` or space has no spelling both read alike: it is stored as U+29F5 (REVERSE
SOLIDUS OPERATOR, a look-alike). Line protocol cannot hold a newline in a tag, nor an
empty tag value: newlines become spaces and an empty label is not written (no tag = no
label).
The same rewriting is applied to the labels of a query, so a label reads back under
the value ``series`` lists.

Writes: one ``POST`` per tick (``write_many``: several). ``api: v2`` ->
``/api/v2/write?org=&bucket=&precision=ns``; ``api: v1`` -> ``/write?db=&precision=ns``
(InfluxDB 1.6 has no ``/api/v2/write``; that came in 1.8). A token is sent as
``Authorization: Token <token>`` (InfluxDB 2, 1.8+, VictoriaMetrics ignores it). A
write is stored whole (204) or raises ``StorageError`` and the agent retries it, except
a *partial write*: the server stored every other point and refused some for good (a
field type conflict, a point outside the retention policy, a reserved key like
``time``). Retrying cannot change that answer, so it is logged, counted
(``lines_rejected``: the server reports dropped points, one per line) and shown as
``last_write_error``, not raised. A retried tick rewrites the same points (same series
and timestamp), which InfluxDB overwrites.
``api: v1`` creates the database on ``open`` (``CREATE DATABASE`` is idempotent; a
server that refuses it, for lack of rights, is only logged).

Reads: InfluxQL on ``/query`` (1.x, or InfluxDB 2's compatibility endpoint), with the
same grid as the other stores (``sysmon.storage.victoria.plan_query``): grid points
``t0, t0 + step, ...``, bucket ``[t - lead, t - lead + step)``, where ``lead`` is half
the collection interval for raw and 0 for rollups. That is
``GROUP BY time(step, offset) fill(none)`` with the offset putting bucket starts at
``t - lead``; raw reads take ``last()`` (the later tick in a slot wins), others
``mean``/``min``/``max``. A label set is selected exactly: keys of the metric's other
label sets must be absent (``"device" = ''``). Which label sets and fields exist comes
from ``SELECT last(*) ... GROUP BY *`` for this host and metric (one point per series).
Hosts: reads filter on ``RangeQuery.host`` (default the store's own ``host``);
``hosts()`` is ``SHOW TAG VALUES WITH KEY = "host"`` and each host's newest point
(``SELECT * ... GROUP BY "host" ORDER BY time DESC LIMIT 1``). A host that stopped has
gaps after its last point (``fill(none)``), never repeated values.
Retention: the default retention policy's duration (``SHOW RETENTION POLICIES``),
infinite until known or when ``0s``. Process tables are not kept.

Threads: one ``httpx.Client`` (thread-safe pool) serves the writer and the API's worker
threads; counters live under a lock.
"""

from __future__ import annotations

import logging
import math
import os
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import httpx

from sysmon.clock import Clock
from sysmon.errors import ConfigError, QueryError, StorageError
from sysmon.models import Labels, Snapshot
from sysmon.storage.base import (
    Capabilities,
    HostSeen,
    NativeResolution,
    RangeQuery,
    SeriesResult,
    StoreStats,
)
from sysmon.storage.victoria import MAX_POINTS_LIMIT, plan_query

if TYPE_CHECKING:
    from sysmon.config import Settings

log = logging.getLogger(__name__)

MEASUREMENT = "system_metrics"
HOST_TAG = "host"
METRIC_TAG = "metric_type"
FACTS_REFRESH_SECONDS = 60.0
"""``maintain`` re-reads the retention policy at most this often."""
INT64_MAX = 2**63 - 1
ApiVersion = Literal["v1", "v2"]
_NS = 1_000_000_000
_AGG_FN = {"mean": "mean", "min": "min", "max": "max"}
_AMBIGUOUS_BACKSLASH = re.compile(r"\\(?=[\\,= ]|$)")
_KEY_SPECIAL = re.compile(r"([,= ])")
_DROPPED = re.compile(r"dropped=(\d+)")
_GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s)")
_GO_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


# ---------------------------------------------------------------------- line protocol
def label_text(text: str) -> str:
    """A key or tag value as it is stored: newlines become spaces and a backslash no
    server reads alike (see the module docstring) becomes U+29F5."""
    text = text.replace("\r\n", " ").replace("\n", " ").replace("\r", " ")
    return _AMBIGUOUS_BACKSLASH.sub("\u29f5", text)


def stored_labels(labels: Iterable[tuple[str, str]]) -> Labels:
    """``labels`` as stored: rewritten by ``label_text``, empty values (no tag) and the
    store's own tags left out, sorted."""
    out = {
        label_text(k): label_text(v)
        for k, v in labels
        if k and v and label_text(k) not in (HOST_TAG, METRIC_TAG)
    }
    return tuple(sorted(out.items()))


def _escape(text: str) -> str:
    """Escape a (rewritten) key or tag value: ``,``, ``=`` and space."""
    return _KEY_SPECIAL.sub(r"\\\1", text)


def _escape_measurement(text: str) -> str:
    return text.replace(",", "\\,").replace(" ", "\\ ")


def timestamp_ns(seconds: float) -> int:
    """Epoch seconds as integer nanoseconds, from the shortest decimal repr (exact for
    what a person would write: ``1700000000.004`` -> ``...004000000``)."""
    return int((Decimal(repr(float(seconds))) * _NS).to_integral_value())


def integer_field_names(
    integer_fields: Mapping[str, Iterable[str]],
    catalog_fields: Mapping[str, Iterable[str]] | None = None,
) -> frozenset[str]:
    """Field names written as integers: declared ``integer`` by some metric and by no
    metric declared a float (``catalog_fields``: every field per metric), because
    InfluxDB fixes a field's type for the whole measurement."""
    integers = {name for names in integer_fields.values() for name in names}
    if catalog_fields is not None:
        floats = {
            name
            for metric, names in catalog_fields.items()
            for name in names
            if name not in set(integer_fields.get(metric, ()))
        }
        integers -= floats
    return frozenset(integers)


@dataclass(slots=True)
class Encoded:
    """One request body and what went into it."""

    body: bytes = b""
    lines: int = 0
    fields: int = 0
    skipped: int = 0


def encode_snapshots(
    snapshots: Iterable[Snapshot], host: str, integer_fields: frozenset[str] = frozenset()
) -> Encoded:
    """The ticks as line protocol: one line per ``(metric, labels)`` group and tick,
    tags sorted by key, fields in the order the collector emitted them."""
    out = Encoded()
    lines: list[str] = []
    host_tag = label_text(host)
    for snapshot in snapshots:
        ts = timestamp_ns(snapshot.timestamp)
        groups: dict[tuple[str, Labels], dict[str, str]] = {}
        for sample in snapshot.samples():
            text = _field_value(float(sample.value), sample.field in integer_fields)
            if text is None:
                out.skipped += 1
                continue
            key = (sample.metric, stored_labels(sample.labels))
            groups.setdefault(key, {})[label_text(sample.field)] = text
        for (metric, labels), fields in groups.items():
            tags = dict(labels)
            tags[HOST_TAG] = host_tag
            tags[METRIC_TAG] = label_text(metric)
            tag_text = ",".join(f"{_escape(k)}={_escape(v)}" for k, v in sorted(tags.items()) if v)
            field_text = ",".join(f"{_escape(k)}={v}" for k, v in fields.items())
            lines.append(f"{_escape_measurement(MEASUREMENT)},{tag_text} {field_text} {ts}")
            out.fields += len(fields)
    out.lines = len(lines)
    out.body = ("\n".join(lines) + "\n").encode() if lines else b""
    return out


def _field_value(value: float, integer: bool) -> str | None:
    """The line-protocol value, or None when it cannot be written (NaN, +-Inf, an
    integer beyond int64)."""
    if not math.isfinite(value):
        return None
    if integer:
        whole = round(value)
        return f"{whole}i" if -INT64_MAX - 1 <= whole <= INT64_MAX else None
    return repr(float(value))  # shortest repr: parses back to the same float64


# ---------------------------------------------------------------------- InfluxQL
def quote_ident(name: str) -> str:
    """An InfluxQL identifier: ``"name"`` with ``\\`` and ``"`` escaped."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_string(value: str) -> str:
    """An InfluxQL string literal: ``'value'`` with ``\\`` and ``'`` escaped."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def parse_go_duration(text: str) -> float | None:
    """A Go duration (``168h0m0s``, ``0s``) in seconds; None if unreadable."""
    text = text.strip()
    parts = _GO_DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(n) * _GO_UNIT[u] for n, u in parts)


def _strip_userinfo(url: str) -> str:
    parsed = httpx.URL(url)
    return str(parsed.copy_with(username=None, password=None)) if parsed.userinfo else url


class InfluxStore:
    """``TimeSeriesStore`` on an InfluxDB server at ``url`` (``http://127.0.0.1:8086``);
    see the module docstring for the schema, the APIs and what was verified where.

    ``bucket`` is the InfluxDB 2 bucket (``api="v2"``, with ``org``) or the 1.x
    database (``api="v1"``); reads always ask ``/query?db=<bucket>``. ``host`` is the
    ``host`` tag of every line written and the filter of every read. ``token`` (never
    logged) goes in ``Authorization: Token``. ``integer_fields``: field names written
    as integers (``integer_field_names``). ``interval_seconds`` is the raw step.
    """

    backend = "influxdb"

    def __init__(
        self,
        url: str,
        *,
        clock: Clock,
        host: str,
        bucket: str,
        org: str | None = None,
        api: ApiVersion = "v2",
        token: str | None = None,
        interval_seconds: float = 1.0,
        timeout_seconds: float = 5.0,
        integer_fields: frozenset[str] = frozenset(),
    ) -> None:
        if api not in ("v1", "v2"):
            raise ValueError(f"api must be v1 or v2, not {api!r}")
        if api == "v2" and not org:
            raise ValueError("api v2 needs an org")
        if interval_seconds <= 0:
            raise ValueError("interval_seconds must be positive")
        self._url = url.rstrip("/")
        self._clock = clock
        self._host = host
        self._bucket = bucket
        self._org = org
        self._api: ApiVersion = api
        self._headers = {"Authorization": f"Token {token}"} if token else {}
        self._interval = float(interval_seconds)
        self._timeout = timeout_seconds
        self._integer_fields = integer_fields
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()
        self._ticks_written = 0
        self._samples_written = 0
        self._samples_skipped = 0
        self._lines_rejected = 0
        self._last_write_error: str | None = None
        self._retention_seconds = math.inf
        self._facts_checked = -math.inf

    # ------------------------------------------------------------------ lifecycle
    def open(self) -> None:
        """Build the HTTP client; with ``api: v1`` create the database if it is missing;
        read the retention policy. A server that is down is not an error here: writes
        fail (and are kept by the agent) until it is back, and health reports it."""
        self._client = httpx.Client(
            base_url=self._url, timeout=self._timeout, headers=self._headers
        )
        if self._api == "v1":
            try:
                self._influxql(
                    "create database failed",
                    f"CREATE DATABASE {quote_ident(self._bucket)}",
                    post=True,
                )
            except StorageError as exc:
                log.warning("influxdb database %r not created: %s", self._bucket, exc)
        if not self._refresh_facts():
            log.warning("influxdb at %s is not reachable yet", self.display_url)

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    @property
    def bucket(self) -> str:
        """The bucket (api v2) or database (api v1) written and queried."""
        return self._bucket

    @property
    def integer_fields(self) -> frozenset[str]:
        """Field names this store writes as integers (``123i``)."""
        return self._integer_fields

    @property
    def host(self) -> str:
        """The ``host`` tag written, and read when a query names no host."""
        return self._host

    @property
    def display_url(self) -> str:
        """The server URL without credentials (for stats, health and logs)."""
        return _strip_userinfo(self._url)

    def _http(self) -> httpx.Client:
        client = self._client
        if client is None:
            raise StorageError("influxdb store is not open")
        return client

    def _send(
        self,
        action: str,
        method: str,
        path: str,
        *,
        params: Sequence[tuple[str, str]] = (),
        content: bytes | None = None,
        data: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        try:
            return self._http().request(
                method, path, params=list(params), content=content, data=data
            )
        except httpx.HTTPError as exc:
            raise StorageError(
                f"{action}: influxdb at {self.display_url}: {type(exc).__name__}: {exc}"
            ) from exc

    # ------------------------------------------------------------------ write
    def write(self, snapshot: Snapshot) -> None:
        """One HTTP request for the whole tick; raises ``StorageError`` if it failed (a
        partial write does not raise: see the module docstring)."""
        self.write_many((snapshot,))

    def write_many(self, snapshots: Sequence[Snapshot]) -> None:
        """Several ticks in one request (a forwarder catching up): stored whole, or a
        ``StorageError``; an empty batch sends nothing."""
        encoded = encode_snapshots(snapshots, self._host, self._integer_fields)
        if not encoded.body:
            with self._lock:
                self._samples_skipped += encoded.skipped
            return
        if self._api == "v2":
            path = "/api/v2/write"
            params = [("org", self._org or ""), ("bucket", self._bucket), ("precision", "ns")]
        else:
            path = "/write"
            params = [("db", self._bucket), ("precision", "ns")]
        try:
            response = self._send("write failed", "POST", path, params=params, content=encoded.body)
        except StorageError as exc:
            self._write_failed(str(exc))
            raise
        rejected = 0
        error: str | None = None
        if response.status_code >= 300:
            text = _error_text(response)
            if "partial write" not in text:
                message = f"write failed: influxdb answered HTTP {response.status_code}: {text}"
                self._write_failed(message)
                raise StorageError(message)
            found = _DROPPED.search(text)
            rejected = int(found.group(1)) if found else 0
            error = f"partial write (HTTP {response.status_code}): {text}"[:300]
            log.warning("influxdb refused part of a write for good (not retried): %s", error)
        with self._lock:
            self._ticks_written += len(snapshots)
            self._samples_written += encoded.fields
            self._samples_skipped += encoded.skipped
            self._lines_rejected += rejected
            self._last_write_error = error

    def _write_failed(self, message: str) -> None:
        with self._lock:
            self._last_write_error = message[:300]

    # ------------------------------------------------------------------ reads
    def _influxql(self, action: str, statement: str, *, post: bool = False) -> list[dict[str, Any]]:
        """The ``series`` of the one statement's result (``[]`` when it has none)."""
        params = [("db", self._bucket), ("epoch", "ns")]
        if post:
            response = self._send(action, "POST", "/query", params=params, data={"q": statement})
        else:
            response = self._send(action, "GET", "/query", params=[*params, ("q", statement)])
        if response.status_code >= 300:
            raise StorageError(
                f"{action}: influxdb answered HTTP {response.status_code}: {_error_text(response)}"
            )
        try:
            body = response.json()
        except ValueError as exc:
            raise StorageError(f"{action}: influxdb answered no JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise StorageError(f"{action}: influxdb answered {str(body)[:300]}")
        if body.get("error"):
            raise StorageError(f"{action}: influxdb: {str(body['error'])[:300]}")
        results = body.get("results") or [{}]
        first = results[0] if isinstance(results[0], dict) else {}
        if first.get("error"):
            raise StorageError(f"{action}: influxdb: {str(first['error'])[:300]}")
        series = first.get("series") or []
        return [s for s in series if isinstance(s, dict)]

    def _host_metric(self, metric: str, host: str | None = None) -> str:
        who = self._host if host is None else host
        return (
            f"{quote_ident(HOST_TAG)} = {quote_string(label_text(who))} AND "
            f"{quote_ident(METRIC_TAG)} = {quote_string(label_text(metric))}"
        )

    def _stored(self, metric: str, host: str | None = None) -> dict[Labels, set[str]]:
        """Every label set of ``metric`` for ``host`` (default this store's), all time,
        with its fields."""
        series = self._influxql(
            "series lookup failed",
            f"SELECT last(*) FROM {quote_ident(MEASUREMENT)} "
            f"WHERE {self._host_metric(metric, host)} GROUP BY *",
        )
        out: dict[Labels, set[str]] = {}
        for item in series:
            tags = item.get("tags") or {}
            labels = tuple(
                sorted(
                    (str(k), str(v))
                    for k, v in tags.items()
                    if v and k not in (HOST_TAG, METRIC_TAG)
                )
            )
            columns = item.get("columns") or []
            values = (item.get("values") or [[]])[0]
            fields = out.setdefault(labels, set())
            for column, value in zip(columns, values, strict=False):
                name = str(column)
                if name.startswith("last_") and value is not None:
                    fields.add(name[len("last_") :])
        return {labels: fields for labels, fields in out.items() if fields}

    def series(self, metric: str, host: str | None = None) -> Sequence[Labels]:
        """Every label set of ``metric`` (for ``host``, default this store's), totals
        ``()`` first."""
        return sorted(self._stored(metric, host), key=lambda labels: (len(labels), labels))

    def query(self, q: RangeQuery) -> SeriesResult:
        _validate(q)
        labels = stored_labels(q.labels)
        stored = self._stored(q.metric, q.host)
        if not stored:
            if q.host is not None:
                raise QueryError(
                    "host", f"no data stored for metric {q.metric!r} of host {q.host!r}"
                )
            raise QueryError("metric", f"no data stored for metric {q.metric!r}")
        group = stored.get(labels)
        if not group:
            shown = ",".join(f"{k}={v}" for k, v in labels) or "totals"
            raise QueryError("labels", f"no series {shown!r} stored for metric {q.metric!r}")
        fields = sorted(group)
        absent = sorted({k for other in stored for k, _v in other} - {k for k, _ in labels})
        plan = plan_query(q, self._interval)
        step_ns = timestamp_ns(plan.step)
        start_ns = timestamp_ns(plan.t0) - timestamp_ns(plan.lead)
        end_ns = start_ns + plan.points * step_ns
        raw = plan.resolution == "raw" and plan.step == self._interval
        fn = "last" if raw else _AGG_FN[q.agg]
        where = [
            self._host_metric(q.metric, q.host),
            *(f"{quote_ident(k)} = {quote_string(v)}" for k, v in labels),
            *(f"{quote_ident(k)} = ''" for k in absent),
            f"time >= {start_ns}",
            f"time < {end_ns}",
        ]
        statement = (
            "SELECT "
            + ", ".join(f"{fn}({quote_ident(f)})" for f in fields)
            + f" FROM {quote_ident(MEASUREMENT)} WHERE "
            + " AND ".join(where)
            + f" GROUP BY time({step_ns}ns, {start_ns % step_ns}ns) fill(none)"
        )
        columns: dict[str, list[float | None]] = {f: [None] * plan.points for f in fields}
        for item in self._influxql("query failed", statement):
            for row in item.get("values") or []:
                if not row:
                    continue
                k, rest = divmod(int(row[0]) - start_ns, step_ns)
                if rest or not 0 <= k < plan.points:
                    continue
                for name, value in zip(fields, row[1:], strict=False):
                    if value is not None:
                        columns[name][k] = float(value)
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
        """Every ``host`` tag value with the time of its newest point (a raw newest-first
        read: ``last(*)`` over several fields answers time 0)."""
        listed = self._influxql(
            "hosts lookup failed",
            f"SHOW TAG VALUES FROM {quote_ident(MEASUREMENT)} WITH KEY = {quote_ident(HOST_TAG)}",
        )
        names: set[str] = set()
        for item in listed:
            for row in item.get("values") or []:
                if len(row) == 2 and row[1]:
                    names.add(str(row[1]))
        newest: dict[str, float] = {}
        if names:
            for item in self._influxql(
                "hosts lookup failed",
                f"SELECT * FROM {quote_ident(MEASUREMENT)} GROUP BY {quote_ident(HOST_TAG)} "
                "ORDER BY time DESC LIMIT 1",
            ):
                host = str((item.get("tags") or {}).get(HOST_TAG, ""))
                rows = item.get("values") or []
                if host and rows and rows[0]:
                    newest[host] = int(rows[0][0]) / _NS
        return [HostSeen(h, newest.get(h)) for h in sorted(names)]

    def query_processes(self, at: float) -> tuple[float, Sequence[Mapping[str, object]]] | None:
        """Always ``None``: process tables are not written to InfluxDB."""
        return None

    # ------------------------------------------------------------------ upkeep, health
    def maintain(self, now: float) -> None:
        """Retention is the server's; this only re-reads the default retention policy
        for ``capabilities``, at most once a minute. Never raises."""
        if self._clock.monotonic() - self._facts_checked >= FACTS_REFRESH_SECONDS:
            self._refresh_facts()

    def _refresh_facts(self) -> bool:
        self._facts_checked = self._clock.monotonic()
        try:
            series = self._influxql(
                "retention lookup failed",
                f"SHOW RETENTION POLICIES ON {quote_ident(self._bucket)}",
            )
        except StorageError as exc:
            log.debug("influxdb facts not refreshed: %s", exc)
            return False
        retention = default_retention_seconds(series)
        if retention is not None:
            self._retention_seconds = retention
        return True

    def capabilities(self) -> Capabilities:
        """One native step, the collection interval; 1m/5m/1h are aggregated by the
        server at query time. Retention: the default retention policy's (infinite until
        known). No process tables. No request is made."""
        return Capabilities(
            backend=self.backend,
            resolutions=(NativeResolution("raw", self._interval, self._retention_seconds),),
            process_tables=False,
            writable=True,
        )

    def ping(self) -> bool:
        """True when ``/ping`` answers 204 (InfluxDB 1.x and 2, VictoriaMetrics); never
        raises."""
        try:
            response = self._http().get("/ping")
        except (httpx.HTTPError, StorageError):
            return False
        return response.status_code in (200, 204)

    def stats(self) -> StoreStats:
        """No request: what this process wrote, skipped and had refused."""
        with self._lock:
            rows = {
                "ticks_written": self._ticks_written,
                "samples_written": self._samples_written,
                "samples_skipped": self._samples_skipped,
                "lines_rejected": self._lines_rejected,
            }
            error = self._last_write_error
        return StoreStats(
            backend=self.backend,
            path=self.display_url,
            size_bytes=None,
            rows=rows,
            pending_writes=0,
            last_write_error=error,
        )


def default_retention_seconds(series: Sequence[Mapping[str, Any]]) -> float | None:
    """The default policy's duration from ``SHOW RETENTION POLICIES`` (``0s`` =
    infinite); None when there is none or it is unreadable."""
    for item in series:
        columns = [str(c) for c in item.get("columns") or []]
        if "duration" not in columns or "default" not in columns:
            continue
        for row in item.get("values") or []:
            record = dict(zip(columns, row, strict=False))
            if record.get("default") is True:
                seconds = parse_go_duration(str(record.get("duration", "")))
                if seconds is None:
                    return None
                return math.inf if seconds == 0 else seconds
    return None


def _error_text(response: httpx.Response) -> str:
    """The server's error message (``{"error": ...}`` on 1.x, ``{"message": ...}`` on 2)."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300]
    if isinstance(body, dict):
        for key in ("error", "message"):
            if body.get(key):
                return str(body[key])[:300]
    return str(body)[:300]


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


# ---------------------------------------------------------------------- settings
def read_token(
    token_env: str | None, token_file: str | None, environ: Mapping[str, str] | None = None
) -> str | None:
    """The API token: the file ``token_file`` (trailing newline dropped) wins over the
    variable ``token_env``; None when neither gives one. ``ConfigError`` naming
    ``database.token_file`` when that file cannot be read."""
    if token_file:
        try:
            text = Path(token_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError("database.token_file", f"cannot read {token_file}: {exc}") from None
        return text.rstrip("\r\n") or None
    if token_env:
        env = os.environ if environ is None else environ
        return env.get(token_env) or None
    return None


def from_settings(settings: Settings, clock: Clock) -> InfluxStore:
    """The store ``settings.database`` describes (not opened): token from the
    environment or its file, integer fields from the collectors' catalog."""
    from sysmon.catalog import metric_catalog
    from sysmon.collectors.registry import discover

    db = settings.database
    if not db.url:
        raise ConfigError("database.url", "required with database.backend influxdb")
    if db.api == "v2" and not db.org:
        raise ConfigError("database.org", "required with database.backend influxdb and api v2")
    catalog = metric_catalog(discover(plugins=settings.collection.plugins))
    integers = integer_field_names(
        catalog.integer_fields,
        {name: [i.field for i in entry.fields] for name, entry in catalog.metrics.items()},
    )
    return InfluxStore(
        db.url,
        clock=clock,
        host=settings.agent.host_name,
        bucket=db.bucket,
        org=db.org,
        api=db.api,
        token=read_token(db.token_env, db.token_file),
        interval_seconds=settings.collection.interval_seconds,
        integer_fields=integers,
    )
