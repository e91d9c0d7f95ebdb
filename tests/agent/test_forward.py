"""Forwarders with a fake clock and a fake remote that fails on command: order,
acknowledgement, bounds by age and bytes with drop counts, restart durability, backoff,
isolation between remotes, and what health says. The queue is a real SQLite file."""

from __future__ import annotations

import math
import stat
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from sysmon.agent.forward import (
    Forwarder,
    Forwarding,
    ForwardQueue,
    decode_snapshot,
    encode_snapshot,
    queue_path,
)
from sysmon.api.routes.health import forward_problems
from sysmon.clock import FakeClock
from sysmon.config import Settings, load_settings
from sysmon.errors import ConfigError, StorageError
from sysmon.models import Collected, Sample, Snapshot
from sysmon.storage.base import Capabilities, NativeResolution, StoreStats

T0 = 1_700_000_000.0


class FakeRemote:
    """A remote store: records what it accepted, request by request; ``down`` makes
    every request fail; ``block`` (an Event) makes writes wait for it."""

    def __init__(self, *, batches: bool = True, process_tables: bool = False) -> None:
        self.down = False
        self.fail_after: int | None = None
        """Accept this many more ticks, then fail (a request that dies half-way)."""
        self.accepted: list[float] = []
        self.requests: list[float] = []
        self.rows_seen: list[int] = []
        self.block: threading.Event | None = None
        self.opened = 0
        self.closed = 0
        self._process_tables = process_tables
        if batches:
            self.write_many = self._write_many

    def open(self) -> None:
        self.opened += 1

    def close(self) -> None:
        self.closed += 1

    def capabilities(self) -> Capabilities:
        return Capabilities(
            "fake", (NativeResolution("raw", 1.0, math.inf),), self._process_tables, True
        )

    def _accept(self, snapshot: Snapshot) -> None:
        if self.fail_after is not None:
            if self.fail_after <= 0:
                raise StorageError("connection reset mid-request")
            self.fail_after -= 1
        self.accepted.append(snapshot.timestamp)
        self.rows_seen.append(sum(len(c.rows) for c in snapshot.results.values()))

    def write(self, snapshot: Snapshot) -> None:
        self.requests.append(snapshot.timestamp)
        if self.block is not None:
            self.block.wait(10)
        if self.down:
            raise StorageError("victoriametrics at http://remote: ConnectError: refused")
        self._accept(snapshot)

    def _write_many(self, snapshots: Sequence[Snapshot]) -> None:
        self.requests.append(snapshots[0].timestamp if snapshots else -1.0)
        if self.down:
            raise StorageError("victoriametrics at http://remote: ConnectError: refused")
        for snapshot in snapshots:
            self._accept(snapshot)

    # unused parts of the contract
    def query(self, q: object) -> object:  # pragma: no cover
        raise NotImplementedError

    def series(self, metric: str) -> list[object]:  # pragma: no cover
        return []

    def query_processes(self, at: float) -> None:  # pragma: no cover
        return None

    def maintain(self, now: float) -> None:  # pragma: no cover
        pass

    def ping(self) -> bool:  # pragma: no cover
        return not self.down

    def stats(self) -> StoreStats:  # pragma: no cover
        return StoreStats("fake", None, None)


def tick(ts: float, value: float = 1.0) -> Snapshot:
    return Snapshot(
        ts,
        {
            "cpu": Collected(
                samples=(
                    Sample("cpu", "percent", value),
                    Sample("cpu", "percent", value / 2, (("core", "0"),)),
                )
            )
        },
    )


def make(
    tmp_path: Path,
    clock: FakeClock,
    remote: FakeRemote | None = None,
    name: str = "vm",
    **kwargs: float,
) -> tuple[Forwarder, FakeRemote]:
    remote = remote or FakeRemote()
    options: dict[str, float] = {"backoff_initial_seconds": 1.0, "backoff_max_seconds": 8.0}
    options.update(kwargs)
    forwarder = Forwarder(
        name,
        remote,  # type: ignore[arg-type]
        ForwardQueue(tmp_path / f"forward-{name}.db"),
        clock,
        **options,  # type: ignore[arg-type]
    )
    return forwarder, remote


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


