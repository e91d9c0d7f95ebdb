"""The notifier contract and the message every channel renders.

Lifecycle guarantees (kept by ``Dispatcher``):

* Each channel has its own worker thread; ``send`` is only ever called from that thread,
  one message at a time, so a notifier needs no locking and a slow or hanging channel
  delays nobody else.
* ``send`` must bound its own time with the channel's ``timeout_seconds`` and raise
  ``NotifierError`` on failure; ``retryable=False`` stops the retries (a 4xx other than
  408/429 will not get better by waiting). Retries and backoff are the dispatcher's job.
* Error messages must never contain secrets (webhook URLs, passwords): the dispatcher
  logs them verbatim.
* ``close`` is called once, after the last ``send``.
"""

from __future__ import annotations

import hashlib
import html
import time
from dataclasses import dataclass, field
from typing import Literal, Protocol

from sysmon.alerts.config import format_duration
from sysmon.errors import NotifierError

Kind = Literal["firing", "repeat", "resolved", "test"]


class DeliveryError(NotifierError):
    """One failed attempt. ``status`` is the HTTP/SMTP code when there was one."""

    def __init__(self, message: str, *, retryable: bool = True, status: int | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.status = status


@dataclass(frozen=True, slots=True)
class Notification:
    """Everything a channel needs to tell a human what happened (plain data)."""

    kind: Kind
    rule: str
    severity: str
    metric: str
    operator: str
    threshold: float
    value: float | None
    labels: dict[str, str]
    since: float
    """Wall time the condition started (pending start); durations are measured from it."""
    timestamp: float
    """Wall time of this event."""
    hostname: str
    dashboard_url: str | None = None
    description: str = ""
    event_id: int | None = None
    extra: dict[str, str] = field(default_factory=dict)
    """The rule's own ``labels`` (team, runbook, ...)."""

    @property
    def duration_seconds(self) -> float:
        return max(0.0, self.timestamp - self.since)

    @property
    def series(self) -> str:
        """``mount=/`` style description of the series (empty for totals)."""
        return ", ".join(f"{k}={v}" for k, v in sorted(self.labels.items()))


DELIVERY_ID_HEADER = "X-Sysmon-Delivery-Id"


def delivery_id(n: Notification, channel: str) -> str:
    """One message to one channel: the alert event, the transition and the channel.

    Every attempt at the same message carries the same id (retries, a task a dead worker
    left unacknowledged), so the Celery worker can skip what was already sent and a
    receiver can drop a second copy that a lost answer made us send again. Repeats and
    tests are one message per ``timestamp``. Without a stored event (the alert store was
    failing) the series and its start stand in for the event id.
    """
    if n.event_id is not None:
        event = f"e{n.event_id}"
    else:
        series = "|".join([n.rule, n.series, repr(n.since)])
        event = "s" + hashlib.sha256(series.encode()).hexdigest()[:16]
    kind = f"{n.kind}@{n.timestamp:.3f}" if n.kind in ("repeat", "test") else n.kind
    return f"{n.hostname}/{event}/{kind}/{channel}"


class Notifier(Protocol):
    name: str

    def send(self, notification: Notification) -> None: ...

    def close(self) -> None: ...


_STATUS = {
    "firing": "FIRING",
    "repeat": "STILL FIRING",
    "resolved": "RESOLVED",
    "test": "TEST",
}


def _num(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.1f}" if abs(value) < 1e6 else f"{value:.4g}"


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def subject(n: Notification) -> str:
    """``[FIRING] cpu_high on web1: cpu.percent 93.0 > 80.0``."""
    if n.kind == "test":
        return f"[TEST] sysmon test notification from {n.hostname}"
    where = f" ({n.series})" if n.series else ""
    return (
        f"[{_STATUS[n.kind]}] {n.rule} on {n.hostname}{where}: "
        f"{n.metric} {_num(n.value)} {n.operator} {_num(n.threshold)}"
    )


def text_lines(n: Notification) -> list[tuple[str, str]]:
    """The facts of a message as (label, value) pairs, shared by every channel format."""
    if n.kind == "test":
        return [("Host", n.hostname), ("Sent at", _iso(n.timestamp))]
    rows = [
        ("Status", _STATUS[n.kind]),
        ("Host", n.hostname),
        ("Rule", n.rule),
        ("Severity", n.severity),
        ("Metric", n.metric + (f" ({n.series})" if n.series else "")),
        ("Value", _num(n.value)),
        ("Threshold", f"{n.operator} {_num(n.threshold)}"),
        ("Since", _iso(n.since)),
        ("Duration", format_duration(round(n.duration_seconds))),
    ]
    if n.description:
        rows.append(("Description", n.description))
    return rows


def text_body(n: Notification) -> str:
    lines = [f"{label}: {value}" for label, value in text_lines(n)]
    if n.kind == "test":
        lines.insert(0, "This is a test notification from sysmon; the channel works.")
    if n.dashboard_url:
        lines.append(f"Dashboard: {n.dashboard_url}")
    return "\n".join(lines) + "\n"


def html_body(n: Notification) -> str:
    rows = "".join(
        f"<tr><th align='left'>{html.escape(label)}</th><td>{html.escape(value)}</td></tr>"
        for label, value in text_lines(n)
    )
    link = (
        f"<p><a href='{html.escape(n.dashboard_url, quote=True)}'>Open the dashboard</a></p>"
        if n.dashboard_url
        else ""
    )
    return (
        f"<html><body><h2>{html.escape(subject(n))}</h2><table>{rows}</table>{link}</body></html>"
    )


def json_payload(n: Notification) -> dict[str, object]:
    """The generic webhook body (stable field names; ``version`` bumps on change)."""
    return {
        "version": 1,
        "kind": n.kind,
        "status": "resolved" if n.kind == "resolved" else n.kind,
        "host": n.hostname,
        "rule": n.rule,
        "severity": n.severity,
        "metric": n.metric,
        "labels": dict(n.labels),
        "rule_labels": dict(n.extra),
        "operator": n.operator,
        "threshold": n.threshold,
        "value": n.value,
        "since": n.since,
        "timestamp": n.timestamp,
        "duration_seconds": n.duration_seconds,
        "description": n.description,
        "dashboard_url": n.dashboard_url,
        "summary": subject(n),
    }
