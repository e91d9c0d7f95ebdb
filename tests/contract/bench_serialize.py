"""Cost of the two hot JSON answers: the ``/current`` body and a range answer.

Not a test (pytest does not collect it): run it by hand when touching ``sysmon.serialize``
or the range route, ``.venv/bin/python -m tests.contract.bench_serialize [repeats]``.
A synthetic but large host (64 cores, 8 disks, 6 mounts, 6 interfaces, 20 process rows)
is serialised the way the agent does it once per tick; the range answer is memory (11
fields, 7 of them integer bytes) at 1000 points with a few gaps, rendered the way the
route does (integer conversion + ``JSONResponse``). Best of ``repeats`` batches, CPU time
of this thread (``time.thread_time``), so other processes on a noisy machine count less.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping

from fastapi.responses import JSONResponse

from sysmon.api.routes.metrics import integral_fields
from sysmon.catalog import metric_catalog
from sysmon.collectors.registry import discover
from sysmon.models import Collected, Sample, Snapshot
from sysmon.serialize import snapshot_document, to_json_bytes


def _snapshot() -> Snapshot:
    registry = discover()
    results: dict[str, Collected] = {}
    for name in ("cpu", "memory", "disk", "network", "processes"):
        samples: list[Sample] = []
        for info in registry.get(name).fields:
            value = 123456789.0 if info.field.endswith("bytes") else 12.5
            samples.append(Sample(name, info.field, value))
            for key in info.labels:
                count = {"core": 64, "device": 8, "mount": 6, "interface": 6}[key]
                samples.extend(
                    Sample(name, info.field, value, ((key, str(i)),)) for i in range(count)
                )
        rows: tuple[dict[str, object], ...] = ()
        if name == "processes":
            rows = tuple(
                {"pid": i, "name": f"proc{i}", "user": "root", "cpu_percent": 1.5,
                 "memory_percent": 0.5, "rss_bytes": 1 << 20, "status": "running",
                 "threads": 4, "create_time": 1.7e9, "cmdline": "/usr/bin/x --y"}
                for i in range(20)
            )  # fmt: skip
        results[name] = Collected(tuple(samples), rows)
    return Snapshot(1.8e9, results)


def _best(fn: Callable[[], object], repeats: int, inner: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.thread_time()
        for _ in range(inner):
            fn()
        best = min(best, (time.thread_time() - t0) / inner)
    return best


def main(repeats: int = 7) -> None:
    """Each answer with the integer rule and without it (every value a float, as before
    the rule), so the cost of the rule is read off one run."""
    snapshot = _snapshot()
    integers = metric_catalog(discover()).integer_fields
    memory = discover().get("memory").fields
    fields: dict[str, list[float | None]] = {
        info.field: [None if i % 97 == 0 else 123456789.0 + i * 4096.0 for i in range(1000)]
        for info in memory
    }
    timestamps = [1.8e9 + i for i in range(1000)]
    whole = frozenset(info.field for info in memory if info.integer)

    def current(ints: Mapping[str, frozenset[str]]) -> Callable[[], bytes]:
        return lambda: to_json_bytes(snapshot_document(snapshot, 20, ints))

    def range_answer(convert: bool) -> Callable[[], bytes]:
        def run() -> bytes:
            shaped = integral_fields(fields, whole) if convert else fields
            body = {"metric": "memory", "timestamps": timestamps, "fields": shaped}
            return bytes(JSONResponse(body).body)

        return run

    cases: list[tuple[str, Callable[[], bytes], int]] = [
        ("current, all floats", current({}), 200),
        ("current, integers", current(integers), 200),
        ("range, all floats", range_answer(False), 50),
        ("range, integers", range_answer(True), 50),
    ]
    for label, fn, inner in cases:
        seconds = _best(fn, repeats, inner)
        sys.stdout.write(f"{label:22s} {seconds * 1e6:8.1f} us  ({len(fn())} bytes)\n")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 7)
