"""Alert API: active alerts, history, rules, silences, test messages.

The backend comes from ``request.app.state.alerts`` (``AlertsBackend``: the server's
``AlertsView``, or an ``AlertService`` in tests); when the app
runs without alerting the routes answer 503. Handlers are plain ``def``: FastAPI runs
them in its thread pool, so SQLite reads and the synchronous test send never block the
event loop.

Write endpoints (silences, test) depend on ``require_admin`` (``sysmon.security.deps``):
403 unless the caller is an admin. Reads need any authenticated caller, which
``AuthMiddleware`` has already ensured before routing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from sysmon.alerts.config import AlertsConfig, format_duration
from sysmon.alerts.engine import ActiveAlert
from sysmon.alerts.notifiers.base import DeliveryError
from sysmon.alerts.rules import CompiledRule
from sysmon.alerts.service import ChannelDisabledError, HistoryEntry, UnknownChannelError
from sysmon.alerts.store import Silence
from sysmon.api.errors import query_instant, unprocessable
from sysmon.security.deps import require_admin
from sysmon.timeparse import parse_instant

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])

DEFAULT_HISTORY_SECONDS = 7 * 86400.0


class AlertsBackend(Protocol):
    """What the alert routes need (both ``AlertsView`` and ``AlertService`` have it)."""

    config: AlertsConfig
    rules: list[CompiledRule]

    def clock_time(self) -> float: ...
    def active(self) -> list[ActiveAlert]: ...
    def history(self, start: float, end: float, limit: int = 1000) -> list[HistoryEntry]: ...
    def channel_types(self) -> dict[str, str]: ...
    def silences(self) -> list[Silence]: ...
    def add_silence(self, matchers: Mapping[str, str], until: float, comment: str) -> Silence: ...
    def delete_silence(self, silence_id: int) -> bool: ...
    def send_test(self, channel: str, timeout: float | None = None) -> None: ...


async def get_alerts(request: Request) -> AlertsBackend:
    service: AlertsBackend | None = getattr(request.app.state, "alerts", None)
    if service is None:
        raise HTTPException(status_code=503, detail="alerting is not enabled")
    return service


AlertsDep = Annotated[AlertsBackend, Depends(get_alerts)]
Admin = Depends(require_admin)


def _silence_json(s: Silence) -> dict[str, Any]:
    return {
        "id": s.id,
        "matchers": s.matchers,
        "until": s.until,
        "created_at": s.created_at,
        "comment": s.comment,
    }


@router.get("", summary="Active (pending and firing) alerts")
def active_alerts(service: AlertsDep) -> dict[str, Any]:
    return {
        "alerts": [
            {
                "rule": a.rule,
                "state": a.state,
                "severity": a.severity,
                "metric": a.metric,
                "labels": a.labels,
                "value": a.value,
                "operator": a.operator,
                "threshold": a.threshold,
                "since": a.since,
                "firing_since": a.firing_since,
                "silenced": a.silenced,
                "last_notified_at": a.last_notified_at,
            }
            for a in service.active()
        ]
    }


@router.get("/history", summary="Firing and resolved events between start and end")
def history(
    service: AlertsDep,
    start: Annotated[
        str | None, Query(description="Epoch seconds or ISO 8601; default end - 7 days")
    ] = None,
    end: Annotated[str | None, Query(description="Epoch seconds or ISO 8601; default now")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> dict[str, Any]:
    now = service.clock_time()
    end_ts = query_instant("end", end, now)
    start_ts = query_instant("start", start, end_ts - DEFAULT_HISTORY_SECONDS)
    if start_ts > end_ts:
        raise unprocessable("query", "start", "start must not be after end")
    entries = service.history(start_ts, end_ts, limit)
    return {
        "start": start_ts,
        "end": end_ts,
        "events": [
            {
                "id": e.event.id,
                "timestamp": e.event.timestamp,
                "kind": e.event.kind,
                "rule": e.event.rule,
                "severity": e.event.severity,
                "metric": e.event.metric,
                "labels": e.event.labels,
                "value": e.event.value,
                "operator": e.event.operator,
                "threshold": e.event.threshold,
                "since": e.event.since,
                "silenced": e.event.silenced,
                "deliveries": [
                    {
                        "channel": d.channel,
                        "kind": d.kind,
                        "status": d.status,
                        "attempts": d.attempts,
                        "error": d.error,
                        "timestamp": d.timestamp,
                    }
                    for d in e.deliveries
                ],
            }
            for e in entries
        ],
    }


@router.get("/rules", summary="Configured rules and channels (no secrets)")
def rules(service: AlertsDep) -> dict[str, Any]:
    out = []
    for rule in service.rules:
        cfg = rule.config
        out.append(
            {
                "name": cfg.name,
                "metric": cfg.metric,
                "operator": cfg.operator,
                "threshold": cfg.threshold,
                "for": format_duration(cfg.for_),
                "for_seconds": cfg.for_,
                "severity": cfg.severity,
                "selector": cfg.selector,
                "recovery_threshold": rule.recovery_threshold,
                "recovery_for": format_duration(cfg.recovery_for),
                "repeat_interval": format_duration(rule.repeat_interval),
                "labels": cfg.labels,
                "channels": list(rule.channels),
                "description": cfg.description,
            }
        )
    return {
        "enabled": service.config.enabled,
        "rules": out,
        "channels": [
            {"name": name, "type": kind, "enabled": service.config.channels[name].enabled}
            for name, kind in service.channel_types().items()
        ],
    }


class SilenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    matchers: dict[str, str] = Field(
        min_length=1,
        description="Alert labels to match (globs): rule, severity, metric, mount, ...",
    )
    until: str | float = Field(description="Epoch seconds or ISO 8601")
    comment: str = Field(default="", max_length=1000)


@router.get("/silences", summary="Silences in force")
def list_silences(service: AlertsDep) -> dict[str, Any]:
    return {"silences": [_silence_json(s) for s in service.silences()]}


@router.post(
    "/silences",
    status_code=201,
    dependencies=[Admin],
    summary="Silence matching alerts until a time (still tracked, not sent)",
)
def add_silence(body: SilenceIn, service: AlertsDep) -> dict[str, Any]:
    if isinstance(body.until, str):
        try:
            until = parse_instant(body.until)
        except ValueError as exc:
            raise unprocessable("body", "until", str(exc)) from None
    else:
        until = float(body.until)
    if not math.isfinite(until) or until <= service.clock_time():
        raise unprocessable("body", "until", "until must be in the future")
    return _silence_json(service.add_silence(body.matchers, until, body.comment))


@router.delete(
    "/silences/{silence_id}",
    status_code=204,
    dependencies=[Admin],
    summary="Remove a silence",
)
def delete_silence(
    silence_id: Annotated[int, Path(ge=1, le=2**63 - 1)], service: AlertsDep
) -> Response:
    if not service.delete_silence(silence_id):
        raise HTTPException(status_code=404, detail=f"silence {silence_id} not found")
    return Response(status_code=204)


class ChannelTestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: str = Field(min_length=1)


@router.post("/test", dependencies=[Admin], summary="Send a test message to one channel")
def send_test(body: ChannelTestIn, service: AlertsDep) -> dict[str, Any]:
    try:
        service.send_test(body.channel)
    except UnknownChannelError:
        raise HTTPException(status_code=404, detail=f"channel {body.channel!r} not found") from None
    except ChannelDisabledError:
        raise unprocessable("body", "channel", f"channel {body.channel!r} is disabled") from None
    except DeliveryError as exc:
        raise HTTPException(status_code=502, detail=f"channel {body.channel!r}: {exc}") from None
    return {"channel": body.channel, "status": "sent"}
