"""Where the relational data lives: SQLite files by default, PostgreSQL when configured.

The relational data is what is not a time series: users, API keys, refresh tokens,
sessions, the audit log (``sysmon.security.store``) and alert state, history,
deliveries and silences (``sysmon.alerts.store``). By default it stays where it always
was: the ``alert_*`` tables in the metrics database file, the rest in ``auth.db``.

``relational.url`` names a PostgreSQL database instead, for every process at once::

    relational:
      url: postgresql+psycopg://sysmon@db.example.com:5432/sysmon
      password_env: SYSMON_RELATIONAL_PASSWORD   # the default
      # password_file: /run/secrets/sysmon_db_password

The password is never read from the config file (a config file is copied, committed and
pasted into bug reports): a URL with a password in the file is refused. It comes from
the variable named by ``password_env``, or the file named by ``password_file``, or the
whole URL comes from the environment (``SYSMON_RELATIONAL__URL``). A URL without a
password and no password found is fine: the server may trust the host (``trust``,
``peer``, client certificates).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from urllib.parse import SplitResult, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sysmon import secreturl
from sysmon.errors import ConfigError
from sysmon.secreturl import env_password, fill_password

DRIVER = "postgresql+psycopg"
"""The one driver we install and test (psycopg 3); ``postgresql://`` is read as it."""
EXAMPLE = "postgresql+psycopg://user@host:5432/dbname"


class RelationalConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(
        default=None,
        repr=False,  # may hold a password when it comes from the environment
        description="PostgreSQL database for users, keys, sessions, audit log and alert "
        "state (postgresql+psycopg://user@host:5432/dbname, no password). "
        "Default: SQLite files in the data directory",
    )
    password_env: str | None = Field(
        default="SYSMON_RELATIONAL_PASSWORD",
        description="Environment variable holding the database password (if it needs one)",
    )
    password_file: str | None = Field(
        default=None,
        description="File holding the database password (a Docker or systemd secret); "
        "wins over password_env",
    )
    pool_size: int = Field(
        default=5, ge=1, le=100, description="PostgreSQL connections kept open per process"
    )

    @field_validator("url")
    @classmethod
    def _postgresql_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return urlunsplit(parse_url(value.strip()))

    def resolved_url(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The URL to connect with, password filled in; None means SQLite files.

        Raises ``ConfigError`` when ``password_file`` cannot be read (a named secret that
        is missing is a deployment mistake worth stopping for)."""
        if self.url is None:
            return None
        if urlsplit(self.url).password is not None:
            return self.url
        return fill_password(self.url, self._password(environ))

    def _password(self, environ: Mapping[str, str] | None) -> str | None:
        if self.password_file:
            try:
                text = Path(self.password_file).read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError(
                    "relational.password_file", f"cannot read {self.password_file}: {exc}"
                ) from None
            return text.rstrip("\r\n")
        return env_password(self.password_env, environ)


def parse_url(text: str) -> SplitResult:
    """A PostgreSQL URL for our driver; ``ValueError`` (that never shows the password) if
    it is not one. Parsed here with ``urllib`` rather than SQLAlchemy so that loading the
    settings does not import SQLAlchemy."""
    hint = "leave relational.url unset for the SQLite files"
    schemes = ("postgresql", "postgres", DRIVER)
    url = secreturl.parse_url(text, schemes, kind="database", example=EXAMPLE, hint=hint)
    if not url.path.strip("/"):
        raise ValueError(f"the URL names no database ({EXAMPLE})")
    return url._replace(scheme=DRIVER)
