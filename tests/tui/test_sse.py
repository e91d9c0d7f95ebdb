"""The SSE parser: what ``/api/v1/stream`` sends, and the edges of the format."""

from __future__ import annotations

import pytest

from sysmon.tui.sse import SseEvent, SseParser


def parse(lines: list[str]) -> list[SseEvent]:
    parser = SseParser()
    return [e for e in map(parser.feed, lines) if e is not None]


@pytest.mark.parametrize(
    ("lines", "events"),
    [
        # What the server sends: a retry hint, then one event per tick.
        (
            ["retry: 2000", "", "event: snapshot", 'data: {"a": 1}', ""],
            [SseEvent("snapshot", '{"a": 1}')],
        ),
        # Keep-alive comments produce nothing.
        ([": keepalive", ""], []),
        # Several data lines join with newlines; no space after the colon is fine too.
        (["event:x", "data:1", "data: 2", ""], [SseEvent("x", "1\n2")]),
        # Without an event name the type is "message".
        (["data: hi", ""], [SseEvent("message", "hi")]),
        # No data: no event, and the name does not leak into the next one.
        (["event: snapshot", "", "data: next", ""], [SseEvent("message", "next")]),
        # CRLF line ends (a proxy may rewrite them).
        (["event: snapshot\r", "data: 1\r", "\r"], [SseEvent("snapshot", "1")]),
        # An event cut off before its blank line is not delivered.
        (["event: snapshot", "data: partial"], []),
        # Unknown fields are ignored; only the first space after the colon is dropped.
        (["id: 7", "data:  two spaces", ""], [SseEvent("message", " two spaces")]),
    ],
)
def test_events(lines: list[str], events: list[SseEvent]) -> None:
    assert parse(lines) == events
