"""Error reports to Sentry, secrets scrubbed, when ``SYSMON_SENTRY_DSN`` is set.

The DSN comes from the environment only (it lets anyone send events to the project, so
it is a secret, and a config file is copied around). Unset, nothing here imports
``sentry_sdk`` (extra ``sentry``: ``pip install 'sysmon[sentry]'``). Optional:
``SYSMON_SENTRY_ENVIRONMENT`` (default ``production``).

What is reported, per process (``sysmon.role`` tag ``server`` or ``agent``):

* server: an exception a route did not handle (the app's catch-all answers 500 and logs
  it at ERROR), through the SDK's Starlette/FastAPI integration and the logging one;
* agent: whatever is logged at ERROR or above, exceptions included: a tick that failed
  outside the per-collector isolation (``tick ... failed``), a failed shutdown step, a
  refused reload. A collector's own failure is *not* an error report: it is data (a gap
  in its series, the collector's error in ``/current``, a warning) and may be expected
  on this host, like a missing sensor. An exception that escapes a thread is reported
  by the SDK's threading integration.

Scrubbing (``before_send`` and ``before_breadcrumb``), on top of the SDK's own
``send_default_pii=False`` (no cookies, no auth headers, no client IP) and with local
variables never sent:

* values under secret-looking keys (``Authorization``, ``Cookie``, ``X-API-Key``,
  ``password``, ``token``, ``secret``, ``*_key`` ...: ``sysmon.collectors.redact``'s
  rules) become ``[Filtered]``;
* every string goes through the command-line redactor, so ``--password=x``,
  ``DB_PASSWORD=x``, ``https://user:x@host``, ``?token=x`` and ``Authorization: x`` lose
  their value (``sys.argv`` as a whole command line);
* every value the configuration reads as a secret (the variables the ``*_env`` keys
  name, ``SYSMON_JWT_SECRET``, the relational and Redis passwords, the OTLP headers,
  and any ``SYSMON_*`` variable whose name says secret) is replaced wherever it appears.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from sysmon import __version__
from sysmon.collectors.redact import MAX_CHARS, is_secret_key, redact_cmdline

if TYPE_CHECKING:
    from sysmon.config import Settings

logger = logging.getLogger(__name__)

DSN_ENV = "SYSMON_SENTRY_DSN"
ENVIRONMENT_ENV = "SYSMON_SENTRY_ENVIRONMENT"
FILTERED = "[Filtered]"
MIN_SECRET_CHARS = 4
"""Shorter values are not replaced everywhere: "true" or "1234" would blank out half the
report; such a value under a secret key is still filtered by its key."""
SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "cookies", "set-cookie", "x-api-key"}
)


def install_sentry(role: str, settings: Settings, environ: Mapping[str, str] | None = None) -> bool:
    """Start the SDK for this process when ``SYSMON_SENTRY_DSN`` is set; True if it runs.

    Once per process: a second call (an app built twice, an agent restarted in-process)
    leaves the running client alone."""
    env = os.environ if environ is None else environ
    dsn = env.get(DSN_ENV, "").strip()
    if not dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.logging import LoggingIntegration

    if sentry_sdk.get_client().is_active():
        return True
    scrubber = Scrubber(secret_values(settings, env) | {dsn})
    sentry_sdk.init(
        dsn=dsn,
        release=f"sysmon@{__version__}",
        environment=env.get(ENVIRONMENT_ENV, "production"),
        send_default_pii=False,
        include_local_variables=False,  # locals hold passwords, tokens, whole requests
        max_request_body_size="never",
        traces_sample_rate=None,  # errors only (tracing: telemetry.otlp_endpoint)
        before_send=scrubber.event,
        before_breadcrumb=scrubber.breadcrumb,
        integrations=[LoggingIntegration(level=logging.INFO, event_level=logging.ERROR)],
    )
    sentry_sdk.set_tag("sysmon.role", role)
    logger.info("reporting %s errors to Sentry (secrets scrubbed)", role)
    return True


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
    except Exception:  # an unreadable password file: nothing to scrub from there
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


class Scrubber:
    """``before_send``/``before_breadcrumb``: the rules in the module docstring."""

    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first: a secret containing another is replaced whole.
        self._secrets = sorted(
            {s for s in secrets if len(s) >= MIN_SECRET_CHARS}, key=len, reverse=True
        )

    def event(self, event: Any, hint: Any) -> Any:
        return self._walk(event)

    def breadcrumb(self, crumb: Any, hint: Any) -> Any:
        return self._walk(crumb)

    def text(self, value: str) -> str:
        out = redact_cmdline([value], max_chars=MAX_CHARS)
        for secret in self._secrets:
            if secret in out:
                out = out.replace(secret, FILTERED)
        return out

    def _walk(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            out: dict[Any, Any] = {}
            for key, item in value.items():
                name = str(key)
                if item and (name.lower() in SECRET_HEADERS or is_secret_key(name)):
                    out[key] = FILTERED
                elif name == "sys.argv" and isinstance(item, list):
                    out[key] = self.text(redact_cmdline([str(a) for a in item]))
                elif name == "query_string" and isinstance(item, str):
                    out[key] = self.text("?" + item)[1:]
                else:
                    out[key] = self._walk(item)
            return out
        if isinstance(value, list | tuple):
            return [self._walk(item) for item in value]
        return value
