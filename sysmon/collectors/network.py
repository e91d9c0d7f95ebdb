"""Network: per-interface traffic, packet, error and drop rates, plus host totals.

Every interface psutil lists gets its own samples (``interface=<name>``). The totals
leave out loopback (interfaces named in ``exclude_interfaces``, default ``["lo"]``, and
any interface the kernel flags ``loopback``): local traffic is counted twice (sent and
received) and says nothing about the host's link. The loopback flag comes from
``net_if_stats``, which costs an ioctl per interface, so it is re-read only when the set
of interface names changes.

A total is emitted only when every contributing interface has a rate this tick: a new or
reset interface makes the totals absent for one tick instead of dipping.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Iterable
from typing import ClassVar

from pydantic import Field

from sysmon.collectors.base import CollectorOptions
from sysmon.collectors.rates import RateTracker
from sysmon.collectors.registry import register
from sysmon.collectors.source import ITEM_ERRORS, SystemSource
from sysmon.models import Collected, MetricInfo, Sample

logger = logging.getLogger(__name__)

METRIC = "network"

_RATE_FIELDS = (
    ("bytes_sent_per_sec", "bytes_sent", "bytes/s", "Bytes sent"),
    ("bytes_recv_per_sec", "bytes_recv", "bytes/s", "Bytes received"),
    ("packets_sent_per_sec", "packets_sent", "packets/s", "Packets sent"),
    ("packets_recv_per_sec", "packets_recv", "packets/s", "Packets received"),
    ("errin_per_sec", "errin", "errors/s", "Receive errors"),
    ("errout_per_sec", "errout", "errors/s", "Transmit errors"),
    ("dropin_per_sec", "dropin", "packets/s", "Incoming packets dropped"),
    ("dropout_per_sec", "dropout", "packets/s", "Outgoing packets dropped"),
)


def excluded(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


@register("network")
class NetworkCollector:
    """Interface counters turned into per-second rates."""

    class Options(CollectorOptions):
        exclude_interfaces: list[str] = Field(
            default_factory=lambda: ["lo"],
            description="Interfaces left out of the totals; shell-style patterns (veth*)",
        )

    name: ClassVar[str]
    fields: ClassVar[tuple[MetricInfo, ...]] = tuple(
        MetricInfo(field, unit, desc, kind="rate", labels=("interface",))
        for field, _, unit, desc in _RATE_FIELDS
    )

    def __init__(self, source: SystemSource, options: Options) -> None:
        self._source = source
        self._options = options
        self._rates: RateTracker[tuple[str, str]] = RateTracker()
        self._known: frozenset[str] = frozenset()
        self._loopback: frozenset[str] = frozenset()

    def _refresh_loopback(self, names: frozenset[str]) -> None:
        if names == self._known:
            return
        self._known = names
        try:
            stats = self._source.net_if_stats()
        except ITEM_ERRORS as exc:
            logger.debug("net_if_stats failed", extra={"collector": "network", "error": repr(exc)})
            self._loopback = frozenset()
            self._known = frozenset()  # retry next tick
            return
        self._loopback = frozenset(n for n, s in stats.items() if "loopback" in s.flags)

    def collect(self, monotonic: float) -> Collected:
        counters = self._source.net_io_counters()
        self._refresh_loopback(frozenset(counters))
        exclude = self._options.exclude_interfaces
        rates = self._rates
        samples: list[Sample] = []
        totals: dict[str, float] = {}
        complete = {field: True for field, *_ in _RATE_FIELDS}
        any_in_totals = False
        for nic in sorted(counters):
            io = counters[nic]
            in_totals = nic not in self._loopback and not excluded(nic, exclude)
            any_in_totals |= in_totals
            labels = (("interface", nic),)
            values = [
                rates.rate((nic, attr), getattr(io, attr), monotonic)
                for _, attr, *_ in _RATE_FIELDS
            ]
            # One counter going backwards means the interface was reset: drop all of them.
            reset = any(v is None for v in values)
            for (field, *_), r in zip(_RATE_FIELDS, values, strict=True):
                if r is not None and not reset:
                    samples.append(Sample(METRIC, field, r, labels))
                    if in_totals:
                        totals[field] = totals.get(field, 0.0) + r
                elif in_totals:
                    complete[field] = False
        rates.end_tick()
        if any_in_totals:
            for field, *_ in _RATE_FIELDS:
                if complete[field] and field in totals:
                    samples.append(Sample(METRIC, field, totals[field]))
        return Collected(samples=tuple(samples))

    def close(self) -> None:
        """Nothing to release; present for the collector lifecycle."""
