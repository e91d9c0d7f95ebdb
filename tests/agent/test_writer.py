"""The store writer keeps failed ticks and writes them in order; maintenance is periodic."""

from __future__ import annotations

from sysmon.agent.writer import BufferedWriter
from sysmon.clock import FakeClock
from tests.agent.fakes import FlakyStore, snap


def test_failed_ticks_are_kept_and_written_in_order() -> None:
    store = FlakyStore()
    writer = BufferedWriter(store, max_pending=100, clock=FakeClock())
    writer.submit(snap(1))
    writer.step()
    store.down = True
    for ts in (2, 3):
        writer.submit(snap(ts))
        writer.step()
    assert writer.pending == 2
    assert writer.last_error is not None and "No space" in writer.last_error
    store.down = False
    writer.submit(snap(4))
    writer.step()
    assert store.written == [1, 2, 3, 4]
    assert writer.pending == 0 and writer.dropped == 0
    assert writer.last_error is None


def test_oldest_dropped_only_beyond_the_bound() -> None:
    store = FlakyStore()
    store.down = True
    writer = BufferedWriter(store, max_pending=3, clock=FakeClock())
    for ts in range(1, 6):
        writer.submit(snap(ts))
    assert (writer.pending, writer.dropped) == (3, 2)
    store.down = False
    writer.flush()
    assert store.written == [3, 4, 5]


def test_maintenance_runs_periodically_not_every_tick() -> None:
    store = FlakyStore()
    clock = FakeClock()
    writer = BufferedWriter(store, max_pending=10, clock=clock, maintain_every_seconds=10)
    for _ in range(25):
        writer.submit(snap(clock.time()))
        writer.step()
        clock.advance(1)
    assert len(store.maintained) == 3  # t=0, 10, 20


def test_thread_writes_what_is_submitted_and_stop_flushes() -> None:
    store = FlakyStore()
    writer = BufferedWriter(store, max_pending=100, clock=FakeClock(), retry_seconds=0.05)
    writer.start()
    for ts in range(1, 4):
        writer.submit(snap(ts))
    writer.stop()
    assert store.written == [1, 2, 3]
