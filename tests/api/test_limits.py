"""HTTP limits, against a real uvicorn server on 127.0.0.1 (raw sockets where it matters).

Waiting is done by blocking reads with a deadline (socket timeouts, ``select``), never by
sleeping and then asserting.
"""

from __future__ import annotations

import asyncio
import json
import pickle
import select
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import h11
import httpx
import pytest
from fastapi import FastAPI, Request
from pydantic import BaseModel, ValidationError

from sysmon.api.limits import HttpLimits, install_limits, uvicorn_options
from sysmon.clock import FakeClock
from sysmon.config import ServerConfig, load_settings
from tests.api.conftest import START
from tests.support.server import RunningServer, serve
from tests.support.stack import stack

LIMIT = 64 * 1024
BIG = 5 * 1024 * 1024
MARKER = b"do-not-echo-"


class Item(BaseModel):
    name: str


def small_app(limits: HttpLimits) -> FastAPI:
    app = FastAPI()
    app.state.bodies = []

    @app.get("/ping")
    async def ping() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/slow")
    async def slow() -> dict[str, bool]:  # a long answer: a year of rollups, a stream
        await asyncio.sleep(1.5)
        return {"ok": True}

    @app.post("/size")
    async def size(request: Request) -> dict[str, int]:
        body = await request.body()
        app.state.bodies.append(len(body))
        return {"bytes": len(body)}

    @app.post("/items")
    async def items(item: Item) -> dict[str, str]:
        app.state.bodies.append(len(item.name))
        return {"name": item.name}

    install_limits(app, limits)
    return app


LOOP = ServerConfig().event_loop  # the default event loop


@contextmanager
def limited_server(**overrides: float) -> Iterator[RunningServer]:
    limits = HttpLimits.model_validate({"max_body_bytes": LIMIT, **overrides})
    with serve(small_app(limits), **uvicorn_options(limits, LOOP)) as running:
        yield running


