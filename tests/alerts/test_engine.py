"""The state machine: durations, hysteresis, repeats, staleness, silences, restarts.

The engine runs over a real SQLite file and a real PostgreSQL schema (each test on both);
the notification sink records what would be queued for the channels (delivery itself is
tested against real receivers elsewhere).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sysmon.alerts.config import AlertsConfig
from sysmon.alerts.engine import AlertEngine
from sysmon.alerts.notifiers.base import Notification
from sysmon.alerts.rules import compile_rules
from sysmon.alerts.store import AlertStore
from sysmon.clock import FakeClock
from sysmon.models import Collected, Sample, Snapshot
from tests.alerts.helpers import snapshot
from tests.relational.backends import BACKENDS, backend_url

HOOK = {"hook": {"type": "webhook", "url": "http://127.0.0.1:9/never-called"}}


@dataclass
class Recorder:
    sent: list[tuple[Notification, tuple[str, ...]]] = field(default_factory=list)

    def __call__(self, notification: Notification, channels: tuple[str, ...]) -> None:
        self.sent.append((notification, channels))

    def kinds(self) -> list[tuple[str, str, float | None]]:
        return [(n.kind, n.rule, n.value) for n, _ in self.sent]


@dataclass
class Harness:
    engine: AlertEngine
    store: AlertStore
    sink: Recorder
    clock: FakeClock
    config: AlertsConfig

    def run(self, seconds: float, **values: Any) -> None:
        for _ in range(round(seconds)):
            self.clock.advance(1.0)
            self.engine.evaluate(snapshot(self.clock.time(), **values))

    def states(self) -> list[tuple[str, str, dict[str, str]]]:
        return [(a.rule, a.state, a.labels) for a in self.engine.active()]

    def restart(self) -> Harness:
        """A new engine (as after a process restart) over the same database file."""
        self.store.close()
        return build(Path(self.path), self.clock, self.config, self.store._url)

    @property
    def path(self) -> str:
        return self.store._path


def build(db: Path, clock: FakeClock, config: AlertsConfig, url: str | None = None) -> Harness:
    store = AlertStore(str(db), url=url)
    store.open()
    sink = Recorder()
    engine = AlertEngine(compile_rules(config), store, clock, sink, hostname="h")
    engine.load()
    return Harness(engine, store, sink, clock, config)


def cfg(*rules: dict[str, Any], **extra: Any) -> AlertsConfig:
    return AlertsConfig.model_validate({"rules": list(rules), "channels": HOOK, **extra})


def rule(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"name": "cpu", "metric": "cpu.percent", "threshold": 80}
    base.update(over)
    return base


@pytest.fixture(params=BACKENDS)
def relational_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """The engine's state and history on the SQLite file and on PostgreSQL."""
    with backend_url(request) as url:
        yield url


@pytest.fixture
def harness(tmp_path: Path, clock: FakeClock, relational_url: str | None) -> Iterator[Any]:
    made: list[Harness] = []

    def make(config: AlertsConfig) -> Harness:
        h = build(tmp_path / "alerts.db", clock, config, relational_url)
        made.append(h)
        return h

    yield make
    for h in made:
        h.store.close()


@pytest.mark.parametrize(
    ("for_", "quiet_ticks"),
    [("0s", 0), ("1s", 1), ("5m", 300), ("90s", 90)],
)
def test_fires_exactly_when_the_for_duration_has_elapsed(
    harness: Any, for_: str, quiet_ticks: int
) -> None:
    h = harness(cfg(rule(**{"for": for_})))
    h.run(quiet_ticks, cpu=90.0)
    assert h.sink.sent == []
    assert h.states() == ([("cpu", "pending", {})] if quiet_ticks else [])
    h.run(1, cpu=90.0)
    assert h.sink.kinds() == [("firing", "cpu", 90.0)]
    assert h.states() == [("cpu", "firing", {})]


