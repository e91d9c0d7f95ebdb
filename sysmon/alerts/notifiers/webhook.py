"""Generic JSON webhook: ``json_payload`` (versioned, stable field names) as the body.

Each post carries ``X-Sysmon-Delivery-Id`` (``delivery_id``): the same on every attempt at
one message, so a receiver can drop the copy a retry sends after an answer was lost.
"""

from __future__ import annotations

from sysmon.alerts.notifiers._http import JsonPoster
from sysmon.alerts.notifiers.base import (
    DELIVERY_ID_HEADER,
    Notification,
    delivery_id,
    json_payload,
)


class WebhookNotifier:
    def __init__(self, name: str, url: str, timeout_seconds: float) -> None:
        self.name = name
        self._poster = JsonPoster(url, timeout_seconds)

    def send(self, notification: Notification) -> None:
        self._poster.post(
            json_payload(notification),
            headers={DELIVERY_ID_HEADER: delivery_id(notification, self.name)},
        )

    def close(self) -> None:
        self._poster.close()
