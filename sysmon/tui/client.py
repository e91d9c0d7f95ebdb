"""The HTTP side of ``sysmon top``: one ``httpx.AsyncClient`` and the errors it can show.

Every failure becomes an ``ApiError`` whose text is the single line the status bar shows:
the UI never sees an ``httpx`` exception, so no traceback can reach the terminal. The token
goes out as ``Authorization: Bearer ...``, which the server accepts for API keys
(``sysmon_...``) and access JWTs alike (``sysmon/security/auth.py``).
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx

from sysmon.tui.cli import TOKEN_ENV
from sysmon.tui.sse import SseParser

NOT_YET = "waiting for the server's first collection"
STREAM_READ_TIMEOUT = 45.0  # three of the server's 15 s keep-alive periods


class ApiError(Exception):
    """A request that failed; ``str()`` is the message for the user, in one line."""


def status_message(status: int, detail: str, *, has_token: bool) -> str:
    """What an error answer means for someone at a terminal, and what to do about it."""
    if status == 401:
        if has_token:
            return "401 the server refused the token (expired, revoked or mistyped?)"
        return f"401 not authenticated: pass --token TOKEN or set {TOKEN_ENV} (API key or JWT)"
    if status == 403:
        return f"403 forbidden: {detail}" if detail else "403 forbidden"
    if status == 421:
        return (
            "421 the server does not serve this host name "
            "(use a name it accepts, or add it to server.security.allowed_hosts)"
        )
    if status == 503 and "no collection yet" in detail:
        return NOT_YET
    return f"{status} {detail}".strip() if detail else f"HTTP {status}"


def transport_message(exc: httpx.HTTPError, base_url: str) -> str:
    """One line for a request that got no answer at all."""
    if isinstance(exc, httpx.ConnectError):
        cause = _os_error(exc)
        if isinstance(cause, ConnectionRefusedError):
            reason = "connection refused (is sysmon running? --url to point elsewhere)"
        elif cause is not None and cause.strerror:
            reason = cause.strerror
        else:
            reason = str(exc) or "connection failed"
        return f"cannot reach {base_url}: {reason}"
    if isinstance(exc, httpx.TimeoutException):
        return f"{base_url} did not answer in time"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"{base_url} closed the connection (server restarting?)"
    text = str(exc) or type(exc).__name__
    return f"{base_url}: {text}"


def _os_error(exc: BaseException) -> OSError | None:
    """The innermost ``OSError`` with an errno behind ``exc``: the async transport wraps
    "connection refused" as "All connection attempts failed", which says less."""
    found: OSError | None = None
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno is not None:
            found = current
        current = current.__cause__ or current.__context__
    return found


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:200]
    if isinstance(body, dict):
        detail = body.get("detail")
        if isinstance(detail, str):
            return detail
    return ""


class ApiClient:
    """A sysmon server's API over HTTP(S); close with ``aclose``.

    ``transport`` is the seam tests may swap (``httpx.MockTransport``); the app's own tests
    use the real one against a real server.
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = 5.0,
        verify: ssl.SSLContext | bool = True,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.has_token = bool(token)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=timeout,
            verify=verify,
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def get_json(self, path: str, params: Mapping[str, str | int] | None = None) -> Any:
        try:
            response = await self._client.get(path, params=params)
        except httpx.HTTPError as exc:
            raise ApiError(transport_message(exc, self.base_url)) from None
        self._check(response)
        try:
            return response.json()
        except ValueError:
            raise ApiError(f"{self.base_url}{path} did not answer JSON: is it sysmon?") from None

    def _check(self, response: httpx.Response) -> None:
        if response.status_code >= 400:
            raise ApiError(
                status_message(response.status_code, _detail(response), has_token=self.has_token)
            )

    async def current(self) -> dict[str, Any]:
        return _object(await self.get_json("/api/v1/metrics/current"), "current")

    async def processes(self, sort: str, limit: int = 100) -> list[dict[str, Any]]:
        body = _object(
            await self.get_json("/api/v1/metrics/processes", {"sort": sort, "limit": limit}),
            "processes",
        )
        rows = body.get("processes")
        return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []

    async def alerts(self) -> list[dict[str, Any]]:
        rows = _object(await self.get_json("/api/v1/alerts"), "alerts").get("alerts")
        return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []

    async def health(self) -> dict[str, Any]:
        return _object(await self.get_json("/api/v1/health"), "health")

    async def system(self) -> dict[str, Any]:
        return _object(await self.get_json("/api/v1/system"), "system")

    async def stream(self) -> AsyncIterator[dict[str, Any]]:
        """Snapshots from ``/api/v1/stream`` until the connection ends (``ApiError``).

        The server writes at least a keep-alive comment every 15 s, so a stream silent
        for ``STREAM_READ_TIMEOUT`` is dead (a dropped network leaves a half-open
        connection that would otherwise wait forever) or buffered by a proxy: either
        way the caller then falls back to polling.
        """
        parser = SseParser()
        timeout = httpx.Timeout(self._client.timeout.connect, read=STREAM_READ_TIMEOUT)
        try:
            async with self._client.stream("GET", "/api/v1/stream", timeout=timeout) as response:
                if response.status_code >= 400:
                    await response.aread()
                    self._check(response)
                async for line in response.aiter_lines():
                    event = parser.feed(line)
                    if event is None or event.event != "snapshot":
                        continue
                    try:
                        document = json.loads(event.data)
                    except ValueError:
                        continue
                    if isinstance(document, dict):
                        yield document
        except httpx.HTTPError as exc:
            raise ApiError(transport_message(exc, self.base_url)) from None
        raise ApiError("the live stream ended")


def _object(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(f"unexpected answer for {what}: is the URL a sysmon server?")
    return body