def run_ticks(forwarder: Forwarder, clock: FakeClock, n: int) -> list[float]:
    """``n`` ticks one second apart, each submitted and stepped like the agent does."""
    stamps = []
    for _ in range(n):
        stamps.append(clock.time())
        forwarder.submit(tick(clock.time()))
        forwarder.step()
        clock.advance(1.0)
    return stamps


# --- encoding ----------------------------------------------------------------------------


def test_queue_entries_round_trip_values_labels_errors_and_rows_on_request() -> None:
    snap = Snapshot(
        T0 + 0.25,
        {
            "disk": Collected(
                samples=(
                    Sample("disk", "used_bytes", 123456789012),
                    Sample("disk", "percent", 88.63636363637538, (("mount", "/"),)),
                    Sample("disk", "busy_percent", math.inf, (("device", "sda"), ("x", "y"))),
                    Sample("disk", "read_bytes_per_sec", math.nan),
                )
            ),
            "processes": Collected(
                samples=(Sample("processes", "count", 95),),
                rows=({"pid": 1, "name": "init", "user": None, "cpu_percent": 0.5},),
            ),
        },
        {"sensors": "no sensors"},
    )
    back = decode_snapshot(encode_snapshot(snap))
    assert back.timestamp == T0 + 0.25
    assert back.errors == {"sensors": "no sensors"}
    disk = back.results["disk"].samples
    assert disk[0] == Sample("disk", "used_bytes", 123456789012)
    assert isinstance(disk[0].value, int)
    assert disk[1] == Sample("disk", "percent", 88.63636363637538, (("mount", "/"),))
    assert disk[2].value == math.inf and disk[2].labels == (("device", "sda"), ("x", "y"))
    assert math.isnan(disk[3].value)
    assert back.results["processes"].rows == ()  # not queued unless the remote keeps them
    with_rows = decode_snapshot(encode_snapshot(snap, rows=True))
    assert with_rows.results["processes"].rows == (
        {"pid": 1, "name": "init", "user": None, "cpu_percent": 0.5},
    )


def test_an_unknown_entry_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown queue entry format"):
        decode_snapshot(b"\x09junk")


# --- order, acknowledgement, backoff -------------------------------------------------


def test_healthy_remote_gets_each_tick_as_it_comes_and_the_queue_stays_empty(
    tmp_path: Path, clock: FakeClock
) -> None:
    forwarder, remote = make(tmp_path, clock)
    forwarder.start(threaded=False)
    stamps = run_ticks(forwarder, clock, 3)
    assert remote.accepted == stamps
    status = forwarder.status(clock.time())
    assert status["queued_ticks"] == 0 and status["queued_bytes"] == 0
    assert status["oldest_queued_age_seconds"] is None
    assert status["last_sent_at"] == stamps[-1]
    assert status["sent_ticks"] == 3 and status["last_error"] is None
    forwarder.stop()
    assert remote.opened == 1 and remote.closed == 1


def test_ticks_wait_while_the_remote_is_down_and_go_out_in_order(
    tmp_path: Path, clock: FakeClock
) -> None:
    forwarder, remote = make(tmp_path, clock, batch_ticks=4)
    forwarder.start(threaded=False)
    remote.down = True
    stamps = run_ticks(forwarder, clock, 10)
    assert remote.accepted == []
    status = forwarder.status(clock.time())
    assert status["queued_ticks"] == 10
    assert status["oldest_queued_age_seconds"] == 10.0
    assert status["queued_bytes"] == forwarder.queue.bytes > 0
    assert "ConnectError" in status["last_error"]
    remote.down = False
    clock.advance(60)  # past any backoff
    forwarder.step()
    assert remote.accepted == stamps  # oldest first, nothing twice
    assert forwarder.status(clock.time())["queued_ticks"] == 0
    # batches of 4: three requests for ten ticks
    assert remote.requests[-3:] == [stamps[0], stamps[4], stamps[8]]
    forwarder.stop()


