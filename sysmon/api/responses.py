"""The API's JSON response: rendered by ``sysmon.serialize.to_json_bytes`` (orjson).

Range answers are mostly floats, and the standard library's encoder spent ~460 µs on a
61-point, 12-field answer (a fifth of the request) where orjson takes ~20 µs
(bench/README.md). Non-finite floats become ``null`` instead of a 500.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from sysmon.serialize import to_json_bytes


class JSONBody(JSONResponse):
    """``JSONResponse`` with sysmon's one JSON encoder."""

    def render(self, content: Any) -> bytes:
        return to_json_bytes(content)
