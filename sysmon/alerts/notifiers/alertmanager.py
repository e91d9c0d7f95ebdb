"""Prometheus Alertmanager: post alerts to its v2 API (``POST /api/v2/alerts``) so that a
team that already routes, groups, inhibits and silences with Alertmanager keeps doing so.

The mapping (what Prometheus itself sends, so existing routes and templates work):

* ``labels``: ``alertname`` (the rule), ``severity``, ``host``, ``rule``, ``metric``, the
  series labels (``mount``, ``core``, ...), the rule's own ``labels`` and the channel's
  ``labels``. Alertmanager identifies an alert by its label set, so the resolve matches
  the firing post exactly. Names Alertmanager would refuse (``team-name``) are
  rewritten to ``[a-zA-Z0-9_]``; empty values are dropped (Prometheus semantics).
* ``annotations``: ``summary`` (the same one-liner as the e-mail subject),
  ``description`` (the rule's, else the facts), ``value`` and ``threshold``.
* ``startsAt``: when the condition began (the pending start, as Prometheus' ``ActiveAt``);
  ``endsAt``: the resolve time on ``resolved``; for a firing alert four
  ``resend_interval`` ahead, renewed by re-posting every ``resend_interval``.
* ``generatorURL``: the dashboard link (``server.public_url``), as every channel has.

Why re-post: Alertmanager treats an alert that is not re-sent as gone (``endsAt``, or
``resolve_timeout`` when it has none), while sysmon repeats a firing alert only every
``repeat_interval`` (4 h). So the notifier keeps the alerts it has announced and a small
thread re-posts them, one request for all; if sysmon dies they resolve within four
intervals instead of staying active for ever. That thread starts with the first firing
alert and ends in ``close``; its failures are logged once per streak (the next firing or
resolve goes through the dispatcher's retries as usual).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from sysmon.alerts.config import AlertmanagerChannelConfig
from sysmon.alerts.notifiers._http import JsonPoster
from sysmon.alerts.notifiers.base import DeliveryError, Notification, subject, text_lines

log = logging.getLogger(__name__)

API_PATH = "/api/v2/alerts"
TEST_ALERTNAME = "sysmon_test"
_INVALID_LABEL_CHARS = re.compile(r"[^a-zA-Z0-9_]")

Payload = dict[str, object]
AlertKey = frozenset[tuple[str, str]]


def alerts_url(base: str) -> str:
    """``http://am:9093/`` -> ``http://am:9093/api/v2/alerts`` (a full path is kept)."""
    trimmed = base.rstrip("/")
    return trimmed if trimmed.endswith(API_PATH) else trimmed + API_PATH


def rfc3339(ts: float) -> str:
    """Alertmanager's time format: ``2026-11-27T03:12:00.000Z``."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def label_name(name: str) -> str:
    """A valid Prometheus label name (``[a-zA-Z_][a-zA-Z0-9_]*``)."""
    cleaned = _INVALID_LABEL_CHARS.sub("_", name)
    return cleaned if cleaned and not cleaned[0].isdigit() else "_" + cleaned


def alert_labels(n: Notification, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The alert's identity; later sources win, so the core labels cannot be overridden."""
    if n.kind == "test":
        core = {"alertname": TEST_ALERTNAME, "severity": "info", "host": n.hostname}
    else:
        core = {
            "alertname": n.rule,
            "severity": n.severity,
            "host": n.hostname,
            "rule": n.rule,
            "metric": n.metric,
        }
    merged: dict[str, str] = {}
    for source in (extra or {}, n.extra, n.labels, core):
        for key, value in source.items():
            if value != "":
                merged[label_name(key)] = value
    return merged


