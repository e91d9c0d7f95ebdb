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
  and any ``SYSMON_*`` variable whose name says secret: ``sysmon.known_secrets``) is
  replaced wherever it appears.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from sysmon import __version__
from sysmon.collectors.redact import MAX_CHARS, is_secret_key, redact_cmdline
from sysmon.known_secrets import SecretMask, secret_values

if TYPE_CHECKING:
    from sysmon.config import Settings

__all__ = ["FILTERED", "Scrubber", "install_sentry", "secret_values"]

logger = logging.getLogger(__name__)

DSN_ENV = "SYSMON_SENTRY_DSN"
ENVIRONMENT_ENV = "SYSMON_SENTRY_ENVIRONMENT"
FILTERED = "[Filtered]"
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


class Scrubber:
    """``before_send``/``before_breadcrumb``: the rules in the module docstring."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self._mask = SecretMask(secrets, FILTERED)

    def event(self, event: Any, hint: Any) -> Any:
        return self._walk(event)

    def breadcrumb(self, crumb: Any, hint: Any) -> Any:
        return self._walk(crumb)

    def text(self, value: str) -> str:
        return self._mask(redact_cmdline([value], max_chars=MAX_CHARS))

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
