"""The alert API's backend in the server process.

The agent evaluates rules and sends notifications; the server answers the alert routes
from what the agent shares: active alerts from the latest tick frame, history and
silences from the database (``AlertStore`` opened without creating anything). A silence
written here is read by the agent at its next tick. A test message is sent from here,
once, through the same notifier classes and channel secrets the agent uses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sysmon.alerts.config import AlertsConfig, resolve_environ
from sysmon.alerts.engine import ActiveAlert
from sysmon.alerts.notifiers.base import DeliveryError
from sysmon.alerts.rules import CompiledRule, compile_rules
from sysmon.alerts.service import (
    ChannelDisabledError,
    HistoryEntry,
    UnknownChannelError,
    build_notifier,
    history_entries,
    test_notification,
)
from sysmon.alerts.store import AlertStore, Silence
from sysmon.api.feed import TickFeed
from sysmon.clock import Clock


class AlertsView:
    def __init__(
        self,
        config: AlertsConfig,
        store: AlertStore,
        feed: TickFeed,
        clock: Clock,
        *,
        hostname: Callable[[], str],
        dashboard_url: str | None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._config = config
        self._rules: list[CompiledRule] = compile_rules(config)
        self._seen: dict[str, Any] | None = None
        self._store = store
        self._feed = feed
        self._clock = clock
        self._hostname = hostname
        self._dashboard_url = dashboard_url
        self._environ = environ

    def _refresh(self) -> None:
        """Follow the agent's live configuration (it changes on a reload)."""
        shared = self._feed.status.get("alerts", {}).get("config")
        if not shared or shared == self._seen:
            return
        config = AlertsConfig.model_validate(shared)
        self._config, self._rules, self._seen = config, compile_rules(config), shared

    @property
    def config(self) -> AlertsConfig:
        self._refresh()
        return self._config

    @property
    def rules(self) -> list[CompiledRule]:
        self._refresh()
        return self._rules

    def thresholds(self) -> dict[str, dict[str, float]]:
        """Warning/critical level per ``metric.field`` from upper-bound rules (UI colours)."""
        out: dict[str, dict[str, float]] = {}
        for rule in self.config.rules:
            if rule.operator not in (">", ">="):
                continue
            level = out.setdefault(rule.metric, {})
            level[rule.severity] = min(rule.threshold, level.get(rule.severity, float("inf")))
        return out

    def close(self) -> None:
        self._store.close()

    def clock_time(self) -> float:
        return self._clock.time()

    def active(self) -> list[ActiveAlert]:
        found: list[dict[str, Any]] = self._feed.status.get("alerts", {}).get("active", [])
        return [ActiveAlert(**a) for a in found]

    def history(self, start: float, end: float, limit: int = 1000) -> list[HistoryEntry]:
        return history_entries(self._store, start, end, limit)

    def channel_types(self) -> dict[str, str]:
        return {name: cfg.type for name, cfg in self.config.channels.items()}

    def silences(self) -> list[Silence]:
        return self._store.silences(self._clock.time())

    def add_silence(self, matchers: Mapping[str, str], until: float, comment: str) -> Silence:
        return self._store.add_silence(matchers, until, comment, self._clock.time())

    def delete_silence(self, silence_id: int) -> bool:
        return self._store.delete_silence(silence_id)

    def send_test(self, channel: str, timeout: float | None = None) -> None:
        """One attempt, now; raises ``DeliveryError`` when the channel refuses."""
        cfg = self.config.channels.get(channel)
        if cfg is None:
            raise UnknownChannelError(channel)
        if not cfg.enabled:
            raise ChannelDisabledError(channel)
        notifier = build_notifier(channel, cfg, resolve_environ(self._environ))
        try:
            notifier.send(
                test_notification(self._clock.time(), self._hostname(), self._dashboard_url)
            )
        except DeliveryError:
            raise
        except Exception as exc:  # a notifier bug must answer 502, not 500
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from None
        finally:
            notifier.close()