def alert_payload(
    n: Notification, ttl_seconds: float, extra_labels: dict[str, str] | None = None
) -> Payload:
    """One element of the ``POST /api/v2/alerts`` array for ``n``.

    ``ttl_seconds``: how long after ``n.timestamp`` a firing alert stays active in
    Alertmanager unless re-posted.
    """
    facts = "; ".join(f"{label}: {value}" for label, value in text_lines(n))
    annotations = {
        "summary": subject(n),
        "description": n.description or facts,
    }
    if n.kind != "test":
        annotations["value"] = "n/a" if n.value is None else f"{n.value:g}"
        annotations["threshold"] = f"{n.operator} {n.threshold:g}"
    ends = n.timestamp if n.kind == "resolved" else n.timestamp + ttl_seconds
    payload: Payload = {
        "labels": alert_labels(n, extra_labels),
        "annotations": annotations,
        "startsAt": rfc3339(n.timestamp if n.kind == "test" else n.since),
        "endsAt": rfc3339(ends),
    }
    if n.dashboard_url:
        payload["generatorURL"] = n.dashboard_url
    return payload


class AlertmanagerNotifier:
    def __init__(
        self,
        name: str,
        url: str,
        cfg: AlertmanagerChannelConfig,
        *,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self._url = alerts_url(url)
        self._cfg = cfg
        self._ttl = 4 * cfg.resend_interval
        self._now = now
        self._poster = JsonPoster(self._url, cfg.timeout_seconds)
        # The resender thread has its own connection: the worker's is not shared.
        self._resend_poster = JsonPoster(self._url, cfg.timeout_seconds)
        self._active: dict[AlertKey, Notification] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._resend_failing = False

    # --- the Notifier protocol (dispatcher's worker thread) ----------------------------

    def send(self, notification: Notification) -> None:
        payload = alert_payload(notification, self._ttl, self._cfg.labels)
        key = _key(payload)
        self._poster.post([payload])
        with self._lock:
            if notification.kind in ("firing", "repeat"):
                self._active[key] = notification
            elif notification.kind == "resolved":
                self._active.pop(key, None)
        if notification.kind in ("firing", "repeat"):
            self._ensure_resender()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self._cfg.timeout_seconds + 1)
        self._poster.close()
        self._resend_poster.close()

    # --- re-posting --------------------------------------------------------------------

    def resume(self, announced: list[Notification]) -> None:
        """Alerts announced before a restart (``AlertService.start``): re-posted from the
        next ``resend_interval`` on, as if this process had sent them."""
        with self._lock:
            for n in announced:
                self._active[_key(alert_payload(n, self._ttl, self._cfg.labels))] = n
        if announced:
            self._ensure_resender()

    def active_count(self) -> int:
        with self._lock:
            return len(self._active)

    def resend(self) -> int:
        """Re-post every firing alert now with a renewed ``endsAt``; returns how many."""
        now = self._now()
        with self._lock:
            current = list(self._active.values())
        if not current:
            return 0
        batch = [alert_payload(_renewed(n, now), self._ttl, self._cfg.labels) for n in current]
        self._resend_poster.post(batch)
        return len(batch)

    def _ensure_resender(self) -> None:
        if self._thread is not None or self._stop.is_set():
            return
        self._thread = threading.Thread(
            target=self._resend_loop, name=f"alerts-{self.name}-resend", daemon=True
        )
        self._thread.start()

    def _resend_loop(self) -> None:
        while not self._stop.wait(self._cfg.resend_interval):
            try:
                count = self.resend()
            except DeliveryError as exc:
                if not self._resend_failing:
                    log.warning("alertmanager re-post failed channel=%s error=%s", self.name, exc)
                    self._resend_failing = True
                continue
            if self._resend_failing:
                log.info("alertmanager re-post works again channel=%s alerts=%d", self.name, count)
                self._resend_failing = False


def _key(payload: Payload) -> AlertKey:
    labels = payload["labels"]
    assert isinstance(labels, dict)
    return frozenset((str(k), str(v)) for k, v in labels.items())


def _renewed(n: Notification, now: float) -> Notification:
    """The same alert as of ``now`` (``endsAt`` is measured from ``timestamp``)."""
    return replace(n, kind="repeat", timestamp=now)