def test_one_sample_below_the_threshold_cancels_pending_and_restarts_the_timer(
    harness: Any,
) -> None:
    h = harness(cfg(rule(**{"for": "60s"})))
    h.run(50, cpu=90.0)
    h.run(1, cpu=79.0)
    assert h.states() == []
    h.run(60, cpu=90.0)  # 59 s after the new first breach: still pending
    assert h.states() == [("cpu", "pending", {})]
    h.run(1, cpu=90.0)
    assert h.sink.kinds() == [("firing", "cpu", 90.0)]


def test_value_hovering_at_the_threshold_does_not_flap(harness: Any) -> None:
    h = harness(cfg(rule()))  # for 0s, default recovery_for 1m, no recovery threshold
    for i in range(600):
        h.run(1, cpu=81.0 if i % 20 < 10 else 79.0)
    assert h.sink.kinds() == [("firing", "cpu", 81.0)]
    assert h.states() == [("cpu", "firing", {})]
    # The loop ended with 10 ticks at 79; 50 more make 60 samples, 59 s below.
    h.run(50, cpu=79.0)
    assert h.states() == [("cpu", "firing", {})]
    h.run(1, cpu=79.0)
    assert h.sink.kinds() == [("firing", "cpu", 81.0), ("resolved", "cpu", 79.0)]


def test_recovery_threshold_is_hysteresis_on_the_value(harness: Any) -> None:
    h = harness(cfg(rule(recovery_threshold=70, recovery_for="0s")))
    h.run(1, cpu=85.0)
    h.run(30, cpu=75.0)  # below 80 but not below 70: still firing
    assert h.states() == [("cpu", "firing", {})]
    h.run(1, cpu=70.0)  # "> 80" recovers at <= 70
    assert h.sink.kinds() == [("firing", "cpu", 85.0), ("resolved", "cpu", 70.0)]
    assert h.states() == []


def test_recovery_duration_restarts_when_the_value_breaches_again(harness: Any) -> None:
    h = harness(cfg(rule(recovery_for="30s")))
    h.run(1, cpu=90.0)
    h.run(30, cpu=50.0)  # 29 s recovered
    h.run(1, cpu=90.0)
    h.run(30, cpu=50.0)
    assert h.states() == [("cpu", "firing", {})]
    h.run(1, cpu=50.0)
    assert [k for k, _, _ in h.sink.kinds()] == ["firing", "resolved"]


@pytest.mark.parametrize(
    ("operator", "threshold", "value", "fires"),
    [
        (">", 80, 80.0, False),
        (">=", 80, 80.0, True),
        ("<", 10, 10.0, False),
        ("<=", 10, 10.0, True),
        ("<", 10, 9.9, True),
    ],
)
def test_operators_at_the_boundary(
    harness: Any, operator: str, threshold: float, value: float, fires: bool
) -> None:
    h = harness(cfg(rule(operator=operator, threshold=threshold)))
    h.run(1, cpu=value)
    assert bool(h.sink.sent) is fires


def test_one_alert_per_mount_and_totals_are_not_a_mount(harness: Any) -> None:
    h = harness(
        cfg(rule(name="disk", metric="disk.percent", threshold=85, selector={"mount": "any"}))
    )
    h.run(1, mounts={"/": 90.0, "/var": 95.0, "/home": 10.0})
    assert h.states() == [
        ("disk", "firing", {"mount": "/"}),
        ("disk", "firing", {"mount": "/var"}),
    ]
    h.run(61, mounts={"/": 50.0, "/var": 95.0, "/home": 10.0})
    assert h.states() == [("disk", "firing", {"mount": "/var"})]
    resolved = [n for n, _ in h.sink.sent if n.kind == "resolved"]
    assert [(n.labels, n.value) for n in resolved] == [({"mount": "/"}, 50.0)]


def test_selector_with_a_value_and_a_glob(harness: Any) -> None:
    h = harness(
        cfg(
            rule(name="var", metric="disk.percent", threshold=85, selector={"mount": "/var"}),
            rule(name="data", metric="disk.percent", threshold=85, selector={"mount": "/data*"}),
            rule(name="total", metric="disk.percent", threshold=85),
        )
    )
    h.run(1, mounts={"/": 90.0, "/var": 90.0, "/data1": 90.0, "/data2": 10.0})
    assert h.states() == [
        ("var", "firing", {"mount": "/var"}),
        ("data", "firing", {"mount": "/data1"}),
        ("total", "firing", {}),
    ]