def test_a_batch_is_deleted_only_after_the_remote_acknowledged_it(
    tmp_path: Path, clock: FakeClock
) -> None:
    remote = FakeRemote(batches=False)  # one write per tick
    forwarder, _ = make(tmp_path, clock, remote, batch_ticks=5)
    forwarder.start(threaded=False)
    remote.down = True
    stamps = run_ticks(forwarder, clock, 5)
    remote.down = False
    remote.fail_after = 2  # takes two ticks of the batch, then the connection dies
    clock.advance(60)
    forwarder.step()
    assert remote.accepted == stamps[:2]
    assert forwarder.status(clock.time())["queued_ticks"] == 5, "nothing deleted unacknowledged"
    remote.fail_after = None
    clock.advance(60)
    forwarder.step()
    # at least once: the two accepted ticks come again (same values, same timestamps)
    assert remote.accepted == stamps[:2] + stamps
    assert forwarder.status(clock.time())["queued_ticks"] == 0
    forwarder.stop()


def test_backoff_doubles_from_the_interval_up_to_the_cap_and_resets_on_success(
    tmp_path: Path, clock: FakeClock
) -> None:
    forwarder, remote = make(tmp_path, clock, backoff_initial_seconds=1, backoff_max_seconds=8)
    forwarder.start(threaded=False)
    remote.down = True
    attempts: list[float] = []
    for second in range(40):
        before = len(remote.requests)
        forwarder.submit(tick(clock.time()))
        forwarder.step()
        if len(remote.requests) > before:
            attempts.append(float(second))
        clock.advance(1.0)
    # delays 1, 2, 4, 8, 8, 8 ...
    assert attempts[:8] == [0, 1, 3, 7, 15, 23, 31, 39]
    assert forwarder.status(clock.time())["retry_in_seconds"] == 7.0
    assert forwarder.status(clock.time())["failing_ticks"] == 39
    remote.down = False
    clock.advance(8)
    forwarder.step()
    assert len(remote.accepted) == 40
    status = forwarder.status(clock.time())
    assert status["failing_ticks"] == 0 and status["retry_in_seconds"] == 0
    # after a success the next failure starts again at one interval
    remote.down = True
    forwarder.submit(tick(clock.time()))
    forwarder.step()
    assert forwarder.status(clock.time())["retry_in_seconds"] == 1.0
    forwarder.stop()


# --- bounds --------------------------------------------------------------------------


def test_beyond_the_age_bound_the_oldest_are_dropped_and_counted(
    tmp_path: Path, clock: FakeClock
) -> None:
    forwarder, remote = make(tmp_path, clock, buffer_seconds=10, backoff_max_seconds=1)
    forwarder.start(threaded=False)
    remote.down = True
    stamps = run_ticks(forwarder, clock, 24)
    status = forwarder.status(clock.time())
    # at the last step (t0+23) ticks stamped before t0+13 were over the 10 s bound
    assert status["queued_ticks"] == 11
    assert status["dropped_ticks"] == 13
    assert status["dropped_last_hour"] == 13 and status["dropped_recently"] is True
    remote.down = False
    stamps += run_ticks(forwarder, clock, 1)  # t0+24: t0+13 goes, the rest is sent
    assert remote.accepted == stamps[14:]
    problems = forward_problems({"vm": forwarder.status(clock.time())})
    assert problems == [
        "forward vm dropped 14 unsent ticks in the last hour over its buffer bound (14 in all)"
    ]
    clock.advance(3601)
    forwarder.submit(tick(clock.time()))
    forwarder.step()
    later = forwarder.status(clock.time())
    assert later["dropped_recently"] is False and later["dropped_last_hour"] == 0
    assert later["dropped_ticks"] == 14
    assert forward_problems({"vm": later}) == []
    forwarder.stop()


def test_beyond_the_byte_bound_the_oldest_are_dropped_and_counted(
    tmp_path: Path, clock: FakeClock
) -> None:
    size = len(encode_snapshot(tick(T0)))
    forwarder, remote = make(tmp_path, clock, max_buffer_bytes=int(3.5 * size))
    forwarder.start(threaded=False)
    remote.down = True
    stamps = run_ticks(forwarder, clock, 8)
    status = forwarder.status(clock.time())
    assert status["queued_ticks"] == 3
    kept = sum(len(encode_snapshot(tick(ts))) for ts in stamps[-3:])
    assert status["queued_bytes"] == kept <= 3.5 * size
    assert status["dropped_ticks"] == 5
    remote.down = False
    clock.advance(60)
    forwarder.step()
    assert remote.accepted == stamps[-3:], "the newest are kept"
    forwarder.stop()


