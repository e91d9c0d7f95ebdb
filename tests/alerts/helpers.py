"""Hand-built snapshots and service wiring shared by the alert tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sysmon.alerts.config import AlertsConfig
from sysmon.alerts.service import AlertService
from sysmon.clock import FakeClock
from sysmon.models import Collected, Sample, Snapshot

HOST = "web1"
DASHBOARD = "http://sysmon.example:8000/"


def snapshot(
    ts: float,
    *,
    cpu: float | None = None,
    memory: float | None = None,
    mounts: Mapping[str, float] | None = None,
    cores: Mapping[str, float] | None = None,
    failed: tuple[str, ...] = (),
) -> Snapshot:
    """A tick with only the given values; ``failed`` collectors are in ``errors``."""
    results: dict[str, Collected] = {}
    if cpu is not None or cores:
        samples = [] if cpu is None else [Sample("cpu", "percent", cpu)]
        samples += [Sample("cpu", "percent", v, (("core", k),)) for k, v in (cores or {}).items()]
        samples.append(Sample("cpu", "load_1", 0.5))
        results["cpu"] = Collected(tuple(samples))
    if memory is not None:
        results["memory"] = Collected(
            (Sample("memory", "percent", memory), Sample("memory", "used_bytes", 1e9))
        )
    if mounts is not None:
        samples = [Sample("disk", "percent", max(mounts.values(), default=0.0))]
        samples += [Sample("disk", "percent", v, (("mount", m),)) for m, v in mounts.items()]
        results["disk"] = Collected(tuple(samples))
    for name in failed:
        results.pop(name, None)
    return Snapshot(ts, results, {name: "boom" for name in failed})


def alerts_config(**data: Any) -> AlertsConfig:
    return AlertsConfig.model_validate(data)


def email_channel(port: int, **extra: Any) -> dict[str, Any]:
    return {
        "type": "email",
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "from": "sysmon@example.com",
        "to": ["ops@example.com", "oncall@example.com"],
        "timeout_seconds": 5,
        "backoff_seconds": 0.01,
        **extra,
    }


def url_channel(kind: str, url_env: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "url_env": url_env,
        "timeout_seconds": 5,
        "backoff_seconds": 0.01,
        **extra,
    }


def make_service(
    config: AlertsConfig,
    db_path: str,
    clock: FakeClock,
    environ: Mapping[str, str] | None = None,
) -> AlertService:
    service = AlertService.from_settings(
        config, db_path, clock, DASHBOARD, HOST, environ=dict(environ or {})
    )
    service.start()
    return service


class Ticker:
    """Drives a service one collection tick per ``step`` seconds of fake time."""

    def __init__(self, service: AlertService, clock: FakeClock) -> None:
        self.service = service
        self.clock = clock

    def run(self, seconds: float, step: float = 1.0, **values: Any) -> None:
        """Advance ``seconds`` in ``step`` ticks, each carrying ``values``."""
        ticks = round(seconds / step)
        for _ in range(ticks):
            self.clock.advance(step)
            self.service.evaluate(snapshot(self.clock.time(), **values))

    def tick(self, **values: Any) -> None:
        self.run(1.0, **values)
