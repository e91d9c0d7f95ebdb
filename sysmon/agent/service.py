"""``Agent``: collection, storage and alerting wired together for one data directory.

    agent = Agent(settings)          # parts not given are built from the settings
    agent.start()                    # open the store, start threads, publish ticks
    ...
    agent.stop()                     # stop ticks, flush the writer, close everything

Per tick (metronome thread): every collector on its own thread (``Collection``), then
alert evaluation (no network: notifications go to channel workers), then the live frame
to every server (``TickPublisher``, non-blocking), then the snapshot to the store writer
(its own thread). ``start(schedule=False)`` leaves ticking to the caller and writes
inline, so tests drive ``tick()`` with a fake clock and read the store right after.
"""

from __future__ import annotations

import logging
import os
import platform
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sysmon import __version__
from sysmon.agent.collection import Collection, Metronome, Streak
from sysmon.agent.forward import Forwarding
from sysmon.agent.gaps import GapLog
from sysmon.agent.integrity import IntegrityWatch
from sysmon.agent.reload import ReloadPlan, plan_reload
from sysmon.agent.writer import BufferedWriter
from sysmon.alerts.service import AlertService
from sysmon.catalog import metric_catalog
from sysmon.channel import TickPublisher, encode_frame, socket_path
from sysmon.clock import Clock, SystemClock
from sysmon.collectors.registry import CollectorRegistry, discover
from sysmon.config import Settings, public_url
from sysmon.fanout import agent_fanout
from sysmon.models import Snapshot
from sysmon.sentry import install_sentry
from sysmon.serialize import RowJSON, snapshot_json, to_json_bytes, with_member
from sysmon.storage.base import TimeSeriesStore
from sysmon.telemetry import tick_tracer

logger = logging.getLogger(__name__)


def build_store(settings: Settings, clock: Clock) -> TimeSeriesStore:
    from sysmon.storage.factory import open_store

    return open_store(settings, clock, readonly=False)


def _host_facts(source: Any) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "hostname": socket.gethostname(),
        "os": f"{platform.system()} {platform.release()}",
    }
    getters: dict[str, Callable[[], Any]] = {
        "boot_time": source.boot_time,
        "cpu_count": lambda: source.cpu_count(logical=True),
        "cpu_count_physical": lambda: source.cpu_count(logical=False),
    }
    for key, getter in getters.items():
        try:
            facts[key] = getter()
        except Exception:  # a missing sensor is not a reason to refuse to start
            facts[key] = None
    return facts


