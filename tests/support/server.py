"""Run a real app under uvicorn on 127.0.0.1 in a background thread (tests talk HTTP)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn
from fastapi import FastAPI


@dataclass
class RunningServer:
    app: FastAPI
    base_url: str
    port: int


@contextmanager
def serve(app: FastAPI, port: int = 0, **config_kwargs: Any) -> Iterator[RunningServer]:
    """``config_kwargs`` go to ``uvicorn.Config`` (e.g. ``uvicorn_options(limits, loop)``)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    bound = sock.getsockname()[1]
    options: dict[str, Any] = {
        "log_level": "warning",
        "lifespan": "on",
        "timeout_graceful_shutdown": 2,
    }
    config = uvicorn.Config(app, **(options | config_kwargs))
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("server did not start")
        time.sleep(0.01)
    try:
        yield RunningServer(app=app, base_url=f"http://127.0.0.1:{bound}", port=bound)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
