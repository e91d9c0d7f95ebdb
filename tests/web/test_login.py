"""Signing in to the dashboard in real headless Chromium against a real ``auth.mode: jwt``
server (issue 10, "the dashboard logs in and streams in real Chromium").

The server is the in-process stack of ``tests.security.auth_support``: a real agent whose
ticks the test drives with a fake clock, the real app under uvicorn, and users made by the
same ``Accounts`` that ``sysmon user add`` uses (alice is an admin, victor a viewer). So
"a new tick appears" is exact: the page must show the timestamp of the tick the test
just made. Nothing is faked in the browser except the clock of the two tests that need
a minute or a hidden tab to pass (Playwright's ``page.clock``).
"""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from sysmon.clock import FakeClock
from sysmon.config import load_settings
from tests.security.auth_support import PASSWORDS, START, AuthStack, add_users, auth_stack
from tests.support.stack import stack
from tests.web.conftest import ARTIFACTS, PageWatch

pytestmark = pytest.mark.browser

TEMPLATES = Path(__file__).resolve().parents[2] / "sysmon" / "web" / "templates"
SILENCE = {"matchers": {"rule": "x"}, "until": 4_000_000_000}
UPDATED_IS = "ts => Number(document.getElementById('updated').dataset.ts) === ts"
SET_HIDDEN = """hidden => {
  const state = hidden ? 'hidden' : 'visible';
  Object.defineProperty(document, 'hidden', {configurable: true, get: () => hidden});
  Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => state});
  document.dispatchEvent(new Event('visibilitychange'));
}"""


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthStack]:
    with auth_stack(tmp_path_factory.mktemp("web-login")) as running:
        running.running.tick(3)
        yield running


@pytest.fixture
def browser(browser_context: Any, api: AuthStack) -> Iterator[tuple[Any, PageWatch]]:
    """A new page in a browser that holds no cookies (each test signs in itself)."""
    browser_context.clear_cookies()
    page = browser_context.new_page()
    watch = PageWatch()
    watch.attach(page, api.running.base_url)
    yield page, watch
    page.close()


def _path(page: Any) -> str:
    parts = urlsplit(str(page.url))
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _sign_in(page: Any, name: str, password: str | None = None) -> None:
    page.fill("#username", name)
    page.fill("#password", PASSWORDS[name] if password is None else password)
    page.click("#login-submit")


def _signed_in(page: Any, api: AuthStack, name: str) -> None:
    """From ``/``: redirected to the login page, sign in, back on the live dashboard."""
    page.goto(api.running.base_url + "/")
    page.wait_for_url("**/login?next=%2F")
    _sign_in(page, name)
    page.wait_for_url(api.running.base_url + "/")
    page.wait_for_selector("#conn[data-state=live]")
    # The header is filled by /auth/me, which answers independently of the live stream.
    page.wait_for_selector("html[data-auth=on]", state="attached")


def _cookies(browser_context: Any) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in browser_context.cookies()}


def test_the_dashboard_sends_a_stranger_to_the_login_page(
    browser: tuple[Any, PageWatch], api: AuthStack
) -> None:
    page, watch = browser
    page.goto(api.running.base_url + "/")
    assert _path(page) == "/login?next=%2F"
    assert page.is_visible("#username") and page.is_visible("#password")
    assert page.inner_text("#login-submit") == "Sign in"
    assert page.is_hidden("#login-error")
    assert watch.page_errors == [] and watch.console_errors == []
    assert watch.bad_responses == [], "a stranger's page makes no API call that fails"
    assert watch.foreign_requests == []


def test_a_wrong_password_is_said_in_the_form_and_sets_no_cookie(
    browser: tuple[Any, PageWatch], api: AuthStack, browser_context: Any
) -> None:
    page, watch = browser
    page.goto(api.running.base_url + "/login")
    _sign_in(page, "alice", "not-her-password")
    page.wait_for_selector("#login-error[data-kind=credentials]")
    assert page.inner_text("#login-error") == "Wrong user name or password."
    assert page.get_attribute("#password", "aria-invalid") == "true"
    assert page.input_value("#password") == "", "the wrong password is cleared"
    assert page.input_value("#username") == "alice"
    assert _path(page) == "/login"
    assert "sysmon_session" not in _cookies(browser_context)
    assert watch.page_errors == []

    # An empty field is caught before asking the server.
    page.fill("#username", "")
    page.fill("#password", "x")
    page.dispatch_event("#login", "submit")
    page.wait_for_function(
        "() => document.getElementById('login-error').textContent === 'Enter your user name.'"
    )


