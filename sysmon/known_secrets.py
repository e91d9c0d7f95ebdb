"""The secret values this process's configuration knows of, and masking them in text.

Pattern rules (``sysmon.collectors.redact``) catch a secret by what surrounds it
(``--password=x``, ``user:x@host``, ``*_TOKEN=x``); an exception that quotes a secret
alone ("authentication failed for 's3cr3t'") has nothing around it to match. So the
values themselves are looked for too: every variable a ``*_env`` key names (e.g.
``SYSMON_JWT_SECRET``), the relational and Redis passwords, the OTLP headers, and any
``SYSMON_*`` variable whose name says secret. Sentry events (``sysmon.sentry``) and the
warning and error lines of the logs (``sysmon.logs``) both mask them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from sysmon.collectors.redact import is_secret_key

if TYPE_CHECKING:
    from sysmon.config import Settings

MIN_SECRET_CHARS = 4
"""Shorter values are not replaced everywhere: "true" or "1234" would blank out half a
line; such a value is still masked where a rule sees its key."""


def secret_values(settings: Settings, environ: Mapping[str, str]) -> set[str]:
    """Every secret the configuration knows of, as the values to look for."""
    names: set[str] = set()
    _env_names(settings.model_dump(mode="python"), names)
    found = {environ[name] for name in names if environ.get(name)}
    for name, value in environ.items():
        if name.upper().startswith("SYSMON_") and value and is_secret_key(name):
            found.add(value)
    for url in (
        _maybe(settings.relational.resolved_url, environ),
        settings.redis.resolved_url(environ),
    ):
        password = _password(url)
        if password:
            found.add(password)
    headers = settings.telemetry.headers(environ)
    found.update(v for v in headers.values() if v)
    return {value for value in found if len(value) >= MIN_SECRET_CHARS}


class SecretMask:
    """Replaces each known value with ``mark`` wherever it appears."""

    def __init__(self, secrets: Iterable[str] = (), mark: str = "***") -> None:
        # Longest first: a secret containing another is replaced whole.
        self._secrets = sorted(
            {s for s in secrets if len(s) >= MIN_SECRET_CHARS}, key=len, reverse=True
        )
        self._mark = mark

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, self._mark)
        return text


def _env_names(value: Any, names: set[str]) -> None:
    """The values of every ``*_env`` key, at any depth (they name secret variables)."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if str(key).endswith("_env") and isinstance(item, str) and item:
                names.add(item)
            else:
                _env_names(item, names)
    elif isinstance(value, list | tuple):
        for item in value:
            _env_names(item, names)


def _maybe(resolve: Any, environ: Mapping[str, str]) -> str | None:
    try:
        url = resolve(environ)
    except Exception:  # an unreadable password file: nothing to mask from there
        return None
    return url if isinstance(url, str) else None


def _password(url: str | None) -> str | None:
    if not url:
        return None
    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    return unquote(password) if password else None
