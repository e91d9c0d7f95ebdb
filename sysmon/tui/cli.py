"""``sysmon top``: where to connect and with what, then run ``TopApp``.

The address comes from ``--url``, else from the config file's ``server.host``/``port``
(a wildcard bind address becomes loopback; ``https`` when the config serves TLS), so on
the monitored machine ``sysmon top`` needs no arguments, and over SSH ``--url`` reaches
any server. The token comes from ``--token``, else ``$SYSMON_TOKEN``: the variable is the
better place, because command-line arguments are visible to every user in ``ps``.
"""

from __future__ import annotations

import argparse
import logging
import os
import ssl
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sysmon.config import Settings

TOKEN_ENV = "SYSMON_TOKEN"
"""Where ``sysmon top`` finds its token when ``--token`` is not given."""

WILDCARDS = {"", "0.0.0.0", "::", "[::]"}


@dataclass(frozen=True)
class Target:
    url: str
    token: str | None


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: Sequence[argparse.ArgumentParser] = (),
) -> None:
    top = subparsers.add_parser(
        "top", help="live terminal view of a sysmon server (reads its API)", parents=parents
    )
    top.add_argument(
        "--url", help="server address, e.g. http://host:8000 (default: server.host/port)"
    )
    top.add_argument(
        "--token",
        help=f"API key (sysmon_...) or access JWT; default ${TOKEN_ENV} (preferred: "
        "arguments are visible in ps)",
    )
    top.add_argument(
        "--interval",
        type=float,
        default=1.0,
        help="seconds between polls when the live stream is unavailable (default 1)",
    )
    top.add_argument("--cacert", help="PEM file of the CA that signed the server's certificate")
    top.set_defaults(func=cmd_top)


def server_url(settings: Settings) -> str:
    """The address a local client reaches the configured server at."""
    host = settings.server.host.strip()
    if host in WILDCARDS:
        host = "::1" if ":" in host else "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    scheme = "https" if settings.server.security.ssl_certfile else "http"
    return f"{scheme}://{host}:{settings.server.port}"


def normalize_url(url: str) -> str:
    """``host:8000`` -> ``http://host:8000``; no trailing slash."""
    url = url.strip().rstrip("/")
    return url if "://" in url else f"http://{url}"


def resolve_target(args: argparse.Namespace, environ: Mapping[str, str]) -> Target:
    """The URL and token to use. The config file is read only without ``--url``, so a
    remote ``sysmon top --url ...`` works on a machine with no sysmon config at all."""
    if args.url:
        url = normalize_url(args.url)
    else:
        from sysmon.cli import _settings  # the same --config / $SYSMON_CONFIG rules as serve

        url = server_url(_settings(args))
    token = args.token or environ.get(TOKEN_ENV) or None
    return Target(url, token)


def cmd_top(args: argparse.Namespace) -> int:
    target = resolve_target(args, os.environ)
    if not target.url.startswith(("http://", "https://")):
        sys.stderr.write(f"sysmon top: --url must be http:// or https://, not {target.url}\n")
        return 2
    if args.interval <= 0:
        sys.stderr.write("sysmon top: --interval must be positive\n")
        return 2
    verify: ssl.SSLContext | bool = True
    if args.cacert:
        try:
            verify = ssl.create_default_context(cafile=args.cacert)
        except (OSError, ssl.SSLError) as exc:
            sys.stderr.write(f"sysmon top: cannot use --cacert {args.cacert}: {exc}\n")
            return 2
    from textual.logging import TextualHandler

    from sysmon.tui.app import TopApp

    # Log lines written to the terminal would tear the screen: send them to Textual's
    # devtools console instead (``textual console``), and drop httpx's per-request INFO.
    root = logging.getLogger()
    root.handlers = [TextualHandler()]
    logging.getLogger("httpx").setLevel(logging.WARNING)
    TopApp(target.url, target.token, interval=args.interval, verify=verify).run()
    return 0
