"""One agent, two ``sysmon server`` processes, the machine's Redis between them.

The servers are given a Unix socket path where no agent listens, so every tick they
serve came through Redis; both must stream the same ticks and answer ``/current`` with
the same body, as two API processes behind a load balancer have to.
"""

from __future__ import annotations

import itertools
import json
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

from sysmon.fanout import decode_frame
from sysmon.storage.config import RetentionConfig
from sysmon.storage.sqlite import SQLiteStore
from tests.live.support import REDIS_URL, drop_keys, redis_or_skip, unique_prefix
from tests.support.process import free_port, sysmon_process, wait_healthy


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("SYSMON_")}


@contextmanager
def _process(argv: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with sysmon_process(argv, log, _env()) as proc:
        yield proc


def _config(path: Path, body: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(body))
    return path


def _stream_events(base: str, want: int, out: list[tuple[float, bytes]]) -> None:
    """Read ``want`` snapshot events from ``base``'s ``/api/v1/stream`` into ``out``."""
    with (
        httpx.Client(timeout=httpx.Timeout(10, read=20)) as client,
        client.stream("GET", f"{base}/api/v1/stream") as response,
    ):
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: "):
                body = line[len("data: ") :].encode()
                out.append((float(json.loads(body)["timestamp"]), body))
                if len(out) >= want:
                    return


def test_two_server_processes_serve_the_same_live_ticks(tmp_path: Path) -> None:
    client = redis_or_skip()
    prefix = unique_prefix()
    sock_dir = Path(tempfile.mkdtemp(prefix="sysmon-r"))  # short enough for sun_path
    db = tmp_path / "data" / "sysmon.db"
    common: dict[str, Any] = {
        "database": {"path": str(db)},
        "collection": {"interval_seconds": 1},
        "redis": {"url": REDIS_URL, "key_prefix": prefix},
        "alerts": {"enabled": False},
    }
    ports = [free_port(), free_port()]
    agent_cfg = _config(
        tmp_path / "agent.yaml", {**common, "agent": {"socket": str(sock_dir / "agent.sock")}}
    )
    server_cfgs = [
        _config(
            tmp_path / f"server{i}.yaml",
            {
                **common,
                # No agent listens here: ticks can only come through Redis.
                "agent": {"socket": str(sock_dir / "nobody.sock")},
                "server": {
                    "port": port,
                    "start_agent": False,
                    "security": {"rate_limits": {"key_prefix": prefix}},
                },
            },
        )
        for i, port in enumerate(ports)
    ]
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    channel = f"{prefix}:ticks:{socket.gethostname()}"
    # The servers open the store read-only: made here, so all three start at once.
    store = SQLiteStore(db, retention=RetentionConfig(), interval_seconds=1)
    store.open()
    store.close()
    try:
        with ExitStack() as stack:
            stack.enter_context(
                _process(["--config", str(agent_cfg), "agent"], tmp_path / "agent.log")
            )
            for i, cfg in enumerate(server_cfgs):
                stack.enter_context(
                    _process(["--config", str(cfg), "server"], tmp_path / f"server{i}.log")
                )
            for i, base in enumerate(bases):
                try:
                    wait_healthy(base, timeout=60)
                except TimeoutError:
                    raise AssertionError(
                        (tmp_path / f"server{i}.log").read_text(errors="replace")[-3000:]
                    ) from None

            # Both servers are subscribed to the agent's channel.
            assert client.pubsub_numsub(channel) == [(channel.encode(), 2)]
            for base in bases:
                health = httpx.get(f"{base}/api/v1/health", timeout=5).json()
                assert health["agent"]["connected"] is True, health
                assert health["agent"]["error"] is None, health

            # Both streams deliver the same ticks with the same bodies.
            streams: list[list[tuple[float, bytes]]] = [[], []]
            readers = [
                threading.Thread(target=_stream_events, args=(base, 4, out))
                for base, out in zip(bases, streams, strict=True)
            ]
            for reader in readers:
                reader.start()
            for reader in readers:
                reader.join(30)
            assert all(len(s) == 4 for s in streams), streams
            first, second = (dict(s) for s in streams)
            # The first event of each is the latest tick when the stream opened; from
            # the later of the two on, both saw every tick.
            start = max(streams[0][0][0], streams[1][0][0])
            common_ts = sorted(t for t in first if t >= start)
            assert common_ts == sorted(t for t in second if t >= start)[: len(common_ts)]
            assert len(common_ts) >= 3, (first.keys(), second.keys())
            assert [b - a for a, b in itertools.pairwise(common_ts)] == [1.0] * (len(common_ts) - 1)
            for ts in common_ts:
                assert first[ts] == second[ts]

            # /current: the same body whenever both answer for the same tick.
            agreed = 0
            for _ in range(20):
                answers = [httpx.get(f"{b}/api/v1/metrics/current", timeout=5) for b in bases]
                assert [a.status_code for a in answers] == [200, 200]
                docs = [a.json() for a in answers]
                if docs[0]["timestamp"] == docs[1]["timestamp"]:
                    assert answers[0].content == answers[1].content
                    assert docs[0]["metrics"]["memory"]["total"]["total_bytes"] > 0
                    agreed += 1
                if agreed >= 3:
                    break
                time.sleep(0.1)
            assert agreed >= 3

            # The agent reports its Redis publishing; the servers never used the socket.
            latest = client.get(f"{prefix}:latest:{socket.gethostname()}")
            assert isinstance(latest, bytes)
            meta, body = decode_frame(latest)
            assert meta["type"] == "tick" and json.loads(body)["timestamp"] == meta["timestamp"]
            fanout = meta["status"]["agent"]["live_redis"]
            # A frame's status is built before that frame is published: the 4th tick the
            # streams saw (at least the agent's 4th) reports 3 or more published before it.
            assert fanout["connected"] is True and fanout["published"] >= 3, fanout
            assert fanout["channel"] == channel
            # The same redis.url holds both servers' rate limit windows.
            limit_keys = [k for k in client.scan_iter(match=f"*{prefix}*") if b":ticks:" not in k]
            assert any(b"/api/v1/metrics/current" in k for k in limit_keys), limit_keys
            for i in range(2):
                log = (tmp_path / f"server{i}.log").read_text(errors="replace")
                assert f"live ticks from redis redis://127.0.0.1:6379/0 channel {channel}" in log
    finally:
        drop_keys(client, prefix)
        client.close()
        shutil.rmtree(sock_dir, ignore_errors=True)
