"""CPU cost per tick of each collector and of the snapshot JSON, on the real host.

Not a test (pytest does not collect it): run it by hand when touching a collector,
``.venv/bin/python -m tests.collectors.bench_cost [ticks]``. Each collector is timed with
``time.thread_time`` (CPU of this thread only, so other processes do not count) over
``ticks`` consecutive ``collect`` calls with ``PsutilSource`` and the default options;
the monotonic argument advances 1 s per tick as under the scheduler, so time-based
caches refresh as they would in production. A short sleep between ticks lets the host
change a little, like real ticks would.
"""

from __future__ import annotations

import sys
import time

from sysmon.catalog import metric_catalog
from sysmon.collectors.registry import discover
from sysmon.collectors.source import PsutilSource
from sysmon.models import Collected, Snapshot
from sysmon.serialize import snapshot_document, to_json_bytes


def main(ticks: int = 300) -> None:
    registry = discover()
    integers = metric_catalog(registry).integer_fields
    source = PsutilSource()
    sections: dict[str, dict[str, object]] = {name: {} for name in registry.names()}
    collectors = registry.build(sections, source)
    cost = dict.fromkeys(collectors, 0.0)
    cost["serialize"] = 0.0
    warmup = 5
    for i in range(ticks + warmup):
        mono = 1000.0 + i
        results: dict[str, Collected] = {}
        for name, collector in collectors.items():
            t0 = time.thread_time()
            results[name] = collector.collect(mono)
            if i >= warmup:
                cost[name] += time.thread_time() - t0
        t0 = time.thread_time()
        to_json_bytes(snapshot_document(Snapshot(time.time(), results), 20, integers))
        if i >= warmup:
            cost["serialize"] += time.thread_time() - t0
        time.sleep(0.002)
    total = 0.0
    for name, seconds in cost.items():
        ms = seconds / ticks * 1000.0
        total += ms
        sys.stdout.write(f"{name:10s} {ms:7.3f} ms/tick\n")
    sys.stdout.write(f"{'total':10s} {total:7.3f} ms/tick ({ticks} ticks)\n")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
