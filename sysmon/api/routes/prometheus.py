"""``GET /metrics``: the Prometheus exposition of the latest tick and of the service.

The families come from the app's own registry (``sysmon.api.exposition``): formatting
only, no collection and no database read. The format follows the scraper's ``Accept``
header as ``prometheus_client``'s own ASGI app does (OpenMetrics for Prometheus >= 2.5,
the classic text format otherwise).

Authentication is the API's: with ``auth.mode: jwt`` the middleware refuses a scrape
without credentials before it gets here (``/metrics`` is not public), so Prometheus sends
an API key as a bearer token (``authorization: {credentials_file: ...}`` in its scrape
config). Any role may scrape: the exposition holds no command lines.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import CollectorRegistry

router = APIRouter(tags=["prometheus"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus exposition"}},
    summary="Latest tick and service health in the Prometheus text format",
)
async def prometheus_metrics(request: Request) -> Response:
    registry: CollectorRegistry = request.app.state.prometheus
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(content=encoder(registry), media_type=content_type)
