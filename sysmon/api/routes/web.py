"""The dashboard page at ``/`` and the login page at ``/login`` (static files are mounted
by ``sysmon.main``).

Both pages are HTML shells that hold no data, which is why ``sysmon.security.auth`` lets
them through without credentials: the page must load to show a login form. Whether the
caller may see anything is decided by the API the page then calls (401 sends the page
to ``/login``). Two redirects here only save a round of 401s and a flash of an empty
dashboard; they decide nothing:

* with ``auth.mode: jwt``, ``/`` without a session cookie goes straight to ``/login``
  (a cookie that is present but expired or revoked is found out by the page's first
  API call; this route does not look it up);
* with ``auth.mode: none`` there is nothing to sign in to, so ``/login`` goes to ``/``.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from sysmon.security.auth import SESSION_COOKIE

WEB_DIR = Path(__file__).resolve().parents[2] / "web"

router = APIRouter(tags=["dashboard"], include_in_schema=False)


def _auth_on(request: Request) -> bool:
    return getattr(request.app.state, "auth_mode", "none") == "jwt"


def _page(name: str) -> Response:
    page = WEB_DIR / "templates" / name
    if not page.exists():
        return HTMLResponse("<h1>sysmon</h1><p>Dashboard not built. See /docs.</p>")
    # no-cache: always revalidated, so an upgrade never pairs an old shell with new
    # scripts; the shells are a few kB.
    return FileResponse(page, media_type="text/html", headers={"Cache-Control": "no-cache"})


@router.get("/")
async def index(request: Request) -> Response:
    if _auth_on(request) and not request.cookies.get(SESSION_COOKIE):
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(here, safe='')}", status_code=303)
    return _page("index.html")


@router.get("/login")
async def login(request: Request) -> Response:
    if not _auth_on(request):
        return RedirectResponse("/", status_code=303)
    return _page("login.html")
