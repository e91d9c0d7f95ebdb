"""The alert state machine, evaluated on the collection thread once per tick.

Per rule and series (a label set matched by the rule's selector)::

    inactive --breach--> pending --breach held for `for`--> firing
       ^                    |                                 |
       +---- no breach -----+       recovered (past recovery_threshold)
       ^                                  held for `recovery_for`
       +------------------- resolved <----------------------- +

* ``for: 0s`` fires on the first breaching sample.
* While pending, one sample that does not breach cancels (the condition must hold for
  the whole ``for``, as in Prometheus).
* While firing, a sample that breaches again restarts the recovery timer; with the
  default ``recovery_for`` of 1 min a value hovering at the threshold stays firing
  instead of flapping. ``recovery_threshold`` adds hysteresis on the value axis.
* Only ``firing`` and ``resolved`` are history events; ``pending`` lives in the state
  table so a restart does not restart the ``for`` timer.
* A series missing from its collector's result (unmounted disk, removed interface)
  cancels a pending alert and resolves a firing one after ``stale_after``. A collector
  that failed this tick yields no data: nothing changes (no data is not "recovered").

Durations are measured on the monotonic clock; the persisted times are wall-clock and
are turned back into monotonic ones when the state is loaded after a restart.

Cost per tick: one pass over the snapshot's samples to bucket the rule fields, then per
rule a dict lookup per matching series. The database is touched only on transitions.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase

from sysmon.alerts.notifiers.base import Kind, Notification
from sysmon.alerts.rules import CompiledRule, alert_labels
from sysmon.alerts.store import AlertEvent, AlertStore, Silence, StoredState
from sysmon.clock import Clock
from sysmon.errors import StorageError
from sysmon.models import Labels, Snapshot

log = logging.getLogger(__name__)

NotifySink = Callable[[Notification, tuple[str, ...]], None]


@dataclass(slots=True)
class SeriesState:
    """In-memory state of one (rule, series) that is pending or firing."""

    rule: CompiledRule
    labels: Labels
    state: str
    since: float
    since_mono: float
    value: float | None
    last_seen_mono: float
    firing_since: float | None = None
    recovering_since_mono: float | None = None
    notified: bool = False
    last_notified_at: float | None = None
    last_notified_mono: float | None = None
    firing_event_id: int | None = None
    silenced: bool = False
    alert_labels: dict[str, str] = field(default_factory=dict)

    def stored(self) -> StoredState:
        return StoredState(
            rule=self.rule.name,
            labels=self.labels,
            state=self.state,
            since=self.since,
            firing_since=self.firing_since,
            value=self.value,
            last_notified_at=self.last_notified_at,
            notified=self.notified,
            firing_event_id=self.firing_event_id,
        )


@dataclass(frozen=True, slots=True)
class ActiveAlert:
    rule: str
    state: str
    severity: str
    metric: str
    labels: dict[str, str]
    value: float | None
    threshold: float
    operator: str
    since: float
    firing_since: float | None
    silenced: bool
    last_notified_at: float | None


@dataclass(slots=True)
class _Tick:
    upsert: dict[tuple[int, Labels], SeriesState] = field(default_factory=dict)
    delete: list[tuple[str, Labels]] = field(default_factory=list)
    events: list[tuple[AlertEvent, SeriesState]] = field(default_factory=list)
    notify: list[tuple[Kind, SeriesState, float | None, int]] = field(default_factory=list)
    """(kind, state, value, index into events or -1 for repeats)."""


def silence_matches(silence: Silence, labels: dict[str, str]) -> bool:
    for key, pattern in silence.matchers.items():
        value = labels.get(key)
        if value is None or not fnmatchcase(value, pattern):
            return False
    return True


class AlertEngine:
    def __init__(
        self,
        rules: Sequence[CompiledRule],
        store: AlertStore,
        clock: Clock,
        sink: NotifySink,
        *,
        hostname: str,
        dashboard_url: str | None = None,
        stale_after: float = 300.0,
        send_resolved: Callable[[str], bool] | None = None,
        writer: Callable[[Callable[[], None]], None] | None = None,
    ) -> None:
        self._rules = list(rules)
        self._store = store
        self._clock = clock
        self._sink = sink
        self._hostname = hostname
        self._dashboard_url = dashboard_url
        self._stale_after = stale_after
        self._send_resolved = send_resolved or (lambda _channel: True)
        # ``writer`` runs the persistence + dispatch step of a tick; the service passes
        # a background thread's submit so the collection thread never waits on disk.
        # The default runs it inline (deterministic, for tests and tools).
        self._writer: Callable[[Callable[[], None]], None] = writer or (lambda job: job())
        self._states: dict[tuple[int, Labels], SeriesState] = {}
        self._by_rule: list[dict[Labels, SeriesState]] = [{} for _ in self._rules]
        self._wanted = {(r.metric, r.field) for r in self._rules}
        self._silences: list[Silence] = []
        self._lock = threading.Lock()
        self._store_failing = False

    # --- lifecycle ---------------------------------------------------------------------

    def load(self) -> None:
        """Restore pending/firing series from the store (after a restart)."""
        by_name = {r.name: r for r in self._rules}
        self._store.delete_rules_except(list(by_name))
        now, mono = self._clock.time(), self._clock.monotonic()

        def to_mono(wall: float | None) -> float | None:
            return None if wall is None else mono - max(0.0, now - wall)

        with self._lock:
            for st in self._store.load_states():
                rule = by_name.get(st.rule)
                if rule is None or st.state not in ("pending", "firing"):
                    continue
                state = SeriesState(
                    rule=rule,
                    labels=st.labels,
                    state=st.state,
                    since=st.since,
                    since_mono=mono - max(0.0, now - st.since),
                    value=st.value,
                    last_seen_mono=mono,
                    firing_since=st.firing_since,
                    notified=st.notified,
                    last_notified_at=st.last_notified_at,
                    last_notified_mono=to_mono(st.last_notified_at),
                    firing_event_id=st.firing_event_id,
                    alert_labels=alert_labels(rule, st.labels),
                )
                self._states[(rule.index, st.labels)] = state
                self._by_rule[rule.index][st.labels] = state
            self._silences = self._store.silences(now)
        if self._states:
            firing = sum(1 for s in self._states.values() if s.state == "firing")
            log.info(
                "alert state restored pending=%d firing=%d", len(self._states) - firing, firing
            )

    def set_silences(self, silences: Sequence[Silence]) -> None:
        with self._lock:
            self._silences = list(silences)

    # --- queries -----------------------------------------------------------------------

    def active(self) -> list[ActiveAlert]:
        with self._lock:
            states = list(self._states.values())
        return [
            ActiveAlert(
                rule=s.rule.name,
                state=s.state,
                severity=s.rule.config.severity,
                metric=s.rule.config.metric,
                labels=dict(s.labels),
                value=s.value,
                threshold=s.rule.threshold,
                operator=s.rule.config.operator,
                since=s.since,
                firing_since=s.firing_since,
                silenced=s.silenced,
                last_notified_at=s.last_notified_at,
            )
            for s in sorted(states, key=lambda s: (s.rule.index, s.labels))
        ]

    # --- evaluation --------------------------------------------------------------------

    def evaluate(self, snapshot: Snapshot) -> None:
        """Advance every (rule, series) with this tick's samples. Never raises for data."""
        now = snapshot.timestamp
        mono = self._clock.monotonic()
        buckets: dict[tuple[str, str], list[tuple[Labels, float]]] = {}
        wanted = self._wanted
        for collected in snapshot.results.values():
            for sample in collected.samples:
                key = (sample.metric, sample.field)
                if key in wanted:
                    bucket = buckets.get(key)
                    if bucket is None:
                        buckets[key] = bucket = []
                    bucket.append((sample.labels, sample.value))
        tick = _Tick()
        reported = snapshot.results
        with self._lock:
            self._expire_silences(now)
            for rule in self._rules:
                if rule.metric not in reported:
                    continue  # collector failed or disabled: no data, no change
                self._evaluate_rule(
                    rule, buckets.get((rule.metric, rule.field), ()), now, mono, tick
                )
        if tick.upsert or tick.delete or tick.events:
            self._commit(tick, now)

    def _evaluate_rule(
        self,
        rule: CompiledRule,
        series: Sequence[tuple[Labels, float]] | tuple[()],
        now: float,
        mono: float,
        tick: _Tick,
    ) -> None:
        rule_states = self._by_rule[rule.index]
        cfg = rule.config
        for labels, value in series:
            if not rule.matches(labels) or math.isnan(value):
                continue
            st = rule_states.get(labels)
            if st is None:
                if rule.breaches(value):
                    st = SeriesState(
                        rule=rule,
                        labels=labels,
                        state="pending",
                        since=now,
                        since_mono=mono,
                        value=value,
                        last_seen_mono=mono,
                        alert_labels=alert_labels(rule, labels),
                    )
                    rule_states[labels] = st
                    self._states[(rule.index, labels)] = st
                    if cfg.for_ <= 0:
                        self._fire(st, now, mono, value, tick)
                    else:
                        tick.upsert[(rule.index, labels)] = st
                continue
            st.value = value
            st.last_seen_mono = mono
            if st.state == "pending":
                if not rule.breaches(value):
                    self._drop(st, tick)
                elif mono - st.since_mono >= cfg.for_:
                    self._fire(st, now, mono, value, tick)
                continue
            # firing
            if rule.recovered(value):
                if st.recovering_since_mono is None:
                    st.recovering_since_mono = mono
                if mono - st.recovering_since_mono >= cfg.recovery_for:
                    self._resolve(st, now, value, tick)
                continue
            st.recovering_since_mono = None
            self._maybe_repeat(st, now, mono, value, tick)
        if len(rule_states) > 0:
            for st in list(rule_states.values()):
                if st.last_seen_mono == mono:
                    continue
                if st.state == "pending":
                    self._drop(st, tick)
                elif mono - st.last_seen_mono >= self._stale_after:
                    self._resolve(st, now, None, tick)

    def _is_silenced(self, st: SeriesState) -> bool:
        return any(silence_matches(s, st.alert_labels) for s in self._silences)

    def _expire_silences(self, now: float) -> None:
        if self._silences and any(s.until <= now for s in self._silences):
            self._silences = [s for s in self._silences if s.until > now]

    def _event(self, st: SeriesState, kind: str, now: float, value: float | None) -> AlertEvent:
        cfg = st.rule.config
        return AlertEvent(
            id=0,
            timestamp=now,
            kind=kind,
            rule=cfg.name,
            severity=cfg.severity,
            metric=cfg.metric,
            labels=dict(st.labels),
            value=value,
            threshold=cfg.threshold,
            operator=cfg.operator,
            since=st.since,
            silenced=st.silenced,
        )

    def _fire(self, st: SeriesState, now: float, mono: float, value: float, tick: _Tick) -> None:
        st.state = "firing"
        st.firing_since = now
        st.recovering_since_mono = None
        st.silenced = self._is_silenced(st)
        st.firing_event_id = -1  # filled in by the store in the same transaction
        tick.events.append((self._event(st, "firing", now, value), st))
        if not st.silenced:
            st.notified = True
            st.last_notified_at = now
            st.last_notified_mono = mono
            tick.notify.append(("firing", st, value, len(tick.events) - 1))
        tick.upsert[(st.rule.index, st.labels)] = st
        log.info(
            "alert firing rule=%s labels=%s value=%s silenced=%s",
            st.rule.name,
            dict(st.labels),
            value,
            st.silenced,
        )

    def _maybe_repeat(
        self, st: SeriesState, now: float, mono: float, value: float, tick: _Tick
    ) -> None:
        silenced = self._is_silenced(st)
        if silenced != st.silenced:
            st.silenced = silenced
            tick.upsert[(st.rule.index, st.labels)] = st
        if silenced:
            return
        if not st.notified:
            # Fired while silenced and the silence is over: announce it now.
            kind: Kind = "firing"
        elif (
            st.last_notified_mono is not None
            and mono - st.last_notified_mono >= st.rule.repeat_interval
        ):
            kind = "repeat"
        else:
            return
        st.notified = True
        st.last_notified_at = now
        st.last_notified_mono = mono
        tick.notify.append((kind, st, value, -1))
        tick.upsert[(st.rule.index, st.labels)] = st

    def _resolve(self, st: SeriesState, now: float, value: float | None, tick: _Tick) -> None:
        st.silenced = self._is_silenced(st)
        tick.events.append((self._event(st, "resolved", now, value), st))
        if st.notified and not st.silenced:
            tick.notify.append(("resolved", st, value, len(tick.events) - 1))
        self._drop(st, tick)
        log.info("alert resolved rule=%s labels=%s value=%s", st.rule.name, dict(st.labels), value)

    def _drop(self, st: SeriesState, tick: _Tick) -> None:
        key = (st.rule.index, st.labels)
        self._states.pop(key, None)
        self._by_rule[st.rule.index].pop(st.labels, None)
        tick.upsert.pop(key, None)
        tick.delete.append((st.rule.name, st.labels))

    def _commit(self, tick: _Tick, now: float) -> None:
        """Freeze this tick's changes and hand them to the writer.

        Everything the write needs is copied here, on the collection thread, so the
        writer (a background thread in the service) never reads mutable state.
        """
        upsert = [s.stored() for s in tick.upsert.values()]
        events = [e for e, _ in tick.events]
        firing_states = [(i, st) for i, (e, st) in enumerate(tick.events) if e.kind == "firing"]
        outgoing: list[tuple[Notification, tuple[str, ...], int]] = []
        for kind, st, value, event_index in tick.notify:
            cfg = st.rule.config
            channels = st.rule.channels
            if kind == "resolved":
                channels = tuple(c for c in channels if self._send_resolved(c))
            if not channels:
                continue
            notification = Notification(
                kind=kind,
                rule=cfg.name,
                severity=cfg.severity,
                metric=cfg.metric,
                operator=cfg.operator,
                threshold=cfg.threshold,
                value=value,
                labels=dict(st.labels),
                since=st.since,
                timestamp=now,
                hostname=self._hostname,
                dashboard_url=self._dashboard_url,
                description=cfg.description,
                event_id=st.firing_event_id if event_index < 0 else None,
                extra=dict(cfg.labels),
            )
            outgoing.append((notification, channels, event_index))
        delete = list(tick.delete)

        def write() -> None:
            ids: list[int] = []
            try:
                ids = self._store.record(upsert=upsert, delete=delete, events=events)
                if self._store_failing:
                    log.info("alert store writable again")
                    self._store_failing = False
            except StorageError as exc:
                # Notifications still go out; only history/persistence is lost this tick.
                if not self._store_failing:
                    log.error("cannot persist alert state error=%s", exc)
                    self._store_failing = True
            for index, st in firing_states:
                st.firing_event_id = ids[index] if ids else None
            for notification, channels, event_index in outgoing:
                if event_index >= 0:
                    event_id = ids[event_index] if ids else None
                    notification = replace(notification, event_id=event_id)
                self._sink(notification, channels)

        self._writer(write)
