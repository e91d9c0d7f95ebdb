"""``sysmon top``: a terminal UI over a sysmon server's HTTP API (Textual).

| module | what |
|---|---|
| ``cli.py`` | the ``top`` subcommand: URL and token resolution, then ``TopApp`` |
| ``app.py`` | ``TopApp``: layout, keys, the live/processes/slow loops |
| ``client.py`` | ``ApiClient`` (httpx) and ``ApiError`` with one-line messages |
| ``sse.py`` | the Server-Sent Events parser for ``/api/v1/stream`` |
| ``view.py`` | pure: API JSON -> panel text and process rows |
| ``format.py`` | pure: bytes, rates, percentages, bars, durations |

It only reads the API (never psutil, the database or the agent socket), so it watches a
remote server over SSH as well as the local one.
"""
