"""The live-tick channel: how the agent hands each tick to every server process.

This module is the whole contract between ``sysmon agent`` and ``sysmon server`` besides
the database; neither side imports the other's objects.

Transport: a Unix stream socket (default ``agent.sock`` beside the database file; a
short path under ``/tmp/sysmon-<uid>/`` when that would be too long for ``sun_path``).
Why a socket rather than a file replaced atomically each tick: every server worker gets
the tick pushed the moment it exists (no polling, no per-client file reads), a server
learns at once when the agent goes away (EOF), and the file system carries no history.
Why not Redis or HTTP: one host needs no broker, and the agent must not run a web server
that a socket flood could starve. The socket file is 0600 inside a 0700 directory, and
the agent also checks each peer's uid (``SO_PEERCRED``): ticks carry command lines.

Wire format, one *frame* per tick, agent to server only::

    uint32 big-endian  length of META
    uint32 big-endian  length of BODY
    META               UTF-8 JSON object: {"type": "tick", "timestamp": ...,
                       "interval": ..., "generation": ..., "status": {...},
                       "processes": [...]}
    BODY               the exact bytes of ``GET /api/v1/metrics/current``

A new connection first receives the latest frame (so ``/current`` answers at once), then
one frame per tick. Before its first tick the agent publishes a ``{"type": "hello",
"status": {...}}`` frame with an empty body (host facts, collectors, database state).
A client that cannot keep up loses its oldest queued frames, never
the agent's time: sending happens on the client's own thread with a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import queue
import socket
import stat
import struct
import tempfile
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sysmon.serialize import from_json, to_json_bytes

logger = logging.getLogger(__name__)

HEADER = struct.Struct(">II")
MAX_FRAME_BYTES = 64 * 1024 * 1024
SUN_PATH_MAX = 100
SEND_TIMEOUT_SECONDS = 5.0

Frame = tuple[dict[str, Any], bytes]


def data_dir(database_path: str | Path) -> Path:
    """The directory an agent owns: the database file's directory."""
    return Path(database_path).resolve().parent


def socket_path(database_path: str | Path, override: str | None = None) -> Path:
    """Where the agent for ``database_path`` listens (both sides call this)."""
    if override:
        return Path(override)
    folder = data_dir(database_path)
    path = folder / "agent.sock"
    if len(os.fsencode(path)) < SUN_PATH_MAX:
        return path
    digest = hashlib.sha256(os.fsencode(folder)).hexdigest()[:20]
    return Path(tempfile.gettempdir()) / f"sysmon-{os.getuid()}" / f"{digest}.sock"


