"""Alerting: threshold rules over the collected samples, notified by e-mail, Slack,
JSON webhook and Alertmanager. The app wires ``AlertService`` (see ``service.py``); the
rest is internal.

Nothing is imported here: ``sysmon.config`` imports ``sysmon.alerts.config``, and an
eager import of the engine would load the store (SQLAlchemy, Alembic) into every
process that reads a setting (~25 MiB measured).
"""