class Agent:
    def __init__(
        self,
        settings: Settings,
        *,
        source: Any = None,
        clock: Clock | None = None,
        store: TimeSeriesStore | None = None,
        registry: CollectorRegistry | None = None,
        channel: Path | None = None,
        forwarding: Forwarding | None = None,
        migrate_in_child: bool = False,
    ) -> None:
        """``migrate_in_child``: table migrations run in a child process, so Alembic
        never stays in this one (``sysmon agent`` sets it; in-process tests need not)."""
        from sysmon.collectors.source import PsutilSource

        self.settings = settings
        self._migrate_in_child = migrate_in_child
        self.clock = clock or SystemClock()
        self.registry = registry or discover(plugins=settings.collection.plugins)
        self.integer_fields = metric_catalog(self.registry).integer_fields
        """Per metric, the fields ``/current`` writes as JSON integers (``sysmon.catalog``)."""
        self._own_source = source is None
        self.source = source if source is not None else PsutilSource()
        collectors = self.registry.build(settings.collectors, self.source)
        deadline = settings.collection.deadline_seconds
        self.collection = Collection(
            collectors,
            self.clock,
            deadline,
            GapLog(collectors),
            deadlines=_collector_deadlines(settings, collectors),
        )
        self.store = store or build_store(settings, self.clock)
        self.writer = BufferedWriter(
            self.store, settings.database.write_buffer_max_ticks, self.clock
        )
        self.forwarding = forwarding or Forwarding.from_settings(settings, self.clock)
        """Remote copies (``forward:``), each with its own thread and on-disk queue."""
        self.alerts = AlertService.from_settings(
            settings.alerts,
            settings.database.path,
            self.clock,
            dashboard_url=public_url(settings.server),
            hostname=settings.agent.host_name,  # the host name the stores write (agent.host)
            relational_url=settings.relational.resolved_url(),
            tasks=settings.tasks,
            migrate_in_child=migrate_in_child,
        )
        self.publisher = TickPublisher(
            channel or socket_path(settings.database.path, settings.agent.socket)
        )
        self._alerts_dump: tuple[object, dict[str, Any]] | None = None
        self._row_json = RowJSON()
        """Process rows encoded once while unchanged (the frame's and ``/current``'s)."""
        self.fanout = agent_fanout(settings)
        """Every frame also to Redis (``redis.url``; ``sysmon.fanout``), else None."""
        self.tracer = tick_tracer(settings)
        """Tick spans over OTLP (``telemetry.otlp_endpoint``), else a no-op."""
        self.integrity: IntegrityWatch | None = None
        """Watches the SQLite file; another backend has no file of ours to check (its
        health is ``ping`` and write errors), and a watch there would report the
        missing file forever."""
        if settings.database.backend == "sqlite":
            self.integrity = IntegrityWatch(
                str(settings.database.path), settings.agent.integrity_check_seconds
            )
        self.metronome = Metronome(settings.collection.interval_seconds, self.clock, self.tick)
        self.host = _host_facts(self.source)
        self._threaded = False
        self._tick_lock = threading.Lock()
        self._alerting = Streak("alert evaluation", logging.ERROR)
        self._publishing = Streak("live tick publishing", logging.ERROR)
        self.config_generation = 0
        """Counts applied reloads (health shows it; the server re-reads rules on change)."""
        self.started_at: float | None = None

    # --- lifecycle -----------------------------------------------------------------------

    def start(self, schedule: bool = True) -> None:
        install_sentry("agent", self.settings)  # only with $SYSMON_SENTRY_DSN
        self.store.open()
        _private_file(str(self.settings.database.path))
        if self.integrity is not None:
            self.integrity.check(full=True)
        self.alerts.start()
        self.forwarding.start(threaded=schedule)  # before hello: it shows what is queued
        self.publisher.start()
        if self.fanout is not None:
            self.fanout.start()
        self.started_at = self.clock.time()
        self._send_frame({"type": "hello", "status": self.status(self.started_at)}, b"")
        self._threaded = schedule
        if schedule:
            self.writer.start()
            if self.integrity is not None:
                self.integrity.start()
            # A baseline run primes counters, so the first tick has every rate.
            self.collection.tick(self.clock.time())
            self.collection.gaps = GapLog(self.collection.names)
            self.metronome.start()
        logger.info(
            "sysmon agent %s (pid %d) collecting %s every %ss into %s; live ticks on %s",
            __version__,
            os.getpid(),
            ",".join(self.collection.names),
            self.settings.collection.interval_seconds,
            self.settings.database.path,
            self.publisher.path,
        )

    def stop(self) -> None:
        """Stop in dependency order; each step runs even if an earlier one failed (a
        start that failed half-way is stopped by the same call)."""
        steps: list[tuple[str, Callable[[], object]]] = [
            ("metronome", self.metronome.stop),
            ("collectors", self.collection.close),
            ("publisher", self.publisher.close),
            ("redis fan-out", self.fanout.close if self.fanout is not None else _nothing),
            ("tracer", self.tracer.shutdown),
            ("integrity watch", self._stop_integrity),
            ("store writer", self.writer.stop),
            ("forwarders", self.forwarding.stop),
            ("alerts", self.alerts.stop),
            ("store", self.store.close),
        ]
        if self._own_source:
            close = getattr(self.source, "close", None)
            if callable(close):
                steps.insert(2, ("system source", close))
        for what, step in steps:
            try:
                step()
            except Exception:
                logger.exception("stopping the %s failed", what)
        logger.info("sysmon agent stopped (pid %d)", os.getpid())

    # --- one tick ------------------------------------------------------------------------

    def _stop_integrity(self) -> None:
        if self.integrity is not None:
            self.integrity.stop()

    def tick(self, ts: float | None = None) -> Snapshot:
        """Collect, evaluate alerts, publish, hand to the writer (see the module doc)."""
        stamp = self.clock.time() if ts is None else ts
        with self._tick_lock, self.tracer.tick(stamp) as trace:
            try:
                snapshot = self._tick(stamp)
            except Exception as exc:  # every collector's sample of this tick is lost: say so
                reason = f"tick failed: {type(exc).__name__}: {exc}"[:300]
                for name in self.collection.names:
                    self.collection.gaps.record(name, stamp, reason)
                raise
            trace.collected(snapshot, self.collection.durations())
            return snapshot

    def _tick(self, stamp: float) -> Snapshot:
        """A failure of the alerts or of the live frame is logged (once per streak) and
        costs only that step: the snapshot is still stored and forwarded."""
        snapshot = self.collection.tick(stamp)
        self._guarded(self._alerting, self.alerts.consume, snapshot)
        if self._threaded:
            # live first; the writer thread stores it meanwhile
            self._guarded(self._publishing, self.publish, snapshot)
            self.writer.submit(snapshot)
            self.forwarding.submit(snapshot)
        else:
            self.writer.submit(snapshot)  # inline: the frame then shows the write's outcome
            self.writer.step()
            self.forwarding.submit(snapshot)
            self.forwarding.step()
            self._guarded(self._publishing, self.publish, snapshot)
        return snapshot

    @staticmethod
    def _guarded(streak: Streak, step: Callable[[Snapshot], None], snapshot: Snapshot) -> None:
        try:
            step(snapshot)
        except Exception as exc:
            streak.fail(f"{type(exc).__name__}: {exc}"[:300], exc_info=True)
        else:
            streak.ok()

    def publish(self, snapshot: Snapshot) -> None:
        shown = self.settings.api.current_process_rows
        self._row_json.rotate()
        body = snapshot_json(snapshot, shown, self.integer_fields, self._row_json)
        table = snapshot.results.get("processes")
        meta = {
            "type": "tick",
            "timestamp": snapshot.timestamp,
            "interval": self.settings.collection.interval_seconds,
            "generation": self.writer.generation,
            "status": {**self.status(snapshot.timestamp), "errors": dict(snapshot.errors)},
        }
        rows = self._row_json.encode(table.rows if table is not None else ())
        self._send_frame(with_member(to_json_bytes(meta), "processes", rows), body)

    def _send_frame(self, meta: dict[str, Any] | bytes, body: bytes) -> None:
        """One frame, encoded once, to the Unix socket's servers and, when configured,
        to Redis."""
        frame = encode_frame(meta, body)
        self.publisher.publish_frame(frame)
        if self.fanout is not None:
            self.fanout.publish_frame(frame)

    def status(self, now: float) -> dict[str, Any]:
        stats = self.store.stats()
        durations = self.collection.durations()
        return {
            "agent": {
                "pid": os.getpid(),
                "version": __version__,
                "started_at": self.started_at,
                "ticks": self.collection.ticks,
                "overruns": self.metronome.overruns,
                "tick_lateness_ms": self.metronome.lateness_ms(),
                "live_channel_clients": self.publisher.client_count,
                "live_redis": None if self.fanout is None else self.fanout.status(),
            },
            "host": {**self.host, "collectors": self.collection.names},
            "collectors": {
                name: {**report, "last_duration_ms": _ms(durations.get(name))}
                for name, report in self.collection.gaps.report(now).items()
            },
            "missing": self.collection.gaps.missing_now(now),
            "database": {
                "backend": stats.backend,
                "path": stats.path,
                "size_bytes": stats.size_bytes,
                "pending_writes": self.writer.pending,
                "dropped_ticks": self.writer.dropped,
                "last_error": self.writer.last_error,
                "integrity": None if self.integrity is None else self.integrity.status(),
            },
            "alerts": {
                "enabled": self.alerts.config.enabled,
                "active": [_active_json(a) for a in self.alerts.active()],
                "config": self._alerts_config(),
            },
            "config_generation": self.config_generation,
            "forward": self.forwarding.status(now),
        }

    def _alerts_config(self) -> dict[str, Any]:
        """The alert configuration as JSON data, dumped once per configuration (the
        status goes out every tick; pydantic's dump cost ~70 µs of it)."""
        config = self.alerts.config
        if self._alerts_dump is None or self._alerts_dump[0] is not config:
            self._alerts_dump = (config, config.model_dump(mode="json", by_alias=True))
        return self._alerts_dump[1]

    # --- reload ------------------------------------------------------------------------

    def reload(self, new: Settings) -> ReloadPlan:
        """Apply ``new`` where it can be applied live; raises ``ConfigError`` (and changes
        nothing) when the new configuration is bad. See ``sysmon.agent.reload``."""
        built = self.registry.build(new.collectors, self.source)  # validates options
        try:
            plan = plan_reload(self.settings, new, set(self.collection.names), set(built))
            deadlines = _collector_deadlines(new, built)
            fresh = None
            if plan.alerts_changed:
                fresh = AlertService.from_settings(  # resolves channel secrets: may raise
                    new.alerts,
                    new.database.path,
                    self.clock,
                    dashboard_url=public_url(new.server),
                    hostname=new.agent.host_name,
                    relational_url=new.relational.resolved_url(),
                    tasks=new.tasks,
                    migrate_in_child=self._migrate_in_child,
                )
        except Exception:
            for collector in built.values():
                collector.close()
            raise
        swap = {n: built.pop(n) for n in (*plan.collectors_rebuilt, *plan.collectors_added)}
        for collector in built.values():  # unchanged: the running instance stays
            collector.close()
        old_alerts = self.alerts
        with self._tick_lock:  # between two ticks: no tick sees half a reload
            # The interval needs a restart; until then deadlines stay below the old one.
            same_interval = (
                new.collection.interval_seconds == self.settings.collection.interval_seconds
            )
            deadline = (
                new.collection.deadline_seconds
                if same_interval
                else self.settings.collection.deadline_seconds
            )
            self.collection.reconfigure(swap, plan.collectors_removed, deadline, deadlines)
            if fresh is not None:
                old_alerts.flush()  # the new engine loads the state the old one stored
                fresh.start()
                self.alerts = fresh
            self.settings = new
            self.config_generation += 1
        if fresh is not None:
            old_alerts.stop()
        logger.info(
            "configuration reloaded: alerts %s; collectors rebuilt=%s added=%s removed=%s%s",
            "changed" if plan.alerts_changed else "unchanged",
            ",".join(plan.collectors_rebuilt) or "-",
            ",".join(plan.collectors_added) or "-",
            ",".join(plan.collectors_removed) or "-",
            f"; needs a restart to change: {', '.join(plan.needs_restart)}"
            if plan.needs_restart
            else "",
        )
        return plan


def _nothing() -> None:
    return None


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def _active_json(alert: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(alert)


def _collector_deadlines(settings: Settings, collectors: dict[str, Any]) -> dict[str, float]:
    """``collectors.<name>.timeout_seconds`` where given (each below the interval)."""
    from sysmon.errors import ConfigError

    out: dict[str, float] = {}
    interval = settings.collection.interval_seconds
    for name in collectors:
        value = (settings.collectors.get(name) or {}).get("timeout_seconds")
        if value is None:
            continue
        if not 0 < float(value) < interval:
            raise ConfigError(
                f"collectors.{name}.timeout_seconds",
                f"must be above 0 and below collection.interval_seconds ({interval})",
            )
        out[name] = float(value)
    return out


def _private_file(path: str) -> None:
    """The database holds command lines: 0600, whatever the umask was when created."""
    for suffix in ("", "-wal", "-shm"):
        try:
            os.chmod(path + suffix, 0o600)
        except FileNotFoundError:
            continue
        except OSError as exc:
            logger.warning("cannot make %s private: %s", path + suffix, exc.strerror)
