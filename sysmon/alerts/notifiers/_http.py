"""POST JSON to a secret URL without ever logging the URL.

``httpx.Client`` logs every request line, URL included, at INFO level; for a Slack
incoming webhook the URL *is* the credential. So the notifiers talk to the transport
directly (no client-level logging), and every error message is built from the exception
type, the status code and a redacted text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sysmon.alerts.notifiers.base import DeliveryError

# httpx is imported when the first HTTP channel is built, not with this module: its
# package also loads its command-line tool (click, rich, pygments; ~10 MiB), which an
# agent or server without webhook/Slack channels should not carry.

USER_AGENT = "sysmon-alerts/1"


class JsonPoster:
    def __init__(self, url: str, timeout_seconds: float) -> None:
        import httpx

        self._url = url
        self._timeout = httpx.Timeout(timeout_seconds)
        self._timeout_seconds = timeout_seconds
        self._transport = httpx.HTTPTransport(retries=0)

    def _redact(self, text: str) -> str:
        return text.replace(self._url, "<url>") if self._url else text

    def post(self, payload: Any, headers: Mapping[str, str] | None = None) -> int:
        """Send ``payload`` (with extra ``headers``); returns the 2xx status or raises
        ``DeliveryError``."""
        import httpx

        request = httpx.Request(
            "POST",
            self._url,
            json=payload,
            headers={"User-Agent": USER_AGENT, **(headers or {})},
            extensions={"timeout": self._timeout.as_dict()},
        )
        try:
            response = self._transport.handle_request(request)
            try:
                response.read()
            finally:
                response.close()
        except httpx.TimeoutException as exc:
            raise DeliveryError(
                f"timed out after {self._timeout_seconds:g}s ({type(exc).__name__})"
            ) from None
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {self._redact(str(exc))}") from None
        status = response.status_code
        if 200 <= status < 300:
            return status
        retryable = status >= 500 or status in (408, 429)
        raise DeliveryError(f"HTTP {status}", retryable=retryable, status=status)

    def close(self) -> None:
        self._transport.close()