def test_cpu_rule_without_selector_ignores_cores(harness: Any) -> None:
    h = harness(cfg(rule()))
    h.run(1, cpu=10.0, cores={"0": 99.0, "1": 99.0})
    assert h.states() == []


def test_repeat_every_repeat_interval_while_firing(harness: Any) -> None:
    h = harness(cfg(rule(repeat_interval="10m")))
    h.run(1, cpu=90.0)
    h.run(599, cpu=91.0)
    assert [k for k, _, _ in h.sink.kinds()] == ["firing"]
    h.run(1, cpu=92.0)
    h.run(600, cpu=93.0)
    assert h.sink.kinds() == [
        ("firing", "cpu", 90.0),
        ("repeat", "cpu", 92.0),
        ("repeat", "cpu", 93.0),
    ]


def test_default_repeat_interval_is_four_hours(harness: Any) -> None:
    h = harness(cfg(rule()))
    h.run(1, cpu=90.0)
    h.run(4 * 3600 - 1, cpu=90.0)
    assert len(h.sink.sent) == 1
    h.run(1, cpu=90.0)
    assert [k for k, _, _ in h.sink.kinds()] == ["firing", "repeat"]


def test_a_failed_collector_tick_changes_nothing(harness: Any) -> None:
    h = harness(cfg(rule(**{"for": "10s"}, recovery_for="0s")))
    h.run(5, cpu=90.0)
    h.run(100, failed=("cpu",), memory=10.0)
    assert h.states() == [("cpu", "pending", {})]  # no data is not "recovered"
    h.run(1, cpu=90.0)  # the pending timer kept running through the gap
    assert h.states() == [("cpu", "firing", {})]
    h.run(1000, failed=("cpu",), memory=10.0)
    assert h.states() == [("cpu", "firing", {})]


def test_a_vanished_series_resolves_after_stale_after(harness: Any) -> None:
    h = harness(
        cfg(rule(name="disk", metric="disk.percent", threshold=85, selector={"mount": "any"}))
    )
    h.run(1, mounts={"/": 50.0, "/mnt/usb": 99.0})
    h.run(299, mounts={"/": 50.0})  # unmounted
    assert h.states() == [("disk", "firing", {"mount": "/mnt/usb"})]
    h.run(1, mounts={"/": 50.0})
    assert h.states() == []
    assert h.sink.kinds()[-1] == ("resolved", "disk", None)


def test_nan_is_ignored(harness: Any) -> None:
    h = harness(cfg(rule()))
    h.run(3, cpu=math.nan)
    assert h.states() == []


def test_history_events_and_state_rows(harness: Any, clock: FakeClock) -> None:
    h = harness(cfg(rule(**{"for": "5s"}, recovery_for="0s")))
    t0 = clock.time()
    h.run(6, cpu=90.0)
    h.run(1, cpu=10.0)
    events = h.store.events(t0, clock.time())
    assert [(e.kind, e.value, e.timestamp - t0, e.since - t0) for e in events] == [
        ("firing", 90.0, 6.0, 1.0),
        ("resolved", 10.0, 7.0, 1.0),
    ]
    assert h.store.load_states() == []


def test_silenced_alert_is_tracked_but_not_sent_then_sent_when_the_silence_ends(
    harness: Any, clock: FakeClock
) -> None:
    h = harness(cfg(rule(), rule(name="mem", metric="memory.percent", threshold=90)))
    silence = h.store.add_silence({"rule": "cpu"}, clock.time() + 100, "maintenance", clock.time())
    h.engine.set_silences([silence])
    h.run(10, cpu=95.0, memory=95.0)
    assert [(a.rule, a.state, a.silenced) for a in h.engine.active()] == [
        ("cpu", "firing", True),
        ("mem", "firing", False),
    ]
    assert h.sink.kinds() == [("firing", "mem", 95.0)]
    events = h.store.events(0, clock.time())
    assert [(e.rule, e.silenced) for e in events] == [("cpu", True), ("mem", False)]
    h.run(90, cpu=95.0, memory=95.0)  # silence ends at +100
    assert h.sink.kinds()[-1] == ("firing", "cpu", 95.0)
    h.run(61, cpu=10.0, memory=95.0)
    assert h.sink.kinds()[-1] == ("resolved", "cpu", 10.0)


