"""Microbenchmark of the relational stores: the calls that sit on a hot path.

Not a test (pytest does not collect it). Each operation runs ``--n`` times, one at a
time, timed with ``perf_counter_ns``; the median and p99 per call are printed, in µs.

* ``alerts.silences``: the agent reads the silences on every collection tick.
* ``alerts.record``: one state change (an event and its state row) in one transaction.
* ``alerts.events``: the history page (100 rows).
* ``auth.token_user``: every request with a bearer token does this lookup.
* ``auth.session_user``: every dashboard request with a session cookie.
* ``auth.audit``: one audit row (a state-changing request by an admin).

    .venv/bin/python -m tests.relational.microbench [--n 2000] [--url postgresql+psycopg://...]

Run with ``PYTHONPATH`` pointing at another tree to compare versions (the ``--url``
option needs the SQLAlchemy version of the stores).
"""

from __future__ import annotations

import argparse
import inspect
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sysmon.alerts.store import AlertEvent, AlertStore, StoredState
from sysmon.security.audit import Auditor
from sysmon.security.credentials import Credentials
from sysmon.security.store import AuthStore


def timed(n: int, call: Callable[[int], object]) -> tuple[float, float]:
    """Median and p99 of ``n`` calls, in microseconds."""
    spent: list[int] = []
    for i in range(n):
        start = time.perf_counter_ns()
        call(i)
        spent.append(time.perf_counter_ns() - start)
    spent.sort()
    return statistics.median(spent) / 1000, spent[int(0.99 * (n - 1))] / 1000


def event(i: int) -> AlertEvent:
    return AlertEvent(
        id=0,
        timestamp=1000.0 + i,
        kind="firing" if i % 2 == 0 else "resolved",
        rule=f"rule{i % 20}",
        severity="warning",
        metric="cpu.percent",
        labels={"core": str(i % 8)},
        value=91.0,
        threshold=90.0,
        operator=">",
        since=1000.0 + i,
        silenced=False,
    )


def state(i: int) -> StoredState:
    return StoredState(
        rule=f"rule{i % 20}",
        labels=(("core", str(i % 8)),),
        state="firing",
        since=1000.0 + i,
        firing_since=1000.0 + i,
        value=91.0,
        last_notified_at=None,
        notified=True,
        firing_event_id=-1,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--url", default=None, help="a PostgreSQL URL (default: SQLite files)")
    args = parser.parse_args(argv)
    extra: dict[str, Any] = {}
    if args.url:
        if "url" not in inspect.signature(AlertStore).parameters:
            parser.error("--url needs the SQLAlchemy stores")
        extra = {"url": args.url}
    results: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        alerts = AlertStore(str(Path(folder) / "sysmon.db"), **extra)
        alerts.open()
        for i in range(5):
            alerts.add_silence({"rule": f"r{i}"}, until=1e12, comment="bench", now=1.0)
        results["alerts.silences"] = timed(args.n, lambda i: alerts.silences(1000.0 + i))
        results["alerts.record"] = timed(
            args.n, lambda i: alerts.record(upsert=[state(i)], events=[event(i)])
        )
        results["alerts.events"] = timed(
            args.n // 4, lambda i: alerts.events(1000.0 + i, 1100.0 + i, 100)
        )
        alerts.close()

        auth = AuthStore(Path(folder) / "auth.db", **extra)
        auth.open()
        auth.add_user("bench", "admin", "$argon2id$not-a-real-hash")
        credentials = Credentials(auth)
        credentials.add_session("s" * 64, "bench", 1e12)
        auditor = Auditor(auth)
        results["auth.token_user"] = timed(args.n, lambda i: auth.token_user("bench", f"j{i}"))
        results["auth.session_user"] = timed(args.n, lambda i: credentials.session_user("s" * 64))
        results["auth.audit"] = timed(
            args.n, lambda i: auditor.record("request", actor="bench", method="POST", status=200)
        )
        auth.close()
    width = max(len(name) for name in results)
    sys.stdout.write(f"{'operation':<{width}}  median µs  p99 µs\n")
    for name, (median, p99) in results.items():
        sys.stdout.write(f"{name:<{width}}  {median:9.1f}  {p99:6.1f}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
