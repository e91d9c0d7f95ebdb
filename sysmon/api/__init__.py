"""The server's HTTP side: routes, middleware, the live head, the range cache.

Importing this package keeps ``pydantic.v1`` out of the process (a ``None`` entry in
``sys.modules``: Python's documented way to make an import fail). FastAPI (0.165 here)
supports no pydantic v1 model; it imports ``pydantic.v1`` only to recognise one and
refuse it with a clear error, and treats an ``ImportError`` there as "not a v1 model"
(``fastapi._compat.shared``). sysmon has no v1 model, and that import alone cost each
server process about 2 MiB: PSS of the whole service 102.7 -> 100.8 MiB (bench/README.md,
session 10). Anything else that imports ``pydantic.v1`` in a server process gets
``ModuleNotFoundError`` naming it. ``tests/test_forked_serve.py`` checks it stays unloaded.
"""

import sys

sys.modules.setdefault("pydantic.v1", None)  # type: ignore[arg-type]
