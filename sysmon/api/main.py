"""Includes every router; nothing else lives here."""

from __future__ import annotations

from fastapi import APIRouter

from sysmon.api.routes import (
    admin,
    alerts,
    auth,
    health,
    hosts,
    metrics,
    processes,
    prometheus,
    stream,
    web,
)

api_router = APIRouter()
api_router.include_router(health.router)
api_router.include_router(processes.router)
api_router.include_router(metrics.router)
api_router.include_router(hosts.router)
api_router.include_router(stream.router)
api_router.include_router(alerts.router)
api_router.include_router(web.router)
api_router.include_router(auth.router)
api_router.include_router(admin.router)
api_router.include_router(prometheus.router)
