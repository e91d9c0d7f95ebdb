"""The latest tick and the service's own state as Prometheus metric families.

``HostCollector`` is a ``prometheus_client`` custom collector: it turns the tick the
server already holds (``TickFeed``'s ``LatestView``, the body of
``/api/v1/metrics/current``) into metric families. Nothing is collected per scrape: the
JSON body is parsed and the host part formatted once per tick (``Exposition``), so a
scrape formats only the service's few dozen own series (``ServiceCollector`` and the
HTTP histogram). Sample values carry no timestamp: Prometheus stamps them at scrape time,
which keeps its staleness handling working (a tick's own time, seen from a host whose
clock is off, would be rejected as too old or too far in the future).

Names follow node_exporter where one of its *gauges* means exactly what we store. Where
node_exporter exposes a counter (``_total``) and sysmon only keeps the per-second rate the
collector derived, the family is a ``sysmon_``-prefixed gauge with ``_per_second`` in its
name: a rate passed off as a counter would make ``rate()`` silently wrong. Shares in
percent become ratios (0-1), MHz becomes hertz: base units, as Prometheus expects.
node_exporter's camelCase names (``node_memory_MemTotal_bytes``, ``MemAvailable``,
``SwapTotal``, ``node_netstat_Tcp_CurrEstab``) fail ``promtool check metrics``' lint, so
those four are ``sysmon_*`` snake_case names here and the exposition lints clean.

Host metrics: every family is a gauge; ``sysmon field`` is the ``/current`` field (the
``core``/``device``/``mount``/``interface`` series become the ``cpu``/``device``/
``mountpoint``/``interface`` labels). A ``node_`` family is node_exporter's gauge of the
same name and meaning.

============================================  ==================================================
Prometheus family                             sysmon field (scale)
============================================  ==================================================
node_load1, node_load5, node_load15           cpu load_1, load_5, load_15
sysmon_cpu_usage_ratio                        cpu percent (/100)
sysmon_cpu_mode_ratio{mode}                   cpu {user,system,iowait,steal,idle}_percent (/100)
sysmon_cpu_core_usage_ratio{cpu}              cpu core=N percent (/100)
sysmon_context_switches_per_second            cpu ctx_switches_per_sec
sysmon_interrupts_per_second                  cpu interrupts_per_sec
sysmon_cpu_frequency_hertz                    cpu freq_mhz (x1e6)
sysmon_memory_total_bytes                    memory total_bytes
sysmon_memory_available_bytes                memory available_bytes
node_memory_Buffers_bytes                     memory buffers_bytes
sysmon_memory_swap_total_bytes                   memory swap_total_bytes
sysmon_memory_cached_bytes                    memory cached_bytes
sysmon_memory_used_bytes                      memory used_bytes
sysmon_memory_usage_ratio                     memory percent (/100)
sysmon_memory_swap_used_bytes                 memory swap_used_bytes
sysmon_memory_swap_usage_ratio                memory swap_percent (/100)
sysmon_memory_swap_{in,out}_bytes_per_second  memory swap_{in,out}_bytes_per_sec
sysmon_disk_read_bytes_per_second             disk device=X read_bytes_per_sec
sysmon_disk_written_bytes_per_second          disk device=X write_bytes_per_sec
sysmon_disk_reads_completed_per_second        disk device=X read_ops_per_sec
sysmon_disk_writes_completed_per_second       disk device=X write_ops_per_sec
sysmon_disk_io_busy_ratio                     disk device=X busy_percent (/100)
node_filesystem_size_bytes                    disk mount=M total_bytes
node_filesystem_avail_bytes                   disk mount=M free_bytes (f_bavail x f_frsize)
sysmon_filesystem_used_bytes                  disk mount=M used_bytes
sysmon_filesystem_usage_ratio                 disk mount=M percent (/100)
node_filesystem_files                         inodes mount=M total
node_filesystem_files_free                    inodes mount=M free
sysmon_filesystem_files_used                  inodes mount=M used
sysmon_filesystem_files_usage_ratio           inodes mount=M percent (/100)
sysmon_network_receive_bytes_per_second       network interface=I bytes_recv_per_sec
sysmon_network_transmit_bytes_per_second      network interface=I bytes_sent_per_sec
sysmon_network_receive_packets_per_second     network interface=I packets_recv_per_sec
sysmon_network_transmit_packets_per_second    network interface=I packets_sent_per_sec
sysmon_network_receive_errs_per_second        network interface=I errin_per_sec
sysmon_network_transmit_errs_per_second       network interface=I errout_per_sec
sysmon_network_receive_drop_per_second        network interface=I dropin_per_sec
sysmon_network_transmit_drop_per_second       network interface=I dropout_per_sec
node_processes_pids                           processes count
node_processes_threads                        processes threads
node_filefd_allocated                         files allocated
node_filefd_maximum                           files max
sysmon_files_usage_ratio                      files percent (/100)
node_sockstat_sockets_used                    sockets count
sysmon_sockets_in_use{protocol}               sockets protocol=P count
sysmon_tcp_established_connections                    sockets tcp_established
node_sockstat_TCP_tw                          sockets tcp_time_wait
node_sockstat_TCP_orphan                      sockets tcp_orphan
node_tcp_connection_states{state}             sockets state=S tcp_sockets
============================================  ==================================================

What node_exporter has where we have a rate (``rate()`` of its counter is our gauge):
``node_context_switches_total``, ``node_intr_total``, ``node_vmstat_pswp{in,out}``
(pages, not bytes), ``node_disk_{read,written}_bytes_total``,
``node_disk_{reads,writes}_completed_total``, ``node_disk_io_time_seconds_total`` (the busy
ratio), ``node_network_{receive,transmit}_{bytes,packets,errs,drop}_total`` and, by mode,
``node_cpu_seconds_total`` (divided by the core count). ``sysmon_memory_cached_bytes`` is
not ``node_memory_Cached_bytes``: psutil adds ``SReclaimable``. Ratios, ``used`` values and
the host-wide CPU frequency have no node_exporter gauge.

Left out on purpose:

* The host totals of disk, network and inodes (sums over devices, interfaces or mounts,
  the busiest device's busy share, the loopback-free network sum) are not exported: PromQL derives
  them (``sum without (device) (...)``, ``max``, ``{interface!="lo"}``), and a total in
  the same family as its parts would be double counted by every ``sum``.
* Per-process rows: one series per pid and name would grow without bound (every short-
  lived process is a new series that Prometheus keeps for hours). Use
  ``/api/v1/metrics/processes`` for the top-N table.
* Nothing else is left out: a field with no row above (``pressure``'s, a plugin's, one
  added to a collector later) is exported as the gauge ``sysmon_<metric>_<field>``, with
  ``_per_sec`` spelt ``_per_second`` and a percentage (a field named ``*percent`` or
  declared in ``%``) turned into a ``_ratio`` (/100), e.g.
  ``sysmon_pressure_io_some_avg10_ratio``; a name that would end like a counter's or a
  histogram's (``_total``, ``_count``, ...) gets ``_value``. Its series label is mapped as
  above.

The service's own metrics, from the agent's status carried by each live-channel frame
(the same source as ``/api/v1/health``) and the server's own state:

====================================================  =====================================
sysmon_build_info{version}                            1 (the server's version)
sysmon_agent_connected                                1 while the live channel is up
sysmon_last_tick_timestamp_seconds                    wall time of the latest tick
sysmon_agent_ticks_total (counter)                    ticks the agent ran since it started
sysmon_agent_overruns_total (counter)                 ticks that started late (overran)
sysmon_agent_tick_lateness_seconds{stat}              p50/p99/max of recent tick lateness
sysmon_collector_duration_seconds{collector}          last collection's duration
sysmon_collector_missed_samples_total{collector}      samples missed since the agent started
sysmon_collector_last_tick_failed{collector}          1 when the latest tick has its error
sysmon_database_size_bytes                            file + WAL size (``store.stats()``)
sysmon_database_pending_writes                        ticks waiting in the agent's write
                                                      buffer (its queue depth)
sysmon_database_dropped_ticks_total (counter)         ticks dropped from a full buffer
sysmon_forward_queued_ticks{remote}                   per ``forward:`` remote: its queue
sysmon_forward_queued_bytes{remote}                   depth in ticks and bytes, the age of
sysmon_forward_oldest_queued_age_seconds{remote}      its oldest tick, consecutive failing
sysmon_forward_failing_ticks{remote}                  ticks, last acknowledged send, and
sysmon_forward_last_sent_timestamp_seconds{remote}    ticks sent and dropped since the
sysmon_forward_{sent,dropped}_ticks_total (counters)  agent started (absent: no remote)
sysmon_http_request_duration_seconds (histogram)      see ``sysmon.api.http_metrics``
====================================================  =====================================

Not exported because sysmon does not report it yet (no number is invented): samples or
rows written to the database (the agent counts written ticks but its status does not
carry the count). The forward families exist only while ``forward:`` has remotes. A
value the status lacks (no tick yet, an agent too old to report it) leaves its series
out rather than reporting 0.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import CollectorRegistry

from sysmon import __version__
from sysmon.api.feed import LatestView
from sysmon.api.http_metrics import RequestLatencyMiddleware, request_histogram
from sysmon.security.ratelimit import RouteTemplates

TOTAL = "total"
"""The key of the unlabelled series in a ``/current`` metric (``serialize.group_samples``)."""

LABEL_NAMES: dict[str, str] = {
    "core": "cpu",
    "device": "device",
    "mount": "mountpoint",
    "interface": "interface",
}
"""sysmon series label -> Prometheus label (node_exporter's, except ``interface``, which
node_exporter calls ``device``: kept distinct from disks' ``device`` on purpose)."""


@dataclass(frozen=True, slots=True)
class Family:
    """One Prometheus family and the sysmon fields it is built from."""

    name: str
    help: str
    metric: str
    series: str
    """``total`` or the sysmon label key (``core``, ``device``, ``mount``, ``interface``)."""
    fields: tuple[tuple[str, str], ...]
    """(sysmon field, value of ``extra_label``) pairs; one pair when there is no extra label."""
    scale: float = 1.0
    extra_label: str | None = None

    @property
    def label_names(self) -> list[str]:
        names = [] if self.series == TOTAL else [LABEL_NAMES.get(self.series, self.series)]
        return names + ([self.extra_label] if self.extra_label else [])


def _one(name: str, metric: str, series: str, source: str, help: str, scale: float = 1.0) -> Family:
    return Family(name, help, metric, series, ((source, ""),), scale)


PERCENT = 0.01
FAMILIES: tuple[Family, ...] = (
    _one("node_load1", "cpu", TOTAL, "load_1", "1m load average."),
    _one("node_load5", "cpu", TOTAL, "load_5", "5m load average."),
    _one("node_load15", "cpu", TOTAL, "load_15", "15m load average."),
    _one("sysmon_cpu_usage_ratio", "cpu", TOTAL, "percent",
         "Non-idle CPU time share over all cores (1 = every core busy).", PERCENT),
    Family("sysmon_cpu_mode_ratio", "CPU time share by mode over all cores (user excludes "
           "nice; iowait and steal only on Linux).", "cpu", TOTAL,
           (("user_percent", "user"), ("system_percent", "system"),
            ("iowait_percent", "iowait"), ("steal_percent", "steal"), ("idle_percent", "idle")),
           PERCENT, "mode"),
    _one("sysmon_cpu_core_usage_ratio", "cpu", "core", "percent",
         "Non-idle CPU time share of one core.", PERCENT),
    _one("sysmon_context_switches_per_second", "cpu", TOTAL, "ctx_switches_per_sec",
         "Context switches per second over the last collection interval."),
    _one("sysmon_interrupts_per_second", "cpu", TOTAL, "interrupts_per_sec",
         "Hardware interrupts per second over the last collection interval."),
    _one("sysmon_cpu_frequency_hertz", "cpu", TOTAL, "freq_mhz",
         "Current CPU frequency (psutil's host-wide value; absent in most VMs).", 1e6),
    _one("sysmon_memory_total_bytes", "memory", TOTAL, "total_bytes",
         "Total usable memory (MemTotal; node_exporter: node_memory_MemTotal_bytes)."),
    _one("sysmon_memory_available_bytes", "memory", TOTAL, "available_bytes",
         "Memory available without swapping (MemAvailable; node_exporter: "
         "node_memory_MemAvailable_bytes)."),
    _one("node_memory_Buffers_bytes", "memory", TOTAL, "buffers_bytes",
         "Memory information field Buffers_bytes."),
    _one("sysmon_memory_swap_total_bytes", "memory", TOTAL, "swap_total_bytes",
         "Total swap (SwapTotal; node_exporter: node_memory_SwapTotal_bytes)."),
    _one("sysmon_memory_cached_bytes", "memory", TOTAL, "cached_bytes",
         "Page cache (psutil: Cached + SReclaimable on Linux)."),
    _one("sysmon_memory_used_bytes", "memory", TOTAL, "used_bytes",
         "Used memory, psutil's definition (total - free - buffers - cached on Linux)."),
    _one("sysmon_memory_usage_ratio", "memory", TOTAL, "percent",
         "(total - available) / total.", PERCENT),
    _one("sysmon_memory_swap_used_bytes", "memory", TOTAL, "swap_used_bytes", "Swap in use."),
    _one("sysmon_memory_swap_usage_ratio", "memory", TOTAL, "swap_percent",
         "Swap in use / swap size (0 without swap).", PERCENT),
    _one("sysmon_memory_swap_in_bytes_per_second", "memory", TOTAL, "swap_in_bytes_per_sec",
         "Bytes swapped in from disk per second."),
    _one("sysmon_memory_swap_out_bytes_per_second", "memory", TOTAL, "swap_out_bytes_per_sec",
         "Bytes swapped out to disk per second."),
    _one("sysmon_disk_read_bytes_per_second", "disk", "device", "read_bytes_per_sec",
         "Bytes read per second."),
    _one("sysmon_disk_written_bytes_per_second", "disk", "device", "write_bytes_per_sec",
         "Bytes written per second."),
    _one("sysmon_disk_reads_completed_per_second", "disk", "device", "read_ops_per_sec",
         "Reads completed per second."),
    _one("sysmon_disk_writes_completed_per_second", "disk", "device", "write_ops_per_sec",
         "Writes completed per second."),
    _one("sysmon_disk_io_busy_ratio", "disk", "device", "busy_percent",
         "Share of the interval the device was busy.", PERCENT),
    _one("node_filesystem_size_bytes", "disk", "mount", "total_bytes",
         "Filesystem size in bytes."),
    _one("node_filesystem_avail_bytes", "disk", "mount", "free_bytes",
         "Filesystem space available to non-root users in bytes."),
    _one("sysmon_filesystem_used_bytes", "disk", "mount", "used_bytes",
         "Filesystem space used (size - free for root)."),
    _one("sysmon_filesystem_usage_ratio", "disk", "mount", "percent",
         "used / (used + available to non-root users).", PERCENT),
    _one("sysmon_network_receive_bytes_per_second", "network", "interface",
         "bytes_recv_per_sec", "Bytes received per second."),
    _one("sysmon_network_transmit_bytes_per_second", "network", "interface",
         "bytes_sent_per_sec", "Bytes sent per second."),
    _one("sysmon_network_receive_packets_per_second", "network", "interface",
         "packets_recv_per_sec", "Packets received per second."),
    _one("sysmon_network_transmit_packets_per_second", "network", "interface",
         "packets_sent_per_sec", "Packets sent per second."),
    _one("sysmon_network_receive_errs_per_second", "network", "interface", "errin_per_sec",
         "Receive errors per second."),
    _one("sysmon_network_transmit_errs_per_second", "network", "interface", "errout_per_sec",
         "Transmit errors per second."),
    _one("sysmon_network_receive_drop_per_second", "network", "interface", "dropin_per_sec",
         "Inbound packets dropped per second."),
    _one("sysmon_network_transmit_drop_per_second", "network", "interface", "dropout_per_sec",
         "Outbound packets dropped per second."),
    _one("node_processes_pids", "processes", TOTAL, "count", "Number of PIDs"),
    _one("node_processes_threads", "processes", TOTAL, "threads", "Allocated threads in system"),
    _one("node_filesystem_files", "inodes", "mount", "total",
         "Filesystem total file nodes."),
    _one("node_filesystem_files_free", "inodes", "mount", "free",
         "Filesystem total free file nodes."),
    _one("sysmon_filesystem_files_used", "inodes", "mount", "used",
         "Filesystem file nodes in use (total - free)."),
    _one("sysmon_filesystem_files_usage_ratio", "inodes", "mount", "percent",
         "Filesystem file nodes in use / total.", PERCENT),
    _one("node_filefd_allocated", "files", TOTAL, "allocated",
         "File descriptor statistics: allocated."),
    _one("node_filefd_maximum", "files", TOTAL, "max", "File descriptor statistics: maximum."),
    _one("sysmon_files_usage_ratio", "files", TOTAL, "percent",
         "Allocated file handles / maximum.", PERCENT),
    _one("node_sockstat_sockets_used", "sockets", TOTAL, "count",
         "Number of IPv4 sockets in use."),
    _one("sysmon_sockets_in_use", "sockets", "protocol", "count",
         "Sockets in use by protocol (sockstat inuse; unix from /proc/net/protocols)."),
    _one("sysmon_tcp_established_connections", "sockets", TOTAL, "tcp_established",
         "TCP connections ESTABLISHED or CLOSE_WAIT (snmp CurrEstab; node_exporter: "
         "node_netstat_Tcp_CurrEstab)."),
    _one("node_sockstat_TCP_tw", "sockets", TOTAL, "tcp_time_wait",
         "Number of TCP sockets in state tw."),
    _one("node_sockstat_TCP_orphan", "sockets", TOTAL, "tcp_orphan",
         "Number of TCP sockets in state orphan."),
    _one("node_tcp_connection_states", "sockets", "state", "tcp_sockets",
         "Number of connection states."),
)  # fmt: skip

OMITTED: frozenset[tuple[str, str]] = frozenset(
    {("disk", TOTAL), ("network", TOTAL), ("inodes", TOTAL)}
)
"""Host totals left to PromQL (see the module doc)."""

_MAPPED: frozenset[tuple[str, str, str]] = frozenset(
    (f.metric, f.series, source) for f in FAMILIES for source, _ in f.fields
)
_INVALID = re.compile(r"[^a-zA-Z0-9_]")


def fallback_name(metric: str, source: str, percent: bool) -> str:
    """``sysmon_<metric>_<field>`` for a field with no row in ``FAMILIES``: ``_per_sec``
    spelt ``_per_second``, a percentage named as the ratio it is exported as."""
    if source.endswith("_per_sec"):
        source = source[: -len("_per_sec")] + "_per_second"
    if percent:
        source = (
            source[: -len("percent")] + "ratio" if source.endswith("percent") else f"{source}_ratio"
        )
    name = _INVALID.sub("_", f"sysmon_{metric}_{source}")
    return f"{name}_value" if name.endswith(RESERVED_SUFFIXES) else name


RESERVED_SUFFIXES = ("_total", "_count", "_sum", "_bucket", "_created", "_info")
"""What counters, histograms and summaries end in: a gauge named so would mislead (and
``promtool`` flags it), so a fallback name ending in one gets ``_value``."""


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


Describe = Callable[[str, str], tuple[str, str]]
"""(metric, field) -> (description, unit) from the collector's ``MetricInfo``; ("", "")
when the registry does not know the field."""


def host_families(metrics: Mapping[str, Any], describe: Describe | None = None) -> list[Metric]:
    """The host families of one ``/current`` ``metrics`` object (pure: the tests call it).

    ``describe`` gives a fallback family's HELP text and unit; a family without samples
    this tick is left out.
    """
    out: list[Metric] = []
    for family in FAMILIES:
        series = (metrics.get(family.metric) or {}).get(family.series) or {}
        groups = {"": series} if family.series == TOTAL else series
        gauge = GaugeMetricFamily(family.name, family.help, labels=family.label_names)
        for label_value, values in sorted(groups.items()):
            labels = [] if family.series == TOTAL else [str(label_value)]
            for source, extra in family.fields:
                value = _number((values or {}).get(source))
                if value is not None:
                    extra_labels = [extra] if family.extra_label else []
                    gauge.add_metric(labels + extra_labels, value * family.scale)
        if gauge.samples:
            out.append(gauge)
    out.extend(_fallbacks(metrics, describe or (lambda metric, source: ("", ""))))
    return out


def _fallbacks(metrics: Mapping[str, Any], describe: Describe) -> Iterator[Metric]:
    found: dict[str, tuple[GaugeMetricFamily, list[str]]] = {}
    for metric, by_series in sorted(metrics.items()):
        if not isinstance(by_series, Mapping):
            continue
        for series, groups in sorted(by_series.items()):
            if (metric, series) in OMITTED or not isinstance(groups, Mapping):
                continue
            key = str(series)
            label_names = [] if key == TOTAL else [_INVALID.sub("_", LABEL_NAMES.get(key, key))]
            items = {"": groups} if series == TOTAL else groups
            for label_value, values in sorted(items.items()):
                if not isinstance(values, Mapping):
                    continue
                for source, raw in sorted(values.items()):
                    value = _number(raw)
                    if value is None or (metric, series, source) in _MAPPED:
                        continue
                    text, unit = describe(metric, source)
                    percent = unit == "%" or source.endswith("percent")
                    name = fallback_name(metric, source, percent)
                    if name not in found:
                        help_text = f"{text or 'sysmon field'} ({metric}.{source})"
                        gauge = GaugeMetricFamily(name, help_text, labels=label_names)
                        found[name] = (gauge, label_names)
                    gauge, names = found[name]
                    if names != label_names:
                        continue  # one label set per family: the first series kind wins
                    labels = [str(label_value)] if label_names else []
                    gauge.add_metric(labels, value * PERCENT if percent else value)
    for gauge, _ in found.values():
        yield gauge


class HostCollector:
    """The host families of the latest tick: a ``prometheus_client`` collector that
    collects nothing, it reads the view the feed holds. The JSON body is parsed on the
    first scrape of each tick and the families kept for the next scrapes.

    ``state`` returns the app's state object: the feed and the collector registry exist
    only once the lifespan has started, so they are looked up at scrape time. ``collect``
    runs on the event loop (the route calls it there) and only reads references the loop
    itself swaps, so it needs no lock.
    """

    def __init__(self, state: Callable[[], Any]) -> None:
        self._state = state
        self._view: LatestView | None = None
        self._families: list[Metric] = []

    def view(self) -> LatestView | None:
        feed = getattr(self._state(), "feed", None)
        return None if feed is None else feed.get()

    def collect(self) -> Iterable[Metric]:
        view = self.view()
        if view is None:
            return []
        if view is not self._view:
            document = json.loads(view.body)
            registry = getattr(self._state(), "registry", None)
            self._families = host_families(document.get("metrics") or {}, _describer(registry))
            self._view = view
        return self._families


class ServiceCollector:
    """The service's own state, read at each scrape (a few dozen series)."""

    def __init__(self, state: Callable[[], Any]) -> None:
        self._state = state

    def collect(self) -> Iterable[Metric]:
        state = self._state()
        info = GaugeMetricFamily(
            "sysmon_build_info", "sysmon version serving these metrics.", labels=["version"]
        )
        info.add_metric([__version__], 1.0)
        yield info
        subscriber = getattr(state, "subscriber", None)
        if subscriber is not None:
            yield _gauge(
                "sysmon_agent_connected",
                "1 while the server is connected to the agent's live channel.",
                1.0 if subscriber.connected else 0.0,
            )
        feed = getattr(state, "feed", None)
        if feed is None:
            return
        view: LatestView | None = feed.get()
        if view is not None:
            yield _gauge(
                "sysmon_last_tick_timestamp_seconds",
                "Wall-clock time of the latest tick the server received.",
                view.timestamp,
            )
        yield from service_families(feed.status)


class _Fixed:
    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


EOF = b"# EOF\n"
MAX_FORMATS = 8
"""Formatted host texts kept per tick (one per negotiated format; the Accept header is
the client's, so the count is bounded)."""


class Exposition:
    """What ``GET /metrics`` answers: the host part formatted once per tick and format,
    then the per-scrape part (``registry``: the service's state and the HTTP histogram).

    Formatting, not collecting, is the cost of a scrape: prometheus_client validates and
    escapes every sample line, about 3 us each, and a host has hundreds of host lines
    (per core, device, mount, interface) that change only once per tick.
    """

    def __init__(self, state: Callable[[], Any]) -> None:
        self.host = HostCollector(state)
        self.registry = CollectorRegistry(auto_describe=False)
        """The per-scrape part (never the module-level ``REGISTRY``)."""
        self.registry.register(ServiceCollector(state))
        self._view: LatestView | None = None
        self._texts: dict[str, bytes] = {}

    def render(self, accept: str) -> tuple[bytes, str]:
        """(body, content type) for a scrape with this ``Accept`` header."""
        encoder, content_type = choose_encoder(accept)
        view = self.host.view()
        host = b""
        if view is not None:
            if view is not self._view or len(self._texts) >= MAX_FORMATS:
                self._view, self._texts = view, {}
            cached = self._texts.get(content_type)
            if cached is None:
                cached = encoder(_Fixed(list(self.host.collect()))).removesuffix(EOF)
                self._texts[content_type] = cached
            host = cached
        return host + encoder(self.registry), content_type


def _describer(registry: Any) -> Describe:
    def describe(metric: str, source: str) -> tuple[str, str]:
        if registry is None or metric not in registry:
            return "", ""
        for info in registry.get(metric).fields:
            if info.field == source:
                return str(info.description), str(info.unit)
        return "", ""

    return describe


def _gauge(name: str, help_text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, help_text, value=value)


def service_families(status: Mapping[str, Any]) -> Iterator[Metric]:
    """The agent's self-metrics from its status (``/api/v1/health``'s source). A value
    the status lacks leaves its series out: no zero stands in for "unknown"."""
    agent = status.get("agent") or {}
    ticks = _number(agent.get("ticks"))
    if ticks is not None:
        yield CounterMetricFamily(
            "sysmon_agent_ticks", "Ticks the agent ran since it started.", value=ticks
        )
    overruns = _number(agent.get("overruns"))
    if overruns is not None:
        yield CounterMetricFamily(
            "sysmon_agent_overruns",
            "Ticks that started late because the previous one overran.",
            value=overruns,
        )
    lateness = agent.get("tick_lateness_ms") or {}
    late = GaugeMetricFamily(
        "sysmon_agent_tick_lateness_seconds",
        "Lateness of recent ticks against their schedule (p50, p99, max).",
        labels=["stat"],
    )
    for stat in ("p50", "p99", "max"):
        value = _number(lateness.get(stat))
        if value is not None:
            late.add_metric([stat], value / 1000)
    if late.samples:
        yield late
    collectors: Mapping[str, Any] = status.get("collectors") or {}
    duration = GaugeMetricFamily(
        "sysmon_collector_duration_seconds",
        "How long the collector's latest collection took.",
        labels=["collector"],
    )
    missed = CounterMetricFamily(
        "sysmon_collector_missed_samples",
        "Samples the collector missed (raised, overran its deadline, still busy) since "
        "the agent started.",
        labels=["collector"],
    )
    for name, report in sorted(collectors.items()):
        ms = _number((report or {}).get("last_duration_ms"))
        if ms is not None:
            duration.add_metric([name], ms / 1000)
        total = _number((report or {}).get("missed_total"))
        if total is not None:
            missed.add_metric([name], total)
    if duration.samples:
        yield duration
    if missed.samples:
        yield missed
    names = sorted(set(collectors) | set((status.get("host") or {}).get("collectors") or []))
    if names:
        errors = status.get("errors") or {}
        failed = GaugeMetricFamily(
            "sysmon_collector_last_tick_failed",
            "1 when the collector reported an error in the latest tick.",
            labels=["collector"],
        )
        for name in names:
            failed.add_metric([name], 1.0 if name in errors else 0.0)
        yield failed
    db = status.get("database") or {}
    size = _number(db.get("size_bytes"))
    if size is not None:
        yield _gauge("sysmon_database_size_bytes", "Database file plus WAL size.", size)
    pending = _number(db.get("pending_writes"))
    if pending is not None:
        yield _gauge(
            "sysmon_database_pending_writes",
            "Ticks waiting in the agent's write buffer (its queue depth).",
            pending,
        )
    dropped = _number(db.get("dropped_ticks"))
    if dropped is not None:
        yield CounterMetricFamily(
            "sysmon_database_dropped_ticks",
            "Ticks dropped, oldest first, from a full write buffer.",
            value=dropped,
        )
    yield from forward_families(status.get("forward") or {})


FORWARD: tuple[tuple[str, str, bool, str], ...] = (
    # (key of a remote's status, family, is a counter, HELP)
    ("queued_ticks", "sysmon_forward_queued_ticks", False,
     "Ticks waiting to be sent to the remote (its queue depth)."),
    ("queued_bytes", "sysmon_forward_queued_bytes", False,
     "Bytes of the remote's on-disk queue."),
    ("oldest_queued_age_seconds", "sysmon_forward_oldest_queued_age_seconds", False,
     "Age of the oldest tick waiting for the remote."),
    ("failing_ticks", "sysmon_forward_failing_ticks", False,
     "Consecutive ticks the remote has failed for (0 while it works)."),
    ("last_sent_at", "sysmon_forward_last_sent_timestamp_seconds", False,
     "When the remote last acknowledged a batch."),
    ("sent_ticks", "sysmon_forward_sent_ticks", True,
     "Ticks the remote acknowledged since the agent started."),
    ("dropped_ticks", "sysmon_forward_dropped_ticks", True,
     "Unsent ticks dropped (queue over its age or size bound) since the agent started."),
)  # fmt: skip


def forward_families(forward: Mapping[str, Any]) -> Iterator[Metric]:
    """Per remote of ``forward:`` (``sysmon.agent.forward``), labelled ``remote``. With no
    remote configured there is no queue, and no family: nothing stands in as 0."""
    for key, name, counter, help_text in FORWARD:
        family: GaugeMetricFamily | CounterMetricFamily = (
            CounterMetricFamily(name, help_text, labels=["remote"])
            if counter
            else GaugeMetricFamily(name, help_text, labels=["remote"])
        )
        for remote, report in sorted(forward.items()):
            value = _number((report or {}).get(key))
            if value is not None:
                family.add_metric([str(remote)], value)
        if family.samples:
            yield family


def install_metrics(app: FastAPI) -> None:
    """The app's ``Exposition`` (``app.state.prometheus``, answered by ``GET /metrics``)
    and the latency middleware. Call it after every other ``add_middleware``: the
    outermost layer times what the layers inside refuse as well."""
    exposition = Exposition(lambda: app.state)
    histogram = request_histogram(exposition.registry)
    app.state.prometheus = exposition
    app.add_middleware(
        RequestLatencyMiddleware,
        histogram=histogram,
        templates=RouteTemplates(app),
    )
