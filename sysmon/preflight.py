"""Checks a configuration must pass before anything starts (``sysmon config check``, and
``sysmon serve`` before it starts its children).

The pydantic models check each value; this checks what the agent and the server would
otherwise only hit once running: collector options, that every enabled alert channel
finds its secret in the environment, that the database (and the live-channel socket)
can be created and written by this user, that configured TLS files are readable, and
that uvicorn's ``$FORWARDED_ALLOW_IPS`` is valid when it stands in for
``server.forwarded_allow_ips``.

Kept apart from ``sysmon.main`` so that the long-lived ``sysmon serve`` supervisor does
not load the whole API just to run these checks (about 6 MiB of resident memory).
"""

from __future__ import annotations

from pathlib import Path

from sysmon.collectors.registry import CollectorRegistry
from sysmon.config import Settings, check_tls_files, check_writable_file, forwarded_allow_ips


def check_settings(settings: Settings, registry: CollectorRegistry | None = None) -> None:
    """Raise ``ConfigError`` naming the key of the first problem found."""
    from sysmon.alerts.config import resolve_environ
    from sysmon.alerts.service import build_notifier
    from sysmon.collectors.registry import discover
    from sysmon.collectors.source import PsutilSource

    source = PsutilSource()
    try:
        built = (registry or discover(plugins=settings.collection.plugins)).build(
            settings.collectors, source
        )
        for collector in built.values():  # built to check their options, then let go
            collector.close()
    finally:
        source.close()
    environ = resolve_environ(None)
    for name, channel in settings.alerts.channels.items():
        if channel.enabled:
            build_notifier(name, channel, environ).close()
    check_writable_file("database.path", Path(settings.database.path))
    if settings.agent.socket:
        check_writable_file("agent.socket", Path(settings.agent.socket))
    check_tls_files(settings.server)
    forwarded_allow_ips(settings.server, warn=False)  # $FORWARDED_ALLOW_IPS, when it applies
