"""Real receivers on 127.0.0.1 for notification tests: an aiosmtpd SMTP server and an
HTTP server capturing JSON posts (Slack and webhook). Nothing is mocked at the socket
level; the notifiers talk to these over TCP exactly as to the real services.

``HttpReceiver`` behaviour is chosen per path: ``/ok/...`` answers 200, ``/fail/...``
answers 500, ``/hang/...`` holds the connection until the test ends.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll a condition that another thread (a channel worker) makes true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def part(self, subtype: str) -> str:
        body = self.message.get_body(preferencelist=(subtype,))
        assert body is not None, f"no text/{subtype} part"
        content: str = body.get_content()  # type: ignore[attr-defined]
        return content


@dataclass
class SmtpReceiver:
    host: str
    port: int
    messages: list[ReceivedMail] = field(default_factory=list)
    auth_logins: list[tuple[str, str]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = message_from_bytes(envelope.original_content, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append(ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), msg))
        return "250 OK"


@contextmanager
def smtp_server(**controller_kwargs: Any) -> Iterator[SmtpReceiver]:
    port = free_port()
    receiver = SmtpReceiver("127.0.0.1", port)
    controller = Controller(receiver, hostname="127.0.0.1", port=port, **controller_kwargs)
    controller.start()
    try:
        yield receiver
    finally:
        controller.stop()


@dataclass
class Post:
    path: str
    body: dict[str, Any]
    headers: dict[str, str]


class HttpReceiver:
    def __init__(self) -> None:
        self.posts: list[Post] = []
        self.attempts: dict[str, int] = {}
        self.release = threading.Event()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.base_url = ""

    def bodies(self, prefix: str) -> list[dict[str, Any]]:
        with self._lock:
            return [p.body for p in self.posts if p.path.startswith(prefix)]

    def url(self, path: str) -> str:
        return self.base_url + path

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                with receiver._lock:
                    receiver.attempts[self.path] = receiver.attempts.get(self.path, 0) + 1
                if self.path.startswith("/hang"):
                    receiver.release.wait(30)
                    return
                if self.path.startswith("/fail"):
                    self.send_response(500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                with receiver._lock:
                    receiver.posts.append(Post(self.path, json.loads(raw), dict(self.headers)))
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        return Handler

    @contextmanager
    def running(self) -> Iterator[HttpReceiver]:
        server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        server.daemon_threads = True
        self._server = server
        self.base_url = f"http://127.0.0.1:{server.server_address[1]}"
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        thread.start()
        try:
            yield self
        finally:
            self.release.set()
            server.shutdown()
            server.server_close()