def test_signing_in_opens_the_live_dashboard_with_a_strict_httponly_cookie(
    browser: tuple[Any, PageWatch], api: AuthStack, browser_context: Any
) -> None:
    page, watch = browser
    _signed_in(page, api, "alice")
    assert page.text_content("#user-name") == "alice"
    assert page.text_content("#user-role") == "admin"
    assert page.is_visible("#signout")

    # The live stream carries the cookie: the page shows the newest tick, then the next.
    newest = api.running.clock.time() - 1.0
    page.wait_for_function(UPDATED_IS, arg=newest)
    (tick,) = api.running.tick()
    page.wait_for_function(UPDATED_IS, arg=tick.timestamp)
    assert page.inner_text("#card-cpu .value").endswith("%")

    cookies = _cookies(browser_context)
    session, csrf = cookies["sysmon_session"], cookies["sysmon_csrf"]
    assert session["httpOnly"] is True and session["sameSite"] == "Strict"
    assert session["secure"] is False, "plain HTTP here; Secure is set over TLS"
    assert csrf["httpOnly"] is False and csrf["sameSite"] == "Strict"
    # Page script cannot read the session, only the CSRF token.
    assert page.evaluate("document.cookie") == f"sysmon_csrf={csrf['value']}"
    # Admins see command lines (as the cell's tooltip).
    titles = page.eval_on_selector_all(
        "#procs tbody td:nth-child(2)", "tds => tds.map(t => t.title)"
    )
    assert titles and all(titles)
    page.screenshot(path=str(ARTIFACTS / "dashboard-signed-in.png"))
    assert watch.page_errors == [] and watch.console_errors == []
    assert watch.bad_responses == [] and watch.failed_requests == []
    assert watch.foreign_requests == []

    # Signed in already, the login page just goes on to `next` (leaving the dashboard
    # aborts its stream, so the watch is done with before this).
    page.goto(api.running.base_url + "/login?next=%2F%3Frange%3D1h")
    page.wait_for_url(api.running.base_url + "/?range=1h")


def test_a_viewer_sees_names_not_empty_command_lines_and_next_stays_on_this_site(
    browser: tuple[Any, PageWatch], api: AuthStack
) -> None:
    page, watch = browser
    # A link that would send the freshly signed-in user elsewhere lands on the dashboard.
    page.goto(api.running.base_url + "/login?next=%2F%2Fattacker.example%2Fx")
    _sign_in(page, "victor")
    page.wait_for_url(api.running.base_url + "/")
    page.wait_for_selector("#conn[data-state=live]")
    # The header is filled by /auth/me, which answers independently of the live stream.
    page.wait_for_selector("html[data-auth=on]", state="attached")
    assert page.text_content("#user-role") == "viewer"
    page.wait_for_selector("#procs tbody tr")
    rows = page.eval_on_selector_all(
        "#procs tbody tr",
        "trs => trs.map(tr => [...tr.cells].map(c => c.textContent).concat(tr.cells[1].title))",
    )
    assert rows
    for *cells, title in rows:
        assert "undefined" not in cells and "null" not in cells, cells
        assert title == cells[1], "without the command line the tooltip is the name"
    assert len(page.query_selector_all("#procs thead th")) == len(rows[0]) - 1
    current = page.evaluate("fetch('/api/v1/metrics/current').then(r => r.json())")
    assert current["processes"] and all("cmdline" not in p for p in current["processes"])
    assert watch.page_errors == [] and watch.foreign_requests == []

    # A `next` on this site is kept, query included. Leave the dashboard first: signed out
    # under it, its next request answers 401 and it navigates to /login itself, which
    # would abort this goto (seen once in CI: net::ERR_ABORTED).
    page.goto("about:blank")
    page.context.clear_cookies()
    page.goto(api.running.base_url + "/login?next=%2F%3Ffrom%3Dlink")
    _sign_in(page, "victor")
    page.wait_for_url(api.running.base_url + "/?from=link")


def test_sign_out_returns_to_login_and_the_api_then_answers_401(
    browser: tuple[Any, PageWatch], api: AuthStack, browser_context: Any
) -> None:
    page, watch = browser
    _signed_in(page, api, "alice")
    stolen = _cookies(browser_context)["sysmon_session"]["value"]
    with page.expect_request("**/api/v1/auth/logout") as sent:
        page.click("#signout")
    csrf_header = sent.value.headers.get("x-csrf-token")
    page.wait_for_url("**/login?signed_out=1")
    assert page.inner_text("#login-status") == "You have signed out."
    assert "sysmon_session" not in _cookies(browser_context)
    assert csrf_header, "the sign-out POST carries the X-CSRF-Token header"

    status = page.evaluate("fetch('/api/v1/metrics/current').then(r => r.status)")
    assert status == 401
    # The session ended on the server: a copy of the cookie is worth nothing.
    replay = api.client.get(
        "/api/v1/metrics/current", headers={"Cookie": f"sysmon_session={stolen}"}
    )
    assert replay.status_code == 401
    page.goto(api.running.base_url + "/")
    assert _path(page) == "/login?next=%2F"
    assert watch.page_errors == []