# --- restarts, files ------------------------------------------------------------------


def test_what_was_queued_is_sent_after_a_restart_and_drops_are_remembered(
    tmp_path: Path, clock: FakeClock
) -> None:
    first, remote = make(tmp_path, clock, buffer_seconds=5)
    first.start(threaded=False)
    remote.down = True
    stamps = run_ticks(first, clock, 8)
    first.submit(tick(clock.time()))  # handed off but not yet stepped: stop queues it
    stamps.append(clock.time())
    first.stop()  # at t0+8 the 5 s bound keeps t0+3 .. t0+8: 3 dropped

    again = FakeRemote()
    second, _ = make(tmp_path, clock, again, buffer_seconds=3600)
    second.start(threaded=False)
    status = second.status(clock.time())
    assert status["queued_ticks"] == 6
    assert status["dropped_ticks"] == 3 and status["dropped_recently"] is True
    second.step()
    assert again.accepted == stamps[3:]
    second.stop()


def test_queue_file_is_private_and_named_after_the_remote(tmp_path: Path) -> None:
    settings = load_settings(
        None,
        database={"path": str(tmp_path / "data" / "sysmon.db")},
        forward=[{"name": "vm-1", "backend": "victoriametrics", "url": "http://127.0.0.1:9"}],
    )
    path = queue_path(settings, "vm-1")
    assert path == tmp_path / "data" / "forward-vm-1.db"
    queue = ForwardQueue(path)
    queue.open()
    queue.append([(T0, b"x")])
    queue.close()
    for suffix in ("", "-wal"):
        file = Path(f"{path}{suffix}")
        if file.exists():
            assert stat.S_IMODE(file.stat().st_mode) == 0o600, file


def test_process_rows_are_queued_only_for_a_remote_that_keeps_them(
    tmp_path: Path, clock: FakeClock
) -> None:
    with_rows = Snapshot(T0, {"processes": Collected(rows=({"pid": 1},))})
    for keeps, rows in ((False, 0), (True, 1)):
        remote = FakeRemote(process_tables=keeps)
        forwarder, _ = make(tmp_path / str(keeps), clock, remote)
        forwarder.start(threaded=False)
        forwarder.submit(tick(clock.time()))  # opens the store: now it knows
        forwarder.step()
        forwarder.submit(with_rows)
        forwarder.step()
        assert remote.rows_seen == [0, rows]
        forwarder.stop()


# --- threads ---------------------------------------------------------------------------


