"""A deterministic multi-day workload for the SQLite store, and its full query answers.

Why: the store was split from one class into a package (issue 11). The refactor must not
change one bit of any answer, and the unit tests check chosen numbers, not every slot of
every tier. This workload drives the store the way the agent does (a fake clock, a
``write`` then a ``maintain`` per tick) through the paths that are easy to disturb:

* old 1h history back-filled with ``import_buckets``, then compacted and rolled over;
* several series groups; a field that appears on day 2 (the layout grows); rates absent
  on the first tick and after a "counter reset"; values that stress float64 (full
  mantissas, ``-0.0``, ``5e-324``, ``1e300``);
* timestamps jittered by a few hundred ms around the slot; a 3.5 h outage;
* replayed ticks (same slot again) and late ticks into already compacted raw windows,
  which lower the rollup watermarks;
* a restart with another collection interval (raw chunks of two slot widths);
* process tables every tick, stored once a minute;
* short retentions, so every tier expires rows and masks the boundary during the run.

At three checkpoints ``answers`` records, for every stored group, every resolution
(``raw``, ``1m``, ``5m``, ``1h``, ``auto``) and every aggregate, six ranges (unmerged,
merged, merged across the outage, the whole history, and since 1970, where the merge
factor is huge), plus ``series()``, ``query_processes`` and ``stats().rows``.

``tests/fixtures/storage_golden.json`` was generated from the pre-split code with::

    .venv/bin/python -m tests.storage.golden tests/fixtures/storage_golden.json

and ``test_golden.py`` replays the workload and compares every answer by ``repr`` of
every float (so ``-0.0`` vs ``0.0`` or one ulp would fail).
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sysmon.clock import FakeClock
from sysmon.errors import QueryError
from sysmon.models import Labels
from sysmon.storage.base import RangeQuery
from sysmon.storage.config import RetentionConfig, TierConfig
from sysmon.storage.rollup import Stat
from sysmon.storage.sqlite import SQLiteStore
from tests.storage.helpers import T0, snap

H = 3600.0
D = 86_400.0
FIRST_INTERVAL = 30.0
SECOND_INTERVAL = 20.0
RESTART_AT = T0 + 2 * D
END = T0 + 2 * D + 12 * H
OUTAGE = (T0 + 30 * H, T0 + 33.5 * H)
CHECKPOINTS = (T0 + 1 * D + 2 * H, T0 + 2 * D + 0.5 * H, END)
METRICS = ("cpu", "disk", "memory", "network")
RESOLUTIONS = ("raw", "1m", "5m", "1h", "auto")
AGGS = ("mean", "min", "max")

Answers = dict[str, Any]


def retention() -> RetentionConfig:
    return RetentionConfig(
        tiers=[
            TierConfig(resolution="raw", keep="12h"),
            TierConfig(resolution="1m", keep="1d"),
            TierConfig(resolution="5m", keep="2d"),
            TierConfig(resolution="1h", keep="12d"),
        ],
        processes_every="60s",
    )


def _tick_series(
    rng: random.Random, i: int, ts: float
) -> dict[tuple[str, Labels], dict[str, float]]:
    day = (ts - T0) // D
    series: dict[tuple[str, Labels], dict[str, float]] = {
        ("cpu", ()): {
            "percent": round(rng.uniform(0, 100), 1),
            "load_1": rng.random() * 4,  # full 53-bit mantissa
        },
        ("cpu", (("core", "0"),)): {"percent": round(rng.gauss(40, 15), 1)},
        ("cpu", (("core", "1"),)): {"percent": float(i % 7) - 0.0 if i % 5 else -0.0},
        ("memory", ()): {"used_bytes": float(4_000_000_000 + rng.randint(-9, 9) * 4096)},
        ("network", (("interface", "eth0"),)): {},
        ("disk", (("device", "sda"),)): {},
    }
    if day >= 1:  # a field that only exists from day 2 on: the layout grows
        series[("memory", ())]["swap_used_bytes"] = float(rng.randint(0, 5) * 1_048_576)
    # Rates: absent on the first tick and after a reset (every 997th tick).
    if i > 0 and i % 997 != 0:
        series[("network", (("interface", "eth0"),))] = {
            "bytes_recv_per_sec": rng.expovariate(1 / 5e4) / (1 + rng.random() / 100),
            "errin_per_sec": [0.0, -0.0, 5e-324, 1e300][i % 4] if i % 11 == 0 else 0.0,
        }
        series[("disk", (("device", "sda"),))] = {"read_bytes_per_sec": float(i % 13) / 3}
    return series


def _processes(i: int) -> list[dict[str, object]]:
    return [
        {"pid": 1, "name": "init", "cpu_percent": float(i % 100) / 4, "cmdline": "/sbin/init"},
        {"pid": 1000 + i % 3, "name": f"w{i % 3}", "cpu_percent": 1.5, "user": None},
    ]


def _hourly_history() -> list[tuple[str, Labels, float, dict[str, Stat]]]:
    """Ten days of 1h buckets before T0, as another system would back-fill them."""
    rng = random.Random(7)
    rows: list[tuple[str, Labels, float, dict[str, Stat]]] = []
    for h in range(10 * 24):
        if 100 <= h < 110:
            continue  # a hole in the imported history
        ts = T0 - 10 * D + h * H
        mean = rng.uniform(10, 90)
        lo, hi = mean - rng.uniform(0, 10), mean + rng.uniform(0, 10)
        rows.append(("cpu", (), ts, {"percent": (mean, lo, hi, float(rng.randint(1, 120)))}))
    return rows


def _ranges(now: float) -> list[tuple[str, float, float, int]]:
    return [
        ("last40m", now - 40 * 60, now, 100),
        ("last6h", now - 6 * H - 17.3, now, 120),
        ("outage", OUTAGE[0] - 2 * H, OUTAGE[1] + 2 * H, 90),
        ("all", T0 - 0.5 * D, now, 60),
        ("history", T0 - 12 * D, now, 1),
        ("epoch", 0.0, now, 3),
    ]


def answers(store: SQLiteStore, now: float) -> Answers:
    """Every answer the store gives at ``now`` for the workload's groups (JSON-able)."""
    out: Answers = {"series": {}, "queries": {}, "processes": {}}
    for metric in METRICS:
        label_sets = list(store.series(metric))
        out["series"][metric] = [[list(p) for p in ls] for ls in label_sets]
        for labels in label_sets:
            group = metric + "{" + ",".join(f"{k}={v}" for k, v in labels) + "}"
            for res in RESOLUTIONS:
                for agg in AGGS:
                    for name, start, end, mp in _ranges(now):
                        q = RangeQuery(metric, start, end, labels, res, agg, mp)  # type: ignore[arg-type]
                        key = f"{group} {res} {agg} {name}"
                        try:
                            r = store.query(q)
                        except QueryError as exc:
                            out["queries"][key] = {"error": exc.param, "message": exc.message}
                            continue
                        out["queries"][key] = {
                            "resolution": r.resolution,
                            "step": r.step_seconds,
                            "timestamps": r.timestamps,
                            "fields": r.fields,
                        }
    for back in (0.0, 30.0, 61.0, 3 * H, 11 * H, 13 * H, 20 * D):
        found = store.query_processes(now - back)
        out["processes"][str(back)] = None if found is None else [found[0], list(found[1])]
    out["rows"] = dict(sorted(store.stats().rows.items()))
    return out


