"""The live channel over a real Unix socket: frames arrive whole and in order, a new
server gets the latest frame at once, and a client that stops reading never blocks the
agent's publish."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

from sysmon.channel import HEADER, TickPublisher, TickSubscriber, encode_frame, socket_path
from tests.support.stack import short_socket


def test_frames_in_order_and_latest_on_connect() -> None:
    path = short_socket()
    publisher = TickPublisher(path)
    publisher.start()
    received: list[tuple[dict[str, Any], bytes]] = []
    try:
        publisher.publish({"type": "tick", "timestamp": 1.0}, b'{"a":1}')

        async def main() -> None:
            subscriber = TickSubscriber(path, lambda m, b: received.append((m, b)))
            task = asyncio.create_task(subscriber.run())
            while not received:
                await asyncio.sleep(0.01)
            for ts in (2.0, 3.0):
                publisher.publish({"type": "tick", "timestamp": ts}, b"x" * int(ts * 1000))
            while len(received) < 3:
                await asyncio.sleep(0.01)
            assert subscriber.connected
            task.cancel()

        asyncio.run(asyncio.wait_for(main(), 10))
    finally:
        publisher.close()
    assert [m["timestamp"] for m, _ in received] == [1.0, 2.0, 3.0]
    assert received[0][1] == b'{"a":1}' and len(received[2][1]) == 3000


def test_a_client_that_never_reads_does_not_block_publishing() -> None:
    path = short_socket()
    publisher = TickPublisher(path, queue_frames=2)
    publisher.start()
    stuck = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stuck.connect(str(path))
    try:
        big = b"y" * 1_000_000
        t0 = time.monotonic()
        for i in range(50):  # 50 MB at a reader that never reads
            publisher.publish({"type": "tick", "timestamp": float(i)}, big)
        assert time.monotonic() - t0 < 2.0
    finally:
        stuck.close()
        publisher.close()


def test_frame_layout() -> None:
    frame = encode_frame({"type": "tick"}, b"BODY")
    meta_len, body_len = HEADER.unpack(frame[: HEADER.size])
    assert frame[HEADER.size + meta_len :] == b"BODY" and body_len == 4


def test_long_data_directories_get_a_short_private_socket_path(tmp_path: object) -> None:
    deep = "/tmp/" + "d" * 120 + "/sysmon.db"
    path = socket_path(deep)
    assert len(str(path)) < 100 and path.parent.name.startswith("sysmon-")
    assert socket_path("/var/lib/sysmon/sysmon.db").as_posix() == "/var/lib/sysmon/agent.sock"
