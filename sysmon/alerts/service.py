"""``AlertService``: the one object the app factory wires.

    service = AlertService.from_settings(settings.alerts, settings.database.path, clock,
                                         settings.server.dashboard_url, socket.gethostname())
    service.start()                 # lifespan start-up: open the DB, restore state, workers
    service.evaluate(snapshot)      # collection thread, every tick (fast, no network)
    app.state.alerts = service      # read by sysmon/api/routes/alerts.py
    service.stop()                  # lifespan shutdown

``from_settings`` resolves channel secrets from the environment and raises
``ConfigError`` (naming the key) when one is missing, so a broken channel fails the
start-up rather than the first alert at 3 a.m.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sysmon.alerts.config import (
    AlertmanagerChannelConfig,
    AlertsConfig,
    ChannelConfig,
    EmailChannelConfig,
    SlackChannelConfig,
    resolve_environ,
)
from sysmon.alerts.dispatcher import ChannelPolicy, ChannelWorker, Dispatcher
from sysmon.alerts.engine import ActiveAlert, AlertEngine
from sysmon.alerts.notifiers.alertmanager import AlertmanagerNotifier
from sysmon.alerts.notifiers.base import DeliveryError, Notification, Notifier
from sysmon.alerts.notifiers.email import EmailNotifier
from sysmon.alerts.notifiers.slack import SlackNotifier
from sysmon.alerts.notifiers.webhook import WebhookNotifier
from sysmon.alerts.rules import CompiledRule, compile_rules
from sysmon.alerts.store import AlertEvent, AlertStore, Delivery, Silence
from sysmon.alerts.writer import BackgroundWriter
from sysmon.clock import Clock
from sysmon.errors import StorageError
from sysmon.models import Snapshot
from sysmon.tasks.config import TasksConfig

log = logging.getLogger(__name__)

_PRUNE_EVERY_SECONDS = 3600.0


class UnknownChannelError(KeyError):
    pass


class ChannelDisabledError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    event: AlertEvent
    deliveries: list[Delivery]


def build_notifier(name: str, cfg: ChannelConfig, environ: Mapping[str, str]) -> Notifier:
    """A notifier for one channel; secrets are resolved here, once."""
    if isinstance(cfg, EmailChannelConfig):
        return EmailNotifier(name, cfg, cfg.resolve_password(name, environ))
    url = cfg.resolve_url(name, environ)
    if isinstance(cfg, SlackChannelConfig):
        return SlackNotifier(name, url, cfg.timeout_seconds)
    if isinstance(cfg, AlertmanagerChannelConfig):
        return AlertmanagerNotifier(name, url, cfg)
    return WebhookNotifier(name, url, cfg.timeout_seconds)


def test_notification(now: float, hostname: str, dashboard_url: str | None) -> Notification:
    """The message ``POST /alerts/test`` sends (agent's service and server's view alike)."""
    return Notification(
        kind="test",
        rule="test",
        severity="info",
        metric="",
        operator="",
        threshold=0.0,
        value=None,
        labels={},
        since=now,
        timestamp=now,
        hostname=hostname,
        dashboard_url=dashboard_url,
    )


def history_entries(store: AlertStore, start: float, end: float, limit: int) -> list[HistoryEntry]:
    """Stored events between ``start`` and ``end`` with their delivery attempts."""
    events = store.events(start, end, limit)
    deliveries = store.deliveries([e.id for e in events])
    return [HistoryEntry(e, deliveries.get(e.id, [])) for e in events]


def _celery_delivery(
    tasks: TasksConfig, environ: Mapping[str, str]
) -> Callable[[Dispatcher], Dispatcher]:
    def wrap(local: Dispatcher) -> Dispatcher:
        from sysmon.tasks.delivery import celery_dispatcher  # Celery only when configured

        return celery_dispatcher(tasks, local, environ)

    return wrap


class AlertService:
    def __init__(
        self,
        config: AlertsConfig,
        store: AlertStore,
        notifiers: Mapping[str, Notifier],
        clock: Clock,
        *,
        hostname: str,
        dashboard_url: str | None = None,
        delivery: Callable[[Dispatcher], Dispatcher] | None = None,
    ) -> None:
        """``delivery``: wraps the in-process dispatcher (Celery tasks, ``sysmon.tasks``)."""
        self.config = config
        self._store = store
        self._clock = clock
        self.hostname = hostname
        self.dashboard_url = dashboard_url
        self.rules: list[CompiledRule] = compile_rules(config)
        workers = {
            name: ChannelWorker(
                notifier,
                ChannelPolicy(
                    retries=config.channels[name].retries,
                    backoff_seconds=config.channels[name].backoff_seconds,
                    queue_size=config.channels[name].queue_size,
                ),
                clock,
                on_delivery=self._record_delivery,
            )
            for name, notifier in notifiers.items()
        }
        local = Dispatcher(workers)
        self.dispatcher = delivery(local) if delivery is not None else local
        self._notifiers = dict(notifiers)
        self._writer = BackgroundWriter()
        self.engine = AlertEngine(
            self.rules,
            store,
            clock,
            self.dispatcher.submit,
            hostname=hostname,
            dashboard_url=dashboard_url,
            stale_after=config.stale_after,
            send_resolved=lambda c: config.channels[c].send_resolved,
            writer=self._writer.submit,
        )
        self._started = False
        self._last_prune = float("-inf")

    @classmethod
    def from_settings(
        cls,
        settings_alerts: AlertsConfig,
        db_path: str,
        clock: Clock,
        dashboard_url: str | None,
        hostname: str,
        environ: Mapping[str, str] | None = None,
        *,
        relational_url: str | None = None,
        tasks: TasksConfig | None = None,
        migrate_in_child: bool = False,
    ) -> AlertService:
        """``relational_url``: the PostgreSQL database of ``relational.url`` for the
        alert tables (None: the ``alert_*`` tables of the SQLite file ``db_path``).
        ``tasks`` with a ``broker_url``: notifications go out as Celery tasks.
        ``migrate_in_child``: see ``AlertStore`` (the agent sets it)."""
        env = resolve_environ(environ)
        notifiers = {
            name: build_notifier(name, cfg, env)
            for name, cfg in settings_alerts.channels.items()
            if cfg.enabled
        }
        return cls(
            settings_alerts,
            AlertStore(db_path, url=relational_url, migrate_in_child=migrate_in_child),
            notifiers,
            clock,
            hostname=hostname,
            dashboard_url=dashboard_url,
            delivery=_celery_delivery(tasks, env) if tasks is not None and tasks.enabled else None,
        )

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        self._store.open()
        self.engine.load()
        self._resume_notifiers()
        self._prune()
        self.dispatcher.start()
        self._writer.start()
        self._started = True
        log.info(
            "alerting started rules=%d channels=%s enabled=%s",
            len(self.rules),
            ",".join(self.dispatcher.channels) or "-",
            self.config.enabled,
        )

    def evaluate(self, snapshot: Snapshot) -> None:
        """Collection-thread hook: never blocks on the network, never raises."""
        if not self.config.enabled or not self._started:
            return
        try:
            # Silences are written by the server process: checked every tick (re-read
            # when the file changed), so a silence added through the API applies at once.
            self.engine.set_silences(self._store.silences_now(self._clock.time()))
            self.engine.evaluate(snapshot)
            if snapshot.timestamp - self._last_prune >= _PRUNE_EVERY_SECONDS:
                self._prune()
        except Exception:
            log.exception("alert evaluation failed")

    def consume(self, snapshot: Snapshot) -> None:
        """The scheduler's ``Consumer`` protocol: same as ``evaluate``."""
        self.evaluate(snapshot)

    def stop(self, timeout: float = 5.0) -> None:
        if self._started:
            self._writer.stop(timeout)  # persist (and dispatch) what the last ticks did
            self.dispatcher.stop(timeout)
        self._store.close()
        self._started = False

    # --- API helpers -------------------------------------------------------------------

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until the state changes of past ticks are stored and handed to channels."""
        return self._writer.flush(timeout)

    def clock_time(self) -> float:
        """Wall-clock now, from the injected clock (API defaults use it)."""
        return self._clock.time()

    def active(self) -> list[ActiveAlert]:
        return self.engine.active()

    def history(self, start: float, end: float, limit: int = 1000) -> list[HistoryEntry]:
        """Stored events; the last tick's may still be in the writer queue (ms)."""
        return history_entries(self._store, start, end, limit)

    def channel_types(self) -> dict[str, str]:
        return {name: cfg.type for name, cfg in self.config.channels.items()}

    def silences(self) -> list[Silence]:
        return self._store.silences(self._clock.time())

    def add_silence(self, matchers: Mapping[str, str], until: float, comment: str) -> Silence:
        silence = self._store.add_silence(matchers, until, comment, self._clock.time())
        self.engine.set_silences(self._store.silences(self._clock.time()))
        return silence

    def delete_silence(self, silence_id: int) -> bool:
        deleted = self._store.delete_silence(silence_id)
        if deleted:
            self.engine.set_silences(self._store.silences(self._clock.time()))
        return deleted

    def send_test(self, channel: str, timeout: float | None = None) -> None:
        """Send a test message now (one attempt); raises ``DeliveryError`` on failure."""
        cfg = self.config.channels.get(channel)
        if cfg is None:
            raise UnknownChannelError(channel)
        if not cfg.enabled or channel not in self.dispatcher.channels:
            raise ChannelDisabledError(channel)
        notification = test_notification(self._clock.time(), self.hostname, self.dashboard_url)
        future = self.dispatcher.submit_one(channel, notification, retries=0)
        wait = timeout if timeout is not None else cfg.timeout_seconds * 2 + 5
        try:
            future.result(timeout=wait)
        except TimeoutError:
            raise DeliveryError(f"no answer within {wait:g}s (channel busy or hanging)") from None

    def _resume_notifiers(self) -> None:
        """Tell channels that keep state on the far side (Alertmanager re-posts its firing
        alerts) which alerts were already announced before this start, so a restart does
        not let them expire there until the next repeat."""
        now = self._clock.time()
        by_name = {rule.config.name: rule.config for rule in self.rules}
        for name, notifier in self._notifiers.items():
            resume = getattr(notifier, "resume", None)
            if resume is None:
                continue
            announced = []
            for alert in self.engine.active():
                rule = by_name.get(alert.rule)
                if (
                    rule is None
                    or alert.state != "firing"
                    or alert.silenced
                    or alert.last_notified_at is None
                    or name not in self.config.channels_for(rule)
                ):
                    continue
                announced.append(
                    Notification(
                        kind="repeat",
                        rule=alert.rule,
                        severity=alert.severity,
                        metric=alert.metric,
                        operator=alert.operator,
                        threshold=alert.threshold,
                        value=alert.value,
                        labels=dict(alert.labels),
                        since=alert.since,
                        timestamp=now,
                        hostname=self.hostname,
                        dashboard_url=self.dashboard_url,
                        description=rule.description,
                        extra=dict(rule.labels),
                    )
                )
            resume(announced)

    def _record_delivery(self, delivery: Delivery) -> None:
        if delivery.event_id is not None:
            self._store.add_delivery(delivery)

    def _prune(self) -> None:
        now = self._clock.time()
        self._last_prune = now
        try:
            removed = self._store.prune(now - self.config.history_keep)
        except StorageError as exc:
            log.warning("cannot prune alert history error=%s", exc)
            return
        if removed:
            log.info("alert history pruned events=%d", removed)
