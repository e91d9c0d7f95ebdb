"""``/docs`` and ``/redoc`` from our own origin: every URL the pages reference is ours and
answers, the CSP allows exactly the page's inline script, and (in real Chromium) both
pages render with the network closed to everything but the server."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from sysmon.api.routes.docs import docs_csp
from sysmon.clock import FakeClock
from sysmon.config import load_settings
from sysmon.web.vendor import SOURCES, vendor_dir
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS
from tests.support.stack import Stack, stack

START = 1_800_000_000.0
PAGES = ("/docs", "/redoc", "/docs/oauth2-redirect")
URL_ATTR = re.compile(r"""(?:src|href|url|spec-url)\s*[=:]\s*['"]([^'"]+)['"]""")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    for name in SOURCES:
        folder = vendor_dir(name)
        if not folder.exists():
            pytest.fail(f"{folder} is missing ({name}): run `npm ci` first")
    tmp = tmp_path_factory.mktemp("docs")
    settings = load_settings(None, database={"path": str(tmp / "sysmon.db")})
    with stack(settings, FakeClock(start=START)) as running:
        yield running


@pytest.fixture
def client(server: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=10) as c:
        yield c


def referenced_urls(html: str) -> list[str]:
    return [u for u in URL_ATTR.findall(html) if not u.startswith("data:")]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_page_references_only_our_origin_and_everything_answers(
    client: httpx.Client, page: str
) -> None:
    r = client.get(page)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    urls = referenced_urls(r.text)
    assert "/openapi.json" in urls
    assert any(u.startswith("/static/vendor/") and u.endswith(".js") for u in urls)
    for url in urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, f"{page} references {url}"
        assert url.startswith("/"), url
        answer = client.get(url)
        assert answer.status_code == 200, url
        assert len(answer.content) > 100, url
    assert "cdn" not in r.text.lower()
    assert "googleapis" not in r.text


@pytest.mark.parametrize("page", PAGES)
def test_csp_allows_exactly_the_inline_scripts_of_the_page(client: httpx.Client, page: str) -> None:
    r = client.get(page)
    csp = r.headers["content-security-policy"]
    assert csp == docs_csp(r.text)
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    inline = re.findall(r"<script>(.*?)</script>", r.text, re.S)
    expected = {
        f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'" for s in inline
    }
    allowed = set(directives["script-src"].split())
    assert allowed == {"'self'"} | expected
    assert "'unsafe-inline'" not in allowed and "'unsafe-eval'" not in allowed
    assert directives["frame-ancestors"] == "'none'"
    assert directives["connect-src"] == "'self'"
    assert r.headers["x-frame-options"] == "DENY"


def test_builtin_cdn_pages_are_gone(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    assert not any(path in spec["paths"] for path in PAGES)


@pytest.mark.browser
def test_pages_render_under_the_csp_in_chromium(server: Stack, tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: `apt-get install -y chromium` to run browser tests")
    from playwright.sync_api import sync_playwright

    base = server.base_url
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            results = {
                "/docs": render(browser, base + "/docs", ".opblock"),
                "/redoc": render(browser, base + "/redoc", "[data-section-id]"),
            }
        finally:
            browser.close()
    swagger, redoc = results["/docs"], results["/redoc"]
    assert swagger["count"] >= 5, swagger
    assert redoc["count"] >= 5, redoc
    for result in results.values():
        assert result["page_errors"] == [], result
        assert result["failed"] == [], result
    assert swagger["console"] == [], swagger
    # ReDoc's sidebar credit loads its logo from cdn.redoc.ly: the CSP blocks it (nothing
    # leaves the machine) and the <img> removes itself on error. That is the only
    # complaint allowed, and the only foreign URL asked for.
    assert all("cdn.redoc.ly" in m and "Content Security Policy" in m for m in redoc["console"])
    assert swagger["foreign"] == []
    assert all(u.startswith("https://cdn.redoc.ly/") for u in redoc["foreign"]), redoc


def render(browser: Any, url: str, selector: str) -> dict[str, Any]:
    origin = url.rsplit("/", 1)[0]
    page = browser.new_page()
    out: dict[str, Any] = {"console": [], "page_errors": [], "failed": [], "foreign": []}
    page.on("console", lambda m: out["console"].append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: out["page_errors"].append(str(e)))
    page.on(
        "request",
        lambda r: (
            None if r.url.startswith((origin, "data:", "blob:")) else out["foreign"].append(r.url)
        ),
    )
    page.on(
        "requestfailed",
        lambda r: out["failed"].append(r.url) if r.url.startswith(origin) else None,
    )
    page.goto(url)
    page.locator(selector).first.wait_for(timeout=15_000)
    out["count"] = page.locator(selector).count()
    page.close()
    return out