def test_a_cookie_request_without_the_csrf_header_is_refused(
    browser: tuple[Any, PageWatch], api: AuthStack, browser_context: Any
) -> None:
    """What a cross-site form or script could send: the browser's cookie, no header."""
    page, _ = browser
    _signed_in(page, api, "alice")
    cookies = _cookies(browser_context)
    jar = {name: cookies[name]["value"] for name in ("sysmon_session", "sysmon_csrf")}
    with httpx.Client(base_url=api.running.base_url, cookies=jar, timeout=10) as forger:
        refused = forger.post("/api/v1/alerts/silences", json=SILENCE)
        assert refused.status_code == 403
        assert refused.json() == {"detail": "missing or wrong X-CSRF-Token header"}
        assert forger.get("/api/v1/alerts/silences").json()["silences"] == []
        # The same request with the token the page reads from its cookie goes through.
        token = {"X-CSRF-Token": jar["sysmon_csrf"]}
        made = forger.post("/api/v1/alerts/silences", json=SILENCE, headers=token)
        assert made.status_code == 201
        forger.delete(f"/api/v1/alerts/silences/{made.json()['id']}", headers=token)


def test_an_ended_session_sends_the_dashboard_to_login(
    browser: tuple[Any, PageWatch], api: AuthStack, browser_context: Any
) -> None:
    """The session ends elsewhere while the page's stream is away (a hidden tab gives it
    back). The reopened stream gets 401, which EventSource cannot see: the page asks
    /auth/me and goes to the login page. The session ends only once the stream is
    released, so the reopened stream is the only request that can find out."""
    page, _ = browser
    page.clock.install()  # runs at real speed until fast-forwarded
    _signed_in(page, api, "victor")
    # The page's first loads are over (the alert history is the last): none of them can
    # meet the ended session before the stream does.
    page.wait_for_selector("#alerts-history li", state="attached")
    page.evaluate(SET_HIDDEN, True)
    page.clock.fast_forward(11_000)  # a hidden tab gives its stream back after 10 s
    page.wait_for_selector("#conn[data-state=paused]")

    secret = _cookies(browser_context)["sysmon_session"]["value"]
    ended = api.client.post("/api/v1/auth/logout", headers={"Cookie": f"sysmon_session={secret}"})
    assert ended.status_code == 204
    answers: list[tuple[str, int]] = []
    page.on("response", lambda r: answers.append((urlsplit(r.url).path, r.status)))
    page.evaluate(SET_HIDDEN, False)  # visible again: the stream reopens
    page.wait_for_url("**/login?expired=1&next=%2F")
    assert page.inner_text("#login-status") == "Your session has ended. Sign in again."
    refused = [path for path, status in answers if status == 401]
    assert refused == ["/api/v1/stream", "/api/v1/auth/me"], answers

    # Signing in again goes back to the dashboard.
    _sign_in(page, "victor")
    page.wait_for_url(api.running.base_url + "/")


def test_too_many_attempts_then_server_unreachable(browser_context: Any, tmp_path: Path) -> None:
    settings = load_settings(
        None,
        database={"path": str(tmp_path / "sysmon.db")},
        auth={"mode": "jwt"},
        server={"security": {"rate_limits": {"login": "3/minute"}}},
    )
    add_users(settings)
    browser_context.clear_cookies()
    page = browser_context.new_page()
    watch = PageWatch()
    try:
        page.clock.install()
        with stack(settings, FakeClock(start=START)) as running:
            watch.attach(page, running.base_url)
            page.goto(running.base_url + "/login")
            for _ in range(3):
                _sign_in(page, "victor", "guess")
                page.wait_for_selector("#login-error[data-kind=credentials]")
                page.evaluate("document.getElementById('login-error').dataset.kind = ''")
            with page.expect_response("**/api/v1/auth/login") as limited:
                _sign_in(page, "victor")
            assert limited.value.status == 429
            retry_after = int(limited.value.headers["retry-after"])
            assert 0 < retry_after <= 60
            page.wait_for_selector("#login-error[data-kind=rate]")
            assert page.inner_text("#login-error") == (
                f"Too many sign-in attempts. Try again in {retry_after} s."
            )
            assert page.is_disabled("#login-submit"), "no pointless retries during the wait"
            assert page.get_attribute("#password", "aria-invalid") is None
            page.screenshot(path=str(ARTIFACTS / "login-rate-limited.png"))

        # The wait is over, but the server has gone.
        page.clock.fast_forward((retry_after + 1) * 1000)
        page.wait_for_function("() => !document.getElementById('login-submit').disabled")
        assert page.inner_text("#login-error") == "You can try again now."
        _sign_in(page, "victor")
        page.wait_for_selector("#login-error[data-kind=network]")
        assert page.inner_text("#login-error") == (
            "Cannot reach the server. Check that sysmon is running, then try again."
        )
        assert not page.is_disabled("#login-submit")
        assert watch.page_errors == []
    finally:
        page.close()


