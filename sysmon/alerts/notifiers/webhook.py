"""Generic JSON webhook: ``json_payload`` (versioned, stable field names) as the body."""

from __future__ import annotations

from sysmon.alerts.notifiers._http import JsonPoster
from sysmon.alerts.notifiers.base import Notification, json_payload


class WebhookNotifier:
    def __init__(self, name: str, url: str, timeout_seconds: float) -> None:
        self.name = name
        self._poster = JsonPoster(url, timeout_seconds)

    def send(self, notification: Notification) -> None:
        self._poster.post(json_payload(notification))

    def close(self) -> None:
        self._poster.close()