def _private_dir(folder: Path) -> None:
    """Create ``folder`` 0700, or check that an existing one is ours and private."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = folder.stat()
    if info.st_uid != os.getuid():
        raise PermissionError(f"{folder} belongs to uid {info.st_uid}, not to us")
    if folder.name.startswith("sysmon-") and stat.S_IMODE(info.st_mode) & 0o077:
        raise PermissionError(f"{folder} is readable by others (mode {info.st_mode:o})")


def encode_frame(meta: Mapping[str, Any] | bytes, body: bytes) -> bytes:
    """One frame: ``meta`` (a mapping, or its JSON already encoded) and ``body``."""
    meta_bytes = meta if isinstance(meta, bytes) else to_json_bytes(meta)
    return HEADER.pack(len(meta_bytes), len(body)) + meta_bytes + body


def _peer_uid(conn: socket.socket) -> int | None:
    try:
        raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return None
    _pid, uid, _gid = struct.unpack("3i", raw)
    return int(uid)


class _Client:
    def __init__(self, conn: socket.socket, queue_frames: int, on_close: Callable[[_Client], None]):
        self.conn = conn
        self.queue: queue.Queue[bytes | None] = queue.Queue(maxsize=queue_frames)
        self.dropped = 0
        self._on_close = on_close
        self.thread = threading.Thread(target=self._run, name="channel-send", daemon=True)

    def offer(self, frame: bytes | None) -> None:
        while True:
            try:
                self.queue.put_nowait(frame)
                return
            except queue.Full:
                with contextlib.suppress(queue.Empty):
                    self.queue.get_nowait()
                    self.dropped += 1

    def _run(self) -> None:
        try:
            self.conn.settimeout(SEND_TIMEOUT_SECONDS)
            while True:
                frame = self.queue.get()
                if frame is None:
                    return
                self.conn.sendall(frame)
        except OSError:
            pass  # the server went away or stalled: it reconnects and gets the latest
        finally:
            with contextlib.suppress(OSError):
                self.conn.close()
            self._on_close(self)


class TickPublisher:
    """Agent side: accepts server connections and pushes every tick's frame to each."""

    def __init__(self, path: Path, max_clients: int = 64, queue_frames: int = 4) -> None:
        self.path = path
        self._max_clients = max_clients
        self._queue_frames = queue_frames
        self._sock: socket.socket | None = None
        self._clients: set[_Client] = set()
        self._lock = threading.Lock()
        self._last: bytes | None = None
        self._thread: threading.Thread | None = None
        self.refused = 0

    @property
    def client_count(self) -> int:
        return len(self._clients)

    def start(self) -> None:
        _private_dir(self.path.parent)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # a stale socket of a dead agent (the data-dir lock is ours)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            sock.bind(str(self.path))
        finally:
            os.umask(old)
        sock.listen(16)
        self._sock = sock
        self._thread = threading.Thread(target=self._accept, name="channel-accept", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        sock = self._sock
        while sock is not None:
            try:
                conn, _ = sock.accept()
            except OSError:
                return  # closed
            uid = _peer_uid(conn)
            if uid not in (os.getuid(), 0) or len(self._clients) >= self._max_clients:
                self.refused += 1
                logger.warning("live channel: refused a connection (uid=%s)", uid)
                conn.close()
                continue
            client = _Client(conn, self._queue_frames, self._forget)
            with self._lock:
                self._clients.add(client)
                last = self._last
            if last is not None:
                client.offer(last)
            client.thread.start()

    def _forget(self, client: _Client) -> None:
        with self._lock:
            self._clients.discard(client)

    def publish(self, meta: Mapping[str, Any], body: bytes) -> None:
        """Never blocks: each client's sender thread does the I/O."""
        self.publish_frame(encode_frame(meta, body))

    def publish_frame(self, frame: bytes) -> None:
        """``publish`` of a frame ``encode_frame`` already made."""
        with self._lock:
            self._last = frame
            clients = list(self._clients)
        for client in clients:
            client.offer(frame)

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            client.offer(None)
            with contextlib.suppress(OSError):
                client.conn.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(FileNotFoundError, OSError):
            self.path.unlink()


async def read_frame(reader: asyncio.StreamReader) -> Frame:
    header = await reader.readexactly(HEADER.size)
    meta_len, body_len = HEADER.unpack(header)
    if meta_len + body_len > MAX_FRAME_BYTES:
        raise ValueError(f"frame of {meta_len + body_len} bytes is over the limit")
    meta = from_json(await reader.readexactly(meta_len))
    body = await reader.readexactly(body_len)
    if not isinstance(meta, dict):
        raise ValueError("frame metadata is not an object")
    return meta, body


class TickSubscriber:
    """Server side: keeps a connection to the agent and calls ``on_frame`` per tick.

    Reconnects every ``retry_seconds`` while the agent is away; ``connected`` says
    whether a connection is up right now (health reports it).
    """

    def __init__(
        self,
        path: Path,
        on_frame: Callable[[dict[str, Any], bytes], None],
        retry_seconds: float = 0.5,
    ) -> None:
        self.path = path
        self._on_frame = on_frame
        self._retry = retry_seconds
        self.connected = False
        self.frames = 0
        self.last_error: str | None = None
        self._connected_event = asyncio.Event()

    async def run(self) -> None:
        while True:
            try:
                reader, writer = await asyncio.open_unix_connection(
                    str(self.path), limit=MAX_FRAME_BYTES
                )
            except OSError as exc:
                self.last_error = f"cannot connect to the agent at {self.path}: {exc.strerror}"
                await asyncio.sleep(self._retry)
                continue
            self.connected = True
            self.last_error = None
            try:
                while True:
                    meta, body = await read_frame(reader)
                    self.frames += 1
                    self._on_frame(meta, body)
            except (asyncio.IncompleteReadError, OSError, ValueError) as exc:
                self.last_error = f"agent connection lost: {type(exc).__name__}"
            finally:
                self.connected = False
                writer.close()
                with contextlib.suppress(OSError, RuntimeError):
                    await writer.wait_closed()
            await asyncio.sleep(self._retry)