def connect(server: RunningServer, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    return sock


def seconds_until_closed(sock: socket.socket, within: float = 5.0) -> float:
    """Read (and drop) until the server closes; fail if it has not within ``within`` s."""
    started = time.monotonic()
    sock.settimeout(within)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    except TimeoutError:
        pytest.fail(f"server kept the connection open for more than {within} s")
    return time.monotonic() - started


def is_closed(sock: socket.socket) -> bool:
    """Whether a readable socket has been closed by the server."""
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except ConnectionResetError:
        return True


def request_bytes(
    method: str, target: str, headers: list[tuple[str, str]]
) -> tuple[h11.Connection, bytes]:
    conn = h11.Connection(h11.CLIENT)
    data = conn.send(h11.Request(method=method, target=target, headers=[("host", "t"), *headers]))
    assert data is not None
    return conn, data


def read_response(conn: h11.Connection, sock: socket.socket) -> tuple[int, bytes]:
    """The next response's status and body (the socket's timeout bounds the wait)."""
    status = 0
    body = b""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(sock.recv(65536))
        elif isinstance(event, h11.Response):
            status = event.status_code
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            return status, body
        elif isinstance(event, h11.ConnectionClosed):
            pytest.fail("connection closed before a complete response")


def get_ping(sock: socket.socket) -> int:
    conn, data = request_bytes("GET", "/ping", [])
    sock.sendall(data + (conn.send(h11.EndOfMessage()) or b""))
    status, _ = read_response(conn, sock)
    return status


# --- slowloris: a connection must send its request headers in time ------------------------


@pytest.mark.parametrize("sent", [b"", b"GET /ping HTTP/1.1\r\nHo"])
def test_connection_without_complete_headers_is_closed(sent: bytes) -> None:
    with limited_server(header_timeout_seconds=0.5) as server, connect(server) as sock:
        sock.sendall(sent)
        assert 0.4 <= seconds_until_closed(sock) < 5


def test_dripping_header_bytes_does_not_extend_the_deadline() -> None:
    with limited_server(header_timeout_seconds=0.5) as server, connect(server) as sock:
        started = time.monotonic()
        sock.settimeout(0.05)
        for byte in b"GET /ping HTTP/1.1\r\nX-Slow: " + b"a" * 1000:
            try:
                sock.send(bytes([byte]))
                if sock.recv(1) == b"":
                    break  # closed
            except TimeoutError:
                continue  # still open: the read timeout paces the drip
            except (BrokenPipeError, ConnectionResetError):
                break
        else:
            pytest.fail("server kept a dripping connection open")
        assert time.monotonic() - started < 5


def test_a_slow_answer_is_not_cut_by_the_header_timeout() -> None:
    """The header timer is for a request the client owes, not for an answer it awaits
    (the live stream is one long answer)."""
    with limited_server(header_timeout_seconds=0.5) as server, connect(server) as sock:
        conn, data = request_bytes("GET", "/slow", [])
        sock.sendall(data + (conn.send(h11.EndOfMessage()) or b""))
        status, body = read_response(conn, sock)
        assert (status, json.loads(body)) == (200, {"ok": True})
        assert get_ping(sock) == 200  # and the connection is kept


def test_idle_keep_alive_connection_is_closed() -> None:
    with (
        limited_server(header_timeout_seconds=30, keep_alive_timeout_seconds=0.5) as server,
        connect(server) as sock,
    ):
        assert get_ping(sock) == 200
        assert get_ping(sock) == 200  # kept alive between requests
        assert 0.4 <= seconds_until_closed(sock) < 5


def test_partial_next_request_on_a_kept_alive_connection_is_closed() -> None:
    with (
        limited_server(header_timeout_seconds=0.5, keep_alive_timeout_seconds=30) as server,
        connect(server) as sock,
    ):
        assert get_ping(sock) == 200
        sock.sendall(b"GET /ping HTTP/1.1\r\n")  # the keep-alive timer stops; ours starts
        assert seconds_until_closed(sock) < 5


def test_oversized_headers_are_refused() -> None:
    with limited_server(max_header_bytes=4096) as server, connect(server) as sock:
        conn, data = request_bytes("GET", "/ping", [("x-big", "a" * 8192)])
        sock.sendall(data[:-4])  # checked while the headers are incomplete
        status, body = read_response(conn, sock)
        assert status == 431
        assert json.loads(body) == {"detail": "request headers larger than 4096 bytes"}
        seconds_until_closed(sock)


def test_headers_dripped_past_the_limit_are_refused() -> None:
    with limited_server(max_header_bytes=4096) as server, connect(server) as sock:
        conn, data = request_bytes("GET", "/ping", [("x-big", "a" * 8192)])
        # Just past the limit, then stop: bytes still in flight when the server closes
        # would make its kernel answer with a reset, which can discard the 431.
        for i in range(0, 5 * 1024, 1024):
            sock.sendall(data[i : i + 1024])
            time.sleep(0.02)  # separate reads on the server
        status, _ = read_response(conn, sock)
        assert status == 431


def test_pipelined_requests_after_a_large_body_are_not_counted_as_headers() -> None:
    """A chunk that ends one request (its body bigger than the header limit) and starts
    the next is not held against the next request's headers."""
    with limited_server(max_header_bytes=4096) as server, connect(server) as sock:
        body = b"x" * 30_000
        post = (
            b"POST /size HTTP/1.1\r\nhost: t\r\ncontent-length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
        sock.sendall(post + b"GET /ping HTTP/1.1\r\nhost: t\r\n\r\n" * 3)
        sock.settimeout(5)
        seen = b""
        while seen.count(b'{"ok":true}') < 3:  # the last body may come after its headers
            chunk = sock.recv(65536)
            assert chunk, f"closed after {seen!r}"
            seen += chunk
        assert seen.count(b"HTTP/1.1 200") == 4 and b'{"bytes":30000}' in seen


# --- connection cap -------------------------------------------------------------------------


def test_connections_beyond_the_cap_are_closed_and_the_rest_keep_working() -> None:
    with (
        limited_server(max_connections=20, header_timeout_seconds=60) as server,
        ExitStack() as stack,
    ):
        socks = [stack.enter_context(connect(server)) for _ in range(50)]
        closed: set[socket.socket] = set()
        deadline = time.monotonic() + 10
        while len(closed) < 30 and time.monotonic() < deadline:
            readable, _, _ = select.select([s for s in socks if s not in closed], [], [], 0.5)
            closed.update(s for s in readable if is_closed(s))
        assert len(closed) == 30  # the 20 held ones are open (and answer, below)
        held = [s for s in socks if s not in closed]
        assert [get_ping(s) for s in held] == [200] * 20
        for s in socks:
            s.close()

        # The server notices the closes asynchronously: a request succeeds once it has.
        deadline = time.monotonic() + 10
        while True:
            try:
                response = httpx.get(f"{server.base_url}/ping", timeout=5)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
        assert response.status_code == 200


# --- request bodies -------------------------------------------------------------------------


def test_large_content_length_is_refused_before_the_body_is_sent() -> None:
    with (
        limited_server(keep_alive_timeout_seconds=0.5) as server,
        connect(server) as sock,
    ):
        conn, data = request_bytes("POST", "/size", [("content-length", str(BIG))])
        sock.sendall(data)  # headers only: the answer must not wait for the body
        status, body = read_response(conn, sock)
        assert status == 413
        assert body == b'{"detail": "request body larger than 65536 bytes"}'
        # The client may go on sending; that is discarded for the keep-alive timeout only.
        started = time.monotonic()
        sock.settimeout(0.05)
        try:
            while time.monotonic() - started < 5:
                sock.send(MARKER * 100)
                try:
                    if sock.recv(1) == b"":
                        break
                except TimeoutError:
                    continue
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert time.monotonic() - started < 5
        assert server.app.state.bodies == []


def test_large_post_gets_413_json_without_the_body() -> None:
    with limited_server() as server, httpx.Client(base_url=server.base_url, timeout=10) as client:
        r = client.post("/size", content=MARKER * (BIG // len(MARKER)))
        assert r.status_code == 413
        assert r.json() == {"detail": f"request body larger than {LIMIT} bytes"}
        assert MARKER not in r.content
        assert server.app.state.bodies == []
        assert client.get("/ping").status_code == 200  # the same client goes on


@pytest.mark.parametrize("path", ["/size", "/items"])
def test_large_chunked_body_gets_413_and_never_reaches_the_handler(path: str) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(BIG // 65536):
            yield MARKER * (65536 // len(MARKER))

    with limited_server() as server, httpx.Client(base_url=server.base_url, timeout=10) as client:
        r = client.post(path, content=chunks(), headers={"content-type": "application/json"})
        assert "content-length" not in r.request.headers
        assert r.status_code == 413
        assert r.json() == {"detail": f"request body larger than {LIMIT} bytes"}
        assert MARKER not in r.content
        assert server.app.state.bodies == []


def test_routes_work_under_the_limits() -> None:
    def chunks() -> Iterator[bytes]:
        yield b"a" * 1000
        yield b"b" * 1000

    with limited_server() as server, httpx.Client(base_url=server.base_url, timeout=10) as client:
        assert client.get("/ping").json() == {"ok": True}
        assert client.post("/items", json={"name": "disk"}).json() == {"name": "disk"}
        assert client.post("/size", content=b"x" * LIMIT).json() == {"bytes": LIMIT}
        assert client.post("/size", content=chunks()).json() == {"bytes": 2000}
        assert server.app.state.bodies == [4, LIMIT, 2000]


# --- settings -------------------------------------------------------------------------------


def test_defaults_and_bounds() -> None:
    limits = HttpLimits()
    assert (limits.max_connections, limits.max_body_bytes) == (1000, 1024 * 1024)
    assert (limits.header_timeout_seconds, limits.keep_alive_timeout_seconds) == (10, 5)
    assert (limits.max_header_bytes, limits.cache_max_bytes) == (16 * 1024, 32 * 1024 * 1024)
    with pytest.raises(ValidationError):
        HttpLimits.model_validate({"max_conections": 10})
    with pytest.raises(ValidationError):
        HttpLimits(header_timeout_seconds=0)


def test_uvicorn_options_pickle_for_worker_processes() -> None:
    options = uvicorn_options(HttpLimits(max_connections=7), LOOP)
    assert pickle.loads(pickle.dumps(options))["http"].keywords["limits"].max_connections == 7


# --- the live stream under the limits ---------------------------------------------------


def test_the_live_stream_outlives_the_header_timeout(tmp_path: Path) -> None:
    """The real app and agent under the real limits: a stream (one long answer) keeps
    delivering ticks well past ``header_timeout_seconds``."""
    settings = load_settings(
        None,
        database={"path": str(tmp_path / "sysmon.db")},
        server={"limits": {"header_timeout_seconds": 0.5}},
    )
    clock = FakeClock(START)
    with (
        stack(settings, clock) as running,  # under uvicorn_options(limits)
        httpx.Client(base_url=running.base_url, timeout=10) as client,
        client.stream("GET", "/api/v1/stream") as response,
    ):
        seen: list[float] = []
        running.tick(1)
        started = time.monotonic()
        for line in response.iter_lines():
            if not line.startswith("data: "):
                continue
            seen.append(json.loads(line[6:])["timestamp"])
            if time.monotonic() - started > 1.5:
                break
            time.sleep(0.5)  # three header timeouts pass while the stream is open
            running.tick(1)
    assert len(seen) >= 4 and seen == sorted(set(seen))
