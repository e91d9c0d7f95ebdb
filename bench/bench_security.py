"""Issue 10: latency the security middlewares add to one request, in process.

``GET /api/v1/metrics/current`` is the cheapest real answer (bytes serialised once per
tick), so what the layers in front of it cost shows plainly. Each variant is the real
``create_app`` with some of its ``install_*`` hooks replaced by no-ops, so the script
measures whatever those hooks install at the time it runs:

* ``bare``: none of ``install_http_security``, ``install_rate_limits``, ``install_auth``
* ``+ http``: Host check, security headers (CORS off, the default)
* ``+ ratelimit``: rate limits (memory storage, the default 1200/minute; calls come from
  64 client addresses in turn, so every request is counted and none is refused)
* ``+ auth``: authentication as configured (``auth.mode: none`` by default; ``--jwt``
  measures a valid bearer token checked on every request)
* ``all``: everything, as ``create_app`` builds it

Calls are raw ASGI (no socket, no HTTP parsing, no uvicorn), one at a time on one event
loop, timed with ``perf_counter_ns`` around the whole call. Variants are interleaved in
rounds (``--batch`` calls each per round) so drift on this shared machine hits them
alike. A real in-process agent ticks once, so ``/current`` answers 200 with real data.

    .venv/bin/python -m bench.bench_security [--rounds 40] [--batch 500] [--jwt]
        [--redis redis://127.0.0.1:6379/0]

With ``--redis`` the limit windows go to that Redis, under a key prefix of their own that
expires with the window (a minute).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack, ExitStack, contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

from fastapi import FastAPI

import sysmon.main as app_main
from sysmon.agent.service import Agent
from sysmon.clock import FakeClock
from sysmon.config import Settings, load_settings

PATH = "/api/v1/metrics/current"
# The shipped default limit; calls rotate over CLIENTS client addresses so that none
# reaches it (every call is counted and admitted). A single client far over any real
# limit would measure the moving window's list of a million timestamps instead.
DEFAULT_LIMIT = "1200/minute"
CLIENTS = 64
HOOKS = ("install_http_security", "install_rate_limits", "install_auth")
VARIANTS: dict[str, tuple[str, ...]] = {
    "bare": (),
    "+ http": ("install_http_security",),
    "+ ratelimit": ("install_rate_limits",),
    "+ auth": ("install_auth",),
    "all": HOOKS,
}


@contextmanager
def only_hooks(kept: tuple[str, ...]) -> Iterator[None]:
    """``create_app`` with the hooks not in ``kept`` replaced by no-ops."""
    with ExitStack() as stack:
        for name in HOOKS:
            if name not in kept:
                stack.enter_context(mock.patch.object(app_main, name, lambda *_: None))
        yield


class Caller:
    """One GET of ``PATH`` as uvicorn would hand it to the app, minus the socket."""

    def __init__(self, app: FastAPI, headers: list[tuple[bytes, bytes]]) -> None:
        self.app = app
        self.scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": PATH,
            "raw_path": PATH.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": [(b"host", b"127.0.0.1:8000"), (b"accept", b"*/*"), *headers],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
        }
        self.status = 0
        self.clients = [(f"10.0.0.{i + 1}", 50000) for i in range(CLIENTS)]
        self.calls = 0

    async def receive(self) -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]

    async def call(self) -> int:
        scope = dict(self.scope)
        scope["state"] = {}
        scope["client"] = self.clients[self.calls % CLIENTS]
        self.calls += 1
        start = time.perf_counter_ns()
        await self.app(scope, self.receive, self.send)
        elapsed = time.perf_counter_ns() - start
        if self.status != 200:
            raise RuntimeError(f"{PATH} answered {self.status}")
        return elapsed


def settings_for(folder: Path, jwt: bool, redis: str | None) -> Settings:
    limits: dict[str, str] = {"default": DEFAULT_LIMIT}
    if redis:
        limits |= {"storage": redis, "key_prefix": f"sysmon-bench-{folder.name}"}
    return load_settings(
        None,
        database={"path": str(folder / "sysmon.db")},
        auth={"mode": "jwt" if jwt else "none", "users_db": str(folder / "auth.db")},
        server={"security": {"rate_limits": limits}},
    )


def bearer_for(app: FastAPI) -> list[tuple[bytes, bytes]]:
    """An access token for a fresh admin user (``--jwt``), through the auth service."""
    service = app.state.auth
    user = service.store.get_user("bench") or service.accounts.create_user(
        "bench", "admin", "bench-password-0123", by=None, source="bench"
    )
    token = service.issue_pair(user).access_token
    return [(b"authorization", f"Bearer {token}".encode())]


async def measure(
    rounds: int, batch: int, jwt: bool, redis: str | None = None
) -> dict[str, list[int]]:
    folder = Path(tempfile.mkdtemp(prefix="sysmon-bench-sec-"))
    sock = folder / "agent.sock"
    settings = settings_for(folder, jwt, redis)
    clock = FakeClock(start=time.time())
    agent = Agent(settings, clock=clock, channel=sock)
    agent.start(schedule=False)
    try:
        async with AsyncExitStack() as stack:
            callers: dict[str, Caller] = {}
            for name, kept in VARIANTS.items():
                with only_hooks(kept):
                    app = app_main.create_app(
                        settings, clock=clock, channel=sock, start_agent=False
                    )
                await stack.enter_async_context(app.router.lifespan_context(app))
                headers = bearer_for(app) if jwt and "install_auth" in kept else []
                callers[name] = Caller(app, headers)
            for caller in callers.values():
                await wait_connected(caller.app)
            snapshot = agent.tick(clock.time())
            for caller in callers.values():
                feed = caller.app.state.feed
                ok = await asyncio.to_thread(feed.wait_for, snapshot.timestamp, 10)
                if not ok:
                    raise RuntimeError("tick not delivered")
            for caller in callers.values():  # warm-up: caches, first-request setup
                for _ in range(max(200, batch)):
                    await caller.call()
            samples: dict[str, list[int]] = {name: [] for name in callers}
            for _ in range(rounds):
                for name, caller in callers.items():
                    samples[name].extend([await caller.call() for _ in range(batch)])
            return samples
    finally:
        agent.stop()
        shutil.rmtree(folder, ignore_errors=True)


async def wait_connected(app: FastAPI, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not app.state.subscriber.connected:
        if time.monotonic() > deadline:
            raise RuntimeError("server never connected to the agent")
        await asyncio.sleep(0.01)


def percentile(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000.0  # ns -> us


def report(samples: dict[str, list[int]], jwt: bool, redis: str | None) -> str:
    base50 = percentile(samples["bare"], 0.50)
    base99 = percentile(samples["bare"], 0.99)
    lines = [
        f"auth.mode {'jwt (bearer token)' if jwt else 'none'}; "
        f"rate limit storage {redis or 'memory://'}; "
        f"{len(samples['bare'])} calls per variant; microseconds per request",
        "",
        "| variant | p50 | p99 | mean | p50 added | p99 added |",
        "|---|---|---|---|---|---|",
    ]
    for name, values in samples.items():
        p50, p99 = percentile(values, 0.50), percentile(values, 0.99)
        mean = statistics.fmean(values) / 1000.0
        lines.append(
            f"| {name} | {p50:.1f} | {p99:.1f} | {mean:.1f} | "
            f"{p50 - base50:+.1f} | {p99 - base99:+.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--jwt", action="store_true", help="auth.mode jwt with a bearer token")
    parser.add_argument("--redis", help="rate limit storage, e.g. redis://127.0.0.1:6379/0")
    args = parser.parse_args(argv)
    samples = asyncio.run(measure(args.rounds, args.batch, args.jwt, args.redis))
    print(report(samples, args.jwt, args.redis))
    return 0


if __name__ == "__main__":
    sys.exit(main())