def test_login_page_on_a_phone_in_dark_mode(browser_context: Any, api: AuthStack) -> None:
    browser_context.clear_cookies()
    page = browser_context.new_page()
    try:
        page.set_viewport_size({"width": 390, "height": 844})
        page.emulate_media(color_scheme="dark")
        page.goto(api.running.base_url + "/login")
        assert page.evaluate("getComputedStyle(document.documentElement).backgroundColor") == (
            "rgb(14, 18, 23)"
        )
        box = page.locator("#login").bounding_box()
        assert box is not None and box["width"] <= 390
        overflow = "document.documentElement.scrollWidth - window.innerWidth"
        assert page.evaluate(overflow) <= 0
        page.screenshot(path=str(ARTIFACTS / "login-phone-dark.png"), full_page=True)
        # Signed in, the header (user, role, Sign out) still fits the phone.
        _sign_in(page, "victor")
        page.wait_for_url(api.running.base_url + "/")
        page.wait_for_selector("#account:not([hidden])")
        assert page.evaluate(overflow) <= 0
        assert page.is_visible("#signout")
        page.screenshot(path=str(ARTIFACTS / "dashboard-phone-dark-signed-in.png"))
    finally:
        page.close()


def test_without_authentication_there_is_no_login_page(
    browser_context: Any, tmp_path: Path
) -> None:
    """``auth.mode: none``: /login goes to the dashboard, which shows no user or Sign out."""
    settings = load_settings(None, database={"path": str(tmp_path / "sysmon.db")})
    browser_context.clear_cookies()
    page = browser_context.new_page()
    watch = PageWatch()
    try:
        with stack(settings, FakeClock(start=START)) as running:
            running.tick(2)
            watch.attach(page, running.base_url)
            page.goto(running.base_url + "/login?next=%2F")
            assert _path(page) == "/"
            page.wait_for_selector("html[data-auth=off]", state="attached")
            page.wait_for_selector("#conn[data-state=live]")
            assert page.is_hidden("#account")
            assert watch.bad_responses == [] and watch.page_errors == []
    finally:
        page.close()


class _Inline(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        self.found.extend(f"{tag} {name}" for name in names if name.startswith("on"))
        if "style" in names:
            self.found.append(f"{tag} style")
        if tag == "script" and "src" not in names:
            self.found.append("inline script")
        if tag == "style":
            self.found.append("inline style element")
        for name, value in attrs:
            if name in ("src", "href", "action") and value and "//" in value:
                self.found.append(f"{tag} {name}={value}")


@pytest.mark.parametrize("name", ["login.html", "index.html"])
def test_pages_need_no_inline_script_style_or_other_origin(name: str) -> None:
    """The CSP allows none of these; the browser tests above would break silently."""
    parser = _Inline()
    parser.feed((TEMPLATES / name).read_text())
    assert parser.found == []


def test_scripts_name_no_other_origin() -> None:
    static = TEMPLATES.parent / "static"
    scripts = sorted(static.glob("*.js"))
    assert {"app.js", "login.js", "charts.js"} <= {p.name for p in scripts}
    for script in scripts:
        text = script.read_text()
        assert "http://" not in text and "https://" not in text, script.name


def test_the_server_redirects_only_when_no_session_cookie_is_sent(api: AuthStack) -> None:
    """``/`` without the cookie goes to /login with the whole path and query as ``next``;
    with a cookie (valid or not: the page's API calls find out) the page is served."""
    with httpx.Client(base_url=api.running.base_url, timeout=10) as plain:
        away = plain.get("/?range=24h&x=1")
        assert away.status_code == 303
        assert away.headers["location"] == "/login?next=%2F%3Frange%3D24h%26x%3D1"
        assert parse_qs(urlsplit(away.headers["location"]).query) == {"next": ["/?range=24h&x=1"]}
        page = plain.get("/", headers={"Cookie": "sysmon_session=whatever"})
        assert page.status_code == 200 and 'id="account"' in page.text
        login = plain.get("/login")
        assert login.status_code == 200 and 'src="/static/login.js"' in login.text
