"""The ``sysmon`` command: ``serve``, ``collect --once``, ``config check``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from app.clock import SystemClock
from app.config import Settings, config_path_from_env, load_settings
from app.errors import ConfigError


def _settings(path: str | None) -> Settings:
    return load_settings(Path(path) if path else config_path_from_env())


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = _settings(args.config)
    if args.config:
        os.environ["SYSMON_CONFIG"] = args.config
    from app.main import create_app

    host = args.host or settings.server.host
    port = args.port or settings.server.port
    app = create_app(settings)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=settings.logging.level.lower(),
        access_log=settings.server.access_log,
    )
    return 0


def cmd_collect(args: argparse.Namespace) -> int:
    from app.collectors.registry import discover
    from app.collectors.source import PsutilSource
    from app.scheduler import CollectionLoop
    from app.serialize import snapshot_document

    settings = _settings(args.config)
    collectors = discover().build(settings.collectors, PsutilSource())
    loop = CollectionLoop(
        collectors,
        SystemClock(),
        consumers=[],
        on_snapshot=lambda s, m: None,
        timeout_seconds=settings.collection.collector_timeout_seconds,
    )
    try:
        # Rates and CPU percentages need two samples: take a baseline, wait, sample again.
        loop.tick()
        time.sleep(args.wait)
        snapshot = loop.tick()
    finally:
        loop.close()
    document = snapshot_document(snapshot, settings.api.current_process_rows)
    sys.stdout.write(json.dumps(document, indent=2 if args.pretty else None, default=str) + "\n")
    return 0


def cmd_config_check(args: argparse.Namespace) -> int:
    from app.main import validate_settings

    settings = _settings(args.config)
    validate_settings(settings)
    sys.stdout.write("configuration OK\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sysmon", description="Single-server system monitor")
    parser.add_argument(
        "--config", help="config file (default: $SYSMON_CONFIG or config/config.yaml)"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the service (API, dashboard, collection)")
    serve.add_argument("--host", help="bind address (default: server.host, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: server.port, 8000)")
    serve.set_defaults(func=cmd_serve)
    collect = sub.add_parser("collect", help="collect once and print a JSON snapshot")
    collect.add_argument("--once", action="store_true", default=True, help="(default) one snapshot")
    collect.add_argument(
        "--wait", type=float, default=1.0, help="seconds between the baseline and the sample"
    )
    collect.add_argument("--pretty", action="store_true", help="indent the JSON")
    collect.set_defaults(func=cmd_collect)
    config = sub.add_parser("config", help="configuration commands")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    check = config_sub.add_parser("check", help="validate the configuration and exit")
    check.set_defaults(func=cmd_config_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        sys.stderr.write(f"config error: {exc}\n")
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
