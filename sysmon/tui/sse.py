"""A minimal Server-Sent Events parser: lines in, ``(event, data)`` pairs out.

Only what ``/api/v1/stream`` needs from the WHATWG rules: ``event:`` and ``data:`` fields
(several ``data:`` lines join with newlines), one optional space after the colon,
comments (``:``) and ``retry:``/``id:`` ignored, and an event dispatched at the blank line
that ends it. An event with no ``data:`` line is dropped, as browsers do. Pure, so the
edge cases are table tests rather than a network fixture.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SseEvent:
    event: str
    data: str


@dataclass
class SseParser:
    _event: str = ""
    _data: list[str] = field(default_factory=list)

    def feed(self, line: str) -> SseEvent | None:
        """One line without its terminator; returns an event when ``line`` ends one."""
        line = line.rstrip("\r\n")
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        return None

    def _dispatch(self) -> SseEvent | None:
        event, data = self._event or "message", self._data
        self._event, self._data = "", []
        if not data:
            return None
        return SseEvent(event, "\n".join(data))