def run(db: Path, on_checkpoint: Callable[[float, Answers], None]) -> None:
    """Drive the workload into ``db``; ``on_checkpoint(now, answers)`` at each checkpoint."""
    clock = FakeClock(T0 - 10 * D)
    rng = random.Random(11)
    store = SQLiteStore(db, retention(), FIRST_INTERVAL, clock)
    store.open()
    store.import_buckets("1h", _hourly_history())
    for _ in range(50):
        store.maintain(T0 - 1)
    checkpoints = list(CHECKPOINTS)
    interval = FIRST_INTERVAL
    i = 0
    slot = T0
    while slot < END:
        if checkpoints and slot >= checkpoints[0]:
            now = checkpoints.pop(0)
            clock.set_wall(now)
            on_checkpoint(now, answers(store, now))
        if interval == FIRST_INTERVAL and slot >= RESTART_AT:
            store.close()  # a restart with another collection interval
            interval = SECOND_INTERVAL
            store = SQLiteStore(db, retention(), interval, clock)
            store.open()
        if not OUTAGE[0] <= slot < OUTAGE[1]:
            ts = slot + rng.uniform(-0.3, 0.3)
            clock.set_wall(ts)
            store.write(snap(ts, _tick_series(rng, i, ts), processes=_processes(i)))
            if i % 701 == 5:  # the same tick again (replaces its rows)
                store.write(snap(ts, _tick_series(rng, i, ts), processes=_processes(i)))
            if i % 1409 == 17:  # a buffered tick replayed 2 h late (compacted window)
                late = ts - 2 * H - 7
                store.write(snap(late, _tick_series(rng, i, late)))
            store.maintain(ts + 0.2)
            i += 1
        slot += interval
    now = checkpoints.pop(0)
    clock.set_wall(now)
    for _ in range(300):
        store.maintain(now)
    on_checkpoint(now, answers(store, now))
    store.close()


def generate(db: Path) -> dict[str, Answers]:
    found: dict[str, Answers] = {}

    def keep(now: float, got: Answers) -> None:
        found[repr(now)] = got

    run(db, keep)
    return found


def main(argv: list[str]) -> None:
    import tempfile

    target = Path(argv[0])
    with tempfile.TemporaryDirectory() as tmp:
        data = generate(Path(tmp) / "golden.db")
    target.write_text(json.dumps(data, separators=(",", ":"), sort_keys=True) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
