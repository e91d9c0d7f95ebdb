"""Alerting: threshold rules over the collected samples, notified by e-mail, Slack and
JSON webhook. The app wires ``AlertService`` (see ``service.py``); the rest is internal.
"""

from __future__ import annotations

from sysmon.alerts.config import AlertsConfig, RuleConfig
from sysmon.alerts.engine import ActiveAlert
from sysmon.alerts.service import AlertService

__all__ = ["ActiveAlert", "AlertService", "AlertsConfig", "RuleConfig"]
