"""Slack incoming webhook: a short, readable message (host, rule, value, threshold,
duration, dashboard link). The fallback ``text`` carries the same facts for clients that
do not render blocks (mobile notifications, IRC bridges)."""

from __future__ import annotations

from sysmon.alerts.notifiers._http import JsonPoster
from sysmon.alerts.notifiers.base import Notification, subject, text_lines

_EMOJI = {"firing": ":rotating_light:", "repeat": ":warning:", "resolved": ":white_check_mark:"}


def slack_payload(n: Notification) -> dict[str, object]:
    head = f"{_EMOJI.get(n.kind, ':information_source:')} {subject(n)}"
    facts = "\n".join(f"*{label}:* {value}" for label, value in text_lines(n))
    if n.dashboard_url:
        facts += f"\n<{n.dashboard_url}|Open the dashboard>"
    return {
        "text": head + ("\n" + facts if facts else ""),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{head}*"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": facts}},
        ],
    }


class SlackNotifier:
    def __init__(self, name: str, url: str, timeout_seconds: float) -> None:
        self.name = name
        self._poster = JsonPoster(url, timeout_seconds)

    def send(self, notification: Notification) -> None:
        self._poster.post(slack_payload(notification))

    def close(self) -> None:
        self._poster.close()