def wait_for(predicate: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


@pytest.fixture
def two_forwarders(tmp_path: Path) -> Iterator[tuple[Forwarding, FakeRemote, FakeRemote]]:
    from sysmon.clock import SystemClock

    slow = FakeRemote(batches=False)
    slow.block = threading.Event()
    fast = FakeRemote()
    a, _ = make(tmp_path, SystemClock(), slow, name="slow")  # type: ignore[arg-type]
    b, _ = make(tmp_path, SystemClock(), fast, name="fast")  # type: ignore[arg-type]
    forwarding = Forwarding([a, b])
    forwarding.start(threaded=True)
    try:
        yield forwarding, slow, fast
    finally:
        assert slow.block is not None
        slow.block.set()
        forwarding.stop()


def test_a_hanging_remote_delays_neither_the_tick_nor_another_remote(
    two_forwarders: tuple[Forwarding, FakeRemote, FakeRemote],
) -> None:
    forwarding, slow, fast = two_forwarders
    now = time.time()
    stamps = [now + i for i in range(5)]
    started = time.monotonic()
    for ts in stamps:
        forwarding.submit(tick(ts))
    assert time.monotonic() - started < 0.05, "submit does no I/O"
    wait_for(lambda: fast.accepted == stamps)
    assert slow.accepted == []
    status = forwarding.status(now + 5)
    assert status["slow"]["queued_ticks"] == 5 and status["fast"]["queued_ticks"] == 0
    assert slow.block is not None
    slow.block.set()
    wait_for(lambda: slow.accepted == stamps)


# --- configuration and health ------------------------------------------------------------


def _settings(tmp_path: Path, **entry: object) -> Settings:
    base: dict[str, object] = {"name": "vm", "backend": "victoriametrics", "url": "http://h:8428"}
    base.update(entry)
    return load_settings(None, database={"path": str(tmp_path / "s.db")}, forward=[base])


@pytest.mark.parametrize(
    ("entry", "key", "words"),
    [
        ({"buffer": "5 minutes"}, "forward.0.buffer", "invalid duration"),
        ({"buffer": "0s"}, "forward.0.buffer", "greater than zero"),
        ({"backoff_max": "-1m"}, "forward.0.backoff_max", "invalid duration"),
        ({"token": "s3cret"}, "forward.0.token", "token_env: SYSMON_VM_TOKEN"),
        ({"url": "http://u:p@h:8428"}, "forward.0.url", "credentials are not read"),
        ({"url": "ftp://h"}, "forward.0.url", "http:// or https://"),
        ({"name": "Bad Name"}, "forward.0.name", "not a forward name"),
        ({"backend": "influx"}, "forward.0.backend", "victoriametrics"),
        ({"max_buffer_bytes": 10}, "forward.0.max_buffer_bytes", "greater than or equal"),
        ({"colour": "red"}, "forward.0.colour", "unknown key"),
    ],
)
def test_config_errors_name_the_key(
    tmp_path: Path, entry: dict[str, object], key: str, words: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        _settings(tmp_path, **entry)
    assert caught.value.key == key
    assert words in caught.value.message


def test_durations_and_defaults(tmp_path: Path) -> None:
    settings = _settings(tmp_path, buffer="1h30m", backoff_max=90)
    config = settings.forward[0]
    assert config.buffer_seconds == 5400 and config.backoff_max_seconds == 90
    assert config.max_buffer_bytes == 256 * 1024 * 1024 and config.timeout_seconds == 5


def test_duplicate_names_are_refused(tmp_path: Path) -> None:
    entry = {"name": "vm", "backend": "victoriametrics", "url": "http://h:8428"}
    with pytest.raises(ConfigError) as caught:
        load_settings(None, forward=[entry, dict(entry)])
    assert caught.value.key == "forward.1.name" and "duplicate" in caught.value.message


def test_token_comes_from_the_environment_or_start_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(tmp_path, token_env="SYSMON_TEST_VM_TOKEN")
    monkeypatch.delenv("SYSMON_TEST_VM_TOKEN", raising=False)
    with pytest.raises(ConfigError) as caught:
        Forwarding.from_settings(settings, FakeClock())
    assert caught.value.key == "forward.0.token_env"
    assert "SYSMON_TEST_VM_TOKEN is not set" in caught.value.message
    monkeypatch.setenv("SYSMON_TEST_VM_TOKEN", "t0k")
    forwarding = Forwarding.from_settings(settings, FakeClock())
    store = forwarding.forwarders[0].store
    assert store._headers == {"Authorization": "Bearer t0k"}  # type: ignore[attr-defined]
    assert "t0k" not in repr(settings)


def test_health_is_degraded_only_after_more_than_n_failing_ticks(
    tmp_path: Path, clock: FakeClock
) -> None:
    forwarder, remote = make(tmp_path, clock, degraded_after_ticks=3, backoff_max_seconds=1)
    forwarder.start(threaded=False)
    remote.down = True
    run_ticks(forwarder, clock, 4)  # first failure on tick 1, then 3 more ticks
    assert forward_problems({"vm": forwarder.status(clock.time())}) == []
    run_ticks(forwarder, clock, 1)
    problems = forward_problems({"vm": forwarder.status(clock.time())})
    assert len(problems) == 1
    assert problems[0].startswith("forward vm failing for 4 ticks, 5 queued (oldest 5s): ")
    assert "ConnectError" in problems[0]
    remote.down = False
    run_ticks(forwarder, clock, 1)
    assert forward_problems({"vm": forwarder.status(clock.time())}) == []
    forwarder.stop()
