"""Connection URLs whose password never comes from the config file (standard library
only: the settings import it).

One rule for every ``*.url`` that may carry a password (``relational.url``,
``redis.url``, ``tasks.broker_url``): the file gives the URL without it, the password
comes from the environment (or a file), and ``fill_password`` puts it back in when
connecting; ``refuse_inline_passwords`` stops a config file that holds one, naming the
key; ``safe_url`` is the URL for logs and health.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import SplitResult, quote, urlsplit, urlunsplit

from sysmon.errors import ConfigError

INLINE_PASSWORD_HINTS: dict[tuple[str, str], str] = {
    ("relational", "url"): "and put it in the environment variable named by "
    "relational.password_env (SYSMON_RELATIONAL_PASSWORD by default) or a file named by "
    "relational.password_file, or give the whole URL in SYSMON_RELATIONAL__URL",
    ("tasks", "broker_url"): "and put it in the environment variable named by "
    "tasks.password_env (SYSMON_TASKS_PASSWORD by default), or give the whole URL in "
    "SYSMON_TASKS__BROKER_URL",
    ("redis", "url"): "and put it in the environment variable named by redis.password_env "
    "(SYSMON_REDIS_PASSWORD by default), or give the whole URL in SYSMON_REDIS__URL",
}
"""Every (section, key) of the config file that is a URL a password could be written in,
with where the password goes instead."""


def with_password(url: SplitResult, password: str) -> SplitResult:
    user = url.username or ""
    host = url.netloc.rpartition("@")[2]
    return url._replace(netloc=f"{quote(user, safe='')}:{quote(password, safe='')}@{host}")


def fill_password(url: str, password: str | None) -> str:
    """``url`` with ``password`` put in, unless it has one already or there is none."""
    parts = urlsplit(url)
    if parts.password is None and password:
        parts = with_password(parts, password)
    return urlunsplit(parts)


def env_password(name: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """The value of the variable ``name`` (``None`` when unnamed, unset or empty)."""
    if not name:
        return None
    return (os.environ if environ is None else environ).get(name) or None


def parse_url(
    value: str, schemes: tuple[str, ...], *, kind: str, example: str, hint: str
) -> SplitResult:
    """``value`` split, or ``ValueError`` (never showing a password) when it is not a
    ``kind`` URL with one of ``schemes``."""
    try:
        parts = urlsplit(value.strip())
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError:
        raise ValueError(f"not a {kind} URL ({example})") from None
    if parts.scheme not in schemes:
        raise ValueError(
            f"scheme {parts.scheme or '(none)'!r} is not supported: use {example} ({hint})"
        )
    return parts


def safe_url(url: str) -> str:
    """``url`` without its password, for logs and health."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}" if user else f":***@{host}"))


def refuse_inline_passwords(data: Mapping[str, Any]) -> None:
    """Raise ``ConfigError`` naming the key when the config file writes a password into
    any URL of ``INLINE_PASSWORD_HINTS``."""
    for (section_name, key), hint in INLINE_PASSWORD_HINTS.items():
        section = data.get(section_name)
        url = section.get(key) if isinstance(section, Mapping) else None
        if not isinstance(url, str):
            continue
        try:
            has_password = urlsplit(url.strip()).password is not None
        except ValueError:
            continue  # the model's validator names the problem
        if has_password:
            raise ConfigError(
                f"{section_name}.{key}",
                f"secrets are not read from the config file: remove the password from the "
                f"URL {hint}",
            )
