"""``GET /metrics``: the Prometheus exposition of the latest tick and of the service.

The body comes from the app's ``Exposition`` (``sysmon.api.exposition``): formatting
only (the host part once per tick), no collection and no database read. The format
follows the scraper's ``Accept`` header as ``prometheus_client``'s own ASGI app does
(OpenMetrics for Prometheus >= 2.5, the classic text format otherwise).

Authentication is the API's: with ``auth.mode: jwt`` the middleware refuses a scrape
without credentials before it gets here (``/metrics`` is not public), so Prometheus sends
an API key as a bearer token (``authorization: {credentials_file: ...}`` in its scrape
config). Any role may scrape: the exposition holds no command lines.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from sysmon.api.exposition import Exposition

router = APIRouter(tags=["prometheus"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus exposition"}},
    summary="Latest tick and service health in the Prometheus text format",
)
async def prometheus_metrics(request: Request) -> Response:
    exposition: Exposition = request.app.state.prometheus
    body, content_type = exposition.render(request.headers.get("accept", ""))
    return Response(content=body, media_type=content_type)
