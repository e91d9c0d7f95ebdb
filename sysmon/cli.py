"""The ``sysmon`` command.

sysmon serve     agent + server, supervised (what ``make run`` runs)
sysmon agent     collectors, store writer, alerts (one per data directory)
sysmon server    API, dashboard, live stream (``server.workers`` processes)
sysmon collect   one JSON snapshot to stdout
sysmon config check
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import yaml
from pydantic import ValidationError
from pydantic_settings.exceptions import SettingsError

from sysmon import __version__
from sysmon.clock import SystemClock
from sysmon.config import (
    CONFIG_ENV,
    DEFAULT_CONFIG_PATH,
    SERVED_URL_ENV,
    Settings,
    check_writable_file,
    config_error,
    config_path_from_env,
    forwarded_allow_ips,
    load_settings,
    served_url,
)
from sysmon.errors import ConfigError
from sysmon.logs import configure_logging, configure_logging_for

logger = logging.getLogger("sysmon.cli")


def _config_path(args: argparse.Namespace) -> Path | None:
    """The file a command reads: ``--config`` (before or after the subcommand), else
    ``$SYSMON_CONFIG``, else ``config/config.yaml`` if it exists; ``None`` = built-in
    defaults. A file that is named but missing is an error, never a silent default."""
    given = getattr(args, "config", None)
    return Path(given).resolve() if given else config_path_from_env()


def _config_origin(args: argparse.Namespace) -> str:
    if getattr(args, "config", None):
        return "--config"
    if os.environ.get(CONFIG_ENV):
        return f"${CONFIG_ENV}"
    return "the default path"


def _settings(args: argparse.Namespace) -> Settings:
    """The settings a command runs with (``loaded_settings``: loaded already, by the
    ``sysmon serve`` this child was forked from). Commands that start the service check up front
    what would otherwise fail once running, so that a mistake stops them at once with
    ``config error: <key>: ...`` (exit 2) instead of a supervised child failing in a
    restart loop: ``serve`` everything ``config check`` checks, ``agent`` its database."""
    settings = getattr(args, "loaded_settings", None) or load_settings(_config_path(args))
    command = getattr(args, "command", None)
    if command == "serve":
        from sysmon.preflight import check_settings

        check_settings(settings)
    elif command == "agent":
        check_writable_file("database.path", Path(settings.database.path))
    return settings


def cmd_agent(args: argparse.Namespace) -> int:
    from sysmon.agent.process import run_agent

    settings = _settings(args)
    configure_logging_for(settings)
    log = settings.logging
    if log.file:  # the server opens its own in its lifespan (sysmon.api.requestlog)
        from sysmon.logs import add_file_log

        add_file_log(log.file, "agent", max_bytes=log.file_max_bytes, backups=log.file_backups)
    return run_agent(settings, _config_path(args))


def cmd_reload(args: argparse.Namespace) -> int:
    from sysmon.agent.process import send_reload
    from sysmon.main import validate_settings

    settings = _settings(args)
    validate_settings(settings)  # refuse a bad file here, naming the key
    return send_reload(settings)


def cmd_server(args: argparse.Namespace) -> int:
    import uvicorn

    from sysmon.api.limits import uvicorn_options
    from sysmon.parentwatch import watch_parent

    watch_parent()
    settings = _settings(args)
    configure_logging_for(settings)
    host = args.host or settings.server.host
    port = args.port or settings.server.port
    try:
        tls = _tls_options(args, settings)
        _check_bind(host, settings, args.insecure, warn=True)
    except _Refused as exc:
        sys.stderr.write(f"sysmon server: {exc}\n")
        return 2
    common = {
        "host": host,
        "port": port,
        "log_config": None,  # uvicorn logs through sysmon.logs' handler and format
        "log_level": settings.logging.level.lower(),
        "access_log": settings.server.access_log,
        # X-Forwarded-For/-Proto are believed from these peers only (workers too).
        "proxy_headers": True,
        "forwarded_allow_ips": forwarded_allow_ips(settings.server),
        **uvicorn_options(settings.server.limits, settings.server.event_loop),
        **tls,
    }
    # Test notifications link to the address actually served (workers inherit it).
    os.environ[SERVED_URL_ENV] = served_url(host, port, tls=bool(tls))
    path = _config_path(args)
    if settings.server.workers > 1:
        # Workers import ``sysmon.main:app``, built from the environment: pass them the
        # config file, and tell them an agent is someone else's job.
        if path is not None:
            os.environ[CONFIG_ENV] = str(path)
        os.environ["SYSMON_SERVER__START_AGENT"] = "false"
        uvicorn.run("sysmon.main:app", workers=settings.server.workers, **common)
        return 0
    from sysmon.main import create_app

    app = create_app(settings, start_agent=False, config_path=path)
    uvicorn.run(app, **common)
    return 0


class _Refused(Exception):
    """The server must not start as asked; the message says why and what to do."""


def _tls_options(args: argparse.Namespace, settings: Settings) -> dict[str, str]:
    """uvicorn's ``ssl_certfile``/``ssl_keyfile`` from the flags, else the config (both or
    neither, readable), as absolute paths; ``{}`` for plain HTTP."""
    security = settings.server.security
    certfile = args.ssl_certfile or security.ssl_certfile
    keyfile = args.ssl_keyfile or security.ssl_keyfile
    if certfile is None and keyfile is None:
        return {}
    if certfile is None or keyfile is None:
        raise _Refused(
            "TLS needs both a certificate and its key: give --ssl-certfile and --ssl-keyfile "
            "(or server.security.ssl_certfile and ssl_keyfile)"
        )
    for what, name in (("certificate", certfile), ("key", keyfile)):
        if not (os.path.isfile(name) and os.access(name, os.R_OK)):
            raise _Refused(f"TLS {what} {name} is not a readable file")
    return {
        "ssl_certfile": str(Path(certfile).resolve()),
        "ssl_keyfile": str(Path(keyfile).resolve()),
    }


def _check_bind(host: str, settings: Settings, insecure: bool, *, warn: bool) -> None:
    """Refuse a non-loopback bind without authentication, unless ``--insecure``."""
    from sysmon.security.hosts import is_loopback_host

    if settings.auth.mode != "none" or is_loopback_host(host):
        return
    if not insecure:
        raise _Refused(
            f"refusing to listen on {host}: auth.mode is none: the API would be open to the "
            "network; use auth.mode: jwt or pass --insecure"
        )
    if warn:
        logger.warning(
            "INSECURE: listening on %s with auth.mode none (--insecure): anyone who can reach "
            "this port can read process lists and command lines and silence every alert. "
            "Requests are still only served for a loopback Host name (localhost, 127.0.0.1).",
            host,
        )


def cmd_serve(args: argparse.Namespace) -> int:
    """Agent and server as two supervised child processes; SIGTERM stops both."""
    from sysmon.channel import data_dir
    from sysmon.supervisor import sysmon_argv

    settings = _settings(args)
    configure_logging_for(settings)
    host = args.host or settings.server.host
    port = args.port or settings.server.port
    try:  # refused here too, so that serve exits at once instead of restarting a server
        tls = _tls_options(args, settings)
        _check_bind(host, settings, args.insecure, warn=False)
    except _Refused as exc:
        sys.stderr.write(f"sysmon serve: {exc}\n")
        return 2
    path = _config_path(args)
    config = ["--config", str(path)] if path else []
    server_args = [*config, "server"]
    if args.host:
        server_args += ["--host", args.host]
    if args.port:
        server_args += ["--port", str(args.port)]
    if args.ssl_certfile or args.ssl_keyfile:
        server_args += ["--ssl-certfile", tls["ssl_certfile"], "--ssl-keyfile", tls["ssl_keyfile"]]
    if args.insecure:
        server_args.append("--insecure")
    # The agent's notifications link to the address actually served, --host/--port/TLS
    # flags included (server.public_url, when set, wins; see sysmon.config.public_url).
    os.environ[SERVED_URL_ENV] = served_url(host, port, tls=bool(tls))
    scheme = "https" if tls else "http"
    plan = {
        "agent": sysmon_argv(*config, "agent"),
        "server": sysmon_argv(*server_args),
        "lock_dir": str(data_dir(settings.database.path)),
        "log_level": settings.logging.level,
        "banner": f"sysmon serving on {scheme}://{host}:{port}/ (agent + server)",
    }
    from sysmon.serve import fork_then_supervise

    return fork_then_supervise(plan, lambda argv: _prepared(argv, settings))


def _prepared(argv: Sequence[str], settings: Settings) -> Callable[[], int]:
    """``main(argv)`` with its parsing done here, now, and these settings."""
    args = build_parser().parse_args(argv)
    args.loaded_settings = settings
    return lambda: _dispatch(args)


def cmd_collect(args: argparse.Namespace) -> int:
    from sysmon.agent.collection import Collection
    from sysmon.catalog import metric_catalog
    from sysmon.collectors.registry import discover
    from sysmon.collectors.source import PsutilSource
    from sysmon.serialize import snapshot_document

    settings = _settings(args)
    source = PsutilSource()
    registry = discover(plugins=settings.collection.plugins)
    collection = Collection(
        registry.build(settings.collectors, source),
        SystemClock(),
        deadline_seconds=max(settings.collection.deadline_seconds, 5.0),
    )
    try:
        # Rates and CPU percentages need two samples: take a baseline, wait, sample again.
        collection.tick(time.time())
        time.sleep(args.wait)
        snapshot = collection.tick(time.time())
    finally:
        collection.close()
        source.close()
    integers = metric_catalog(registry).integer_fields
    document = snapshot_document(snapshot, settings.api.current_process_rows, integers)
    sys.stdout.write(json.dumps(document, indent=2 if args.pretty else None, default=str) + "\n")
    return 0


def cmd_config_check(args: argparse.Namespace) -> int:
    """Check exactly what ``serve`` would run with, and say what that was: the file (and
    where its name came from) or the built-in defaults, plus the environment variables
    that override it (names only: values may be secrets)."""
    from sysmon.main import validate_settings

    path = _config_path(args)
    settings = _settings(args)
    validate_settings(settings)
    if path is None:
        source = (
            f"no config file ({DEFAULT_CONFIG_PATH} does not exist and ${CONFIG_ENV} is not "
            "set): built-in defaults"
        )
    else:
        source = f"{path.absolute()} (from {_config_origin(args)})"
    lines = [f"configuration OK: {source}"]
    overrides = _env_overrides(os.environ)
    if overrides:
        lines.append(f"overridden by the environment: {', '.join(overrides)}")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


def _env_overrides(environ: Mapping[str, str]) -> list[str]:
    """``SYSMON_*`` variables that set configuration keys (not secrets or internals)."""
    sections = {name.upper() for name in Settings.model_fields}
    found = []
    for name in environ:
        upper = name.upper()
        if upper.startswith("SYSMON_"):
            section = upper.removeprefix("SYSMON_").split("__", 1)[0]
            if section in sections:
                found.append(name)
    return sorted(found)


def build_parser() -> argparse.ArgumentParser:
    config_help = "config file (default: $SYSMON_CONFIG or config/config.yaml)"
    parser = argparse.ArgumentParser(prog="sysmon", description="Single-server system monitor")
    parser.add_argument("--config", help=config_help)
    parser.add_argument("--version", action="version", version=f"sysmon {__version__}")
    # ``--config`` works after the subcommand too (SUPPRESS keeps the earlier one).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=argparse.SUPPRESS, help=config_help)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, func, text in (
        ("serve", cmd_serve, "run the whole monitor: agent + server, supervised"),
        ("server", cmd_server, "run the API, dashboard and live stream only"),
    ):
        p = sub.add_parser(name, help=text, parents=[common])
        p.add_argument("--host", help="bind address (default: server.host, 127.0.0.1)")
        p.add_argument("--port", type=int, help="port (default: server.port, 8000)")
        p.add_argument(
            "--ssl-certfile", help="PEM certificate: serve HTTPS (server.security.ssl_certfile)"
        )
        p.add_argument("--ssl-keyfile", help="PEM private key (server.security.ssl_keyfile)")
        p.add_argument(
            "--insecure",
            action="store_true",
            help="allow a non-loopback bind with auth.mode none (no authentication!)",
        )
        p.set_defaults(func=func)
    agent = sub.add_parser(
        "agent", help="run the collectors, store writer and alerts only", parents=[common]
    )
    agent.set_defaults(func=cmd_agent)
    reload = sub.add_parser(
        "reload", help="make the running agent re-read the configuration", parents=[common]
    )
    reload.set_defaults(func=cmd_reload)
    collect = sub.add_parser(
        "collect", help="collect once and print a JSON snapshot", parents=[common]
    )
    collect.add_argument("--once", action="store_true", default=True, help="(default) one snapshot")
    collect.add_argument(
        "--wait", type=float, default=1.0, help="seconds between the baseline and the sample"
    )
    collect.add_argument("--pretty", action="store_true", help="indent the JSON")
    collect.set_defaults(func=cmd_collect)
    config = sub.add_parser("config", help="configuration commands")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    check = config_sub.add_parser(
        "check", help="validate the configuration and exit", parents=[common]
    )
    check.set_defaults(func=cmd_config_check)
    from sysmon.security.cli import register as register_accounts  # sysmon user, sysmon key

    register_accounts(sub, [common])
    from sysmon.tui.cli import register as register_top  # sysmon top

    register_top(sub, [common])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Exit codes: 0 ok, 2 usage or configuration error (one line,
    ``config error: <key>: <message>``, never a traceback), 3 data directory held."""
    configure_logging()  # sysmon's INFO lines from the first one; levels once settings load
    return _dispatch(build_parser().parse_args(argv))


def _dispatch(args: argparse.Namespace) -> int:
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        return _config_failure(exc)
    except ValidationError as exc:  # a model validated outside load_settings
        return _config_failure(config_error(exc))
    except SettingsError as exc:
        return _config_failure(ConfigError("<environment>", str(exc)))
    except yaml.YAMLError as exc:
        return _config_failure(ConfigError("<yaml>", str(exc)))
    return code


def _config_failure(exc: ConfigError) -> int:
    sys.stderr.write(f"config error: {exc}\n")
    return 2


if __name__ == "__main__":
    sys.exit(main())
