"""The dashboard page at ``/`` (static files are mounted by ``app.main``)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, Response

WEB_DIR = Path(__file__).resolve().parents[2] / "web"

router = APIRouter(tags=["dashboard"], include_in_schema=False)


@router.get("/")
async def index() -> Response:
    page = WEB_DIR / "templates" / "index.html"
    if not page.exists():
        return HTMLResponse("<h1>sysmon</h1><p>Dashboard not built. See /docs.</p>")
    return FileResponse(page, media_type="text/html")
