"""Load generation: wrk (Debian package) when present, else a bounded asyncio client.

Both report requests/s and latency percentiles for N concurrent connections against one
URL on 127.0.0.1, for a fixed duration.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx


@dataclass
class LoadResult:
    tool: str
    url: str
    connections: int
    seconds: float
    requests: int
    errors: int
    rps: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    non_2xx: int = 0
    socket_errors: int = 0


_UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        raise ValueError(text)
    return float(m.group(1)) * _UNIT[m.group(2)]


# Appends a different "&nonce=<n>" to each request, so no two URLs are alike (defeats
# caches keyed on the URL; the service ignores unknown query parameters).
DISTINCT_URLS_LUA = """
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", wrk.path .. "&nonce=" .. n .. "-" .. math.random(1, 1000000000))
end
"""


def run_wrk(
    url: str,
    connections: int,
    seconds: int,
    threads: int = 2,
    lua: str | None = None,
    timeout: str = "5s",
) -> LoadResult:
    extra: list[str] = []
    if lua is not None:
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
            script.write(lua)
        extra = ["-s", script.name]
    out = subprocess.run(
        [
            "wrk",
            *extra,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "--timeout",
            timeout,
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 30,
    ).stdout
    lat = {m.group(1): _ms(m.group(2)) for m in re.finditer(r"^\s+(\d+)%\s+(\S+)", out, re.M)}
    mean = _ms(re.search(r"Latency\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    reqs = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = sock = 0
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        non2xx = int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        sock = sum(int(g) for g in m.groups())
    return LoadResult(
        "wrk",
        url,
        connections,
        seconds,
        reqs,
        non2xx + sock,
        rps,
        lat["50"],
        lat["99"],
        mean,
        non_2xx=non2xx,
        socket_errors=sock,
    )


async def python_load(
    url: str | Callable[[], str], connections: int, seconds: float, timeout: float = 5
) -> LoadResult:
    """Closed-loop asyncio client (weaker than wrk: it competes for the same cores).
    ``url`` may be a function returning the URL of each request (a mix of endpoints)."""
    next_url = url if callable(url) else (lambda: url)
    latencies: list[float] = []
    non2xx = sock = 0
    stop = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=timeout) as client:

        async def worker() -> None:
            nonlocal non2xx, sock
            while time.monotonic() < stop:
                t0 = time.perf_counter()
                try:
                    r = await client.get(next_url())
                    non2xx += not 200 <= r.status_code < 300
                except httpx.HTTPError:
                    sock += 1
                latencies.append((time.perf_counter() - t0) * 1000)

        t0 = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.monotonic() - t0
    q = statistics.quantiles(latencies, n=100)
    label = url if isinstance(url, str) else "mix"
    return LoadResult(
        "python-httpx",
        label,
        connections,
        elapsed,
        len(latencies),
        non2xx + sock,
        len(latencies) / elapsed,
        q[49],
        q[98],
        statistics.fmean(latencies),
        non_2xx=non2xx,
        socket_errors=sock,
    )


def load(
    url: str, connections: int = 100, seconds: int = 15, distinct_urls: bool = False
) -> LoadResult:
    if shutil.which("wrk"):
        return run_wrk(url, connections, seconds, lua=DISTINCT_URLS_LUA if distinct_urls else None)
    if distinct_urls:
        raise RuntimeError("distinct-URL load needs wrk (apt-get install wrk)")
    return asyncio.run(python_load(url, connections, seconds))