def test_resolving_while_silenced_sends_nothing(harness: Any, clock: FakeClock) -> None:
    h = harness(cfg(rule(recovery_for="0s")))
    h.run(1, cpu=95.0)
    silence = h.store.add_silence({"severity": "warn*"}, clock.time() + 3600, "", clock.time())
    h.engine.set_silences([silence])
    h.run(1, cpu=10.0)
    assert [k for k, _, _ in h.sink.kinds()] == ["firing"]
    assert [e.kind for e in h.store.events(0, clock.time())] == ["firing", "resolved"]


def test_restart_while_firing_neither_loses_nor_resends_and_still_resolves(
    harness: Any, clock: FakeClock
) -> None:
    config = cfg(rule(**{"for": "5m"}))
    h = harness(config)
    h.run(301, cpu=95.0)
    assert h.sink.kinds() == [("firing", "cpu", 95.0)]
    h.store.close()

    clock.advance(30)  # the service is down for 30 s
    h2 = harness(config)
    assert h2.states() == [("cpu", "firing", {})]
    assert h2.engine.active()[0].since == h.engine.active()[0].since
    h2.run(600, cpu=95.0)
    assert h2.sink.sent == []  # not announced again
    h2.run(61, cpu=10.0)  # recovered for recovery_for (1m): 61 samples span 60 s
    assert h2.sink.kinds() == [("resolved", "cpu", 10.0)]
    resolved = h2.sink.sent[0][0]
    # since = the first breaching sample (t+1); resolved at t + 301 + 30 + 600 + 61
    assert resolved.duration_seconds == pytest.approx(301 + 30 + 600 + 61 - 1)
    assert [e.kind for e in h2.store.events(0, clock.time())] == ["firing", "resolved"]


def test_restart_keeps_the_pending_timer_and_the_repeat_schedule(
    harness: Any, clock: FakeClock
) -> None:
    config = cfg(rule(**{"for": "5m"}, repeat_interval="1h"))
    h = harness(config)
    h.run(200, cpu=95.0)
    h.store.close()
    h2 = harness(config)
    h2.run(100, cpu=95.0)  # 299 s after the first breach
    assert h2.sink.sent == []
    h2.run(1, cpu=95.0)
    assert [k for k, _, _ in h2.sink.kinds()] == ["firing"]
    h2.store.close()
    clock.advance(1800)
    h3 = harness(config)
    h3.run(1799, cpu=95.0)
    assert h3.sink.sent == []
    h3.run(1, cpu=95.0)
    assert [k for k, _, _ in h3.sink.kinds()] == ["repeat"]


def test_state_of_a_removed_rule_is_dropped_on_restart(harness: Any) -> None:
    h = harness(cfg(rule(), rule(name="mem", metric="memory.percent", threshold=90)))
    h.run(1, cpu=95.0, memory=95.0)
    h.store.close()
    h2 = harness(cfg(rule(name="mem", metric="memory.percent", threshold=90)))
    assert h2.states() == [("mem", "firing", {})]
    assert [s.rule for s in h2.store.load_states()] == ["mem"]


def test_samples_of_other_metrics_and_fields_are_ignored(harness: Any, clock: FakeClock) -> None:
    h = harness(cfg(rule()))
    clock.advance(1)
    h.engine.evaluate(
        Snapshot(
            clock.time(),
            {
                "cpu": Collected(
                    (Sample("cpu", "load_1", 99.0), Sample("cpu", "user_percent", 99.0))
                )
            },
        )
    )
    assert h.states() == []
