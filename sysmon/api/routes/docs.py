"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) served from our own origin.

FastAPI's built-in pages load their scripts from a CDN: blank offline, and a third-party
script on a page that can call every admin endpoint. Here the same pages
(``get_swagger_ui_html``, ``get_redoc_html``) point at the npm packages
``swagger-ui-dist`` and ``redoc``, installed by ``npm ci`` next to uPlot and mounted by
``sysmon.main`` at ``/static/vendor/swagger-ui`` and ``/static/vendor/redoc``.

**CSP.** The dashboard's policy allows no inline script. Swagger UI's page needs one: the
small script that calls ``SwaggerUIBundle({...})`` with the spec URL. Rather than a
second file, each page's inline scripts are allowed by their SHA-256 hash (CSP level 2),
computed from the very HTML served, so the allowance cannot drift from the script and
allows nothing else. ReDoc and Swagger UI style their components with inline styles
(styled-components, React ``style``), so these two pages also allow
``style-src 'unsafe-inline'`` (styles cannot run code); ReDoc's search index runs in a
``blob:`` worker. Everything else stays ``'self'``, and no page may be framed.
"""

from __future__ import annotations

import base64
import hashlib
import re

from fastapi import APIRouter, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse

SWAGGER_DIR = "/static/vendor/swagger-ui"
REDOC_DIR = "/static/vendor/redoc"
OAUTH2_REDIRECT = "/docs/oauth2-redirect"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)

router = APIRouter(include_in_schema=False)


def docs_csp(html: str) -> str:
    """The policy for one docs page: its own inline scripts by hash, nothing else inline."""
    script_src = ["'self'"] + [
        f"'sha256-{_sha256(script)}'" for script in _INLINE_SCRIPT.findall(html)
    ]
    return (
        f"default-src 'self'; script-src {' '.join(script_src)}; "
        "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; "
        "connect-src 'self'; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    )


def _sha256(text: str) -> str:
    return base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def _with_csp(page: HTMLResponse) -> HTMLResponse:
    html = bytes(page.body).decode()
    page.headers["content-security-policy"] = docs_csp(html)
    return page


def _openapi_url(request: Request) -> str:
    root: str = request.scope.get("root_path", "")
    spec: str = request.app.openapi_url or "/openapi.json"
    return root + spec


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    return _with_csp(
        get_swagger_ui_html(
            openapi_url=_openapi_url(request),
            title=f"{request.app.title} - API",
            swagger_js_url=f"{SWAGGER_DIR}/swagger-ui-bundle.js",
            swagger_css_url=f"{SWAGGER_DIR}/swagger-ui.css",
            swagger_favicon_url=f"{SWAGGER_DIR}/favicon-32x32.png",
            oauth2_redirect_url=OAUTH2_REDIRECT,
            # No badge that sends the spec to validator.swagger.io.
            swagger_ui_parameters={"validatorUrl": None},
        )
    )


@router.get(OAUTH2_REDIRECT)
async def swagger_ui_redirect() -> HTMLResponse:
    return _with_csp(get_swagger_ui_oauth2_redirect_html())


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    return _with_csp(
        get_redoc_html(
            openapi_url=_openapi_url(request),
            title=f"{request.app.title} - ReDoc",
            redoc_js_url=f"{REDOC_DIR}/redoc.standalone.js",
            redoc_favicon_url=f"{SWAGGER_DIR}/favicon-32x32.png",
            with_google_fonts=False,
        )
    )
