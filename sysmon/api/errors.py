"""Error responses: always JSON ``{"detail": ...}``, never a stack trace.

``unprocessable`` builds a 422 in the same shape FastAPI uses for validation errors, so a
client sees one format whose ``loc`` names the bad parameter.

Validation errors (``RequestValidationError``) are answered here rather than by FastAPI's
default handler, for two reasons:

* Python's JSON parser accepts ``NaN``, ``Infinity`` and ``-Infinity``, which JSON does
  not have. A body holding one that failed validation came back in the error's ``input``
  (or ``ctx``), the strict JSON encoder refused it, and the 422 became a 500 with the
  connection reset. ``json_safe`` writes non-finite numbers as the strings ``"NaN"``,
  ``"Infinity"``, ``"-Infinity"``.
* ``input`` echoes what the client sent. For the body, headers and cookies that can be a
  password, a token, an API key or a webhook URL (and up to a MiB of it), so ``input`` is
  kept only for query and path parameters; ``loc``, ``msg`` and ``type`` say what is wrong.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from sysmon.errors import QueryError, StorageError
from sysmon.timeparse import parse_instant

logger = logging.getLogger(__name__)


def unprocessable(where: str, param: str, message: str) -> HTTPException:
    return HTTPException(
        status_code=422,
        detail=[{"loc": [where, param], "msg": message, "type": "value_error"}],
    )


def query_instant(name: str, value: str | None, default: float) -> float:
    """Parse an epoch/ISO 8601 query parameter, or answer 422 naming it."""
    if value is None:
        return default
    try:
        return parse_instant(value)
    except ValueError as exc:
        raise unprocessable("query", name, str(exc)) from None


ECHOED_LOCATIONS = ("query", "path")


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float replaced by its JSON-ish spelling."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value


def validation_detail(errors: Sequence[Any]) -> list[Any]:
    """FastAPI's validation error list, safe to serialise and to show (see module doc)."""
    out = []
    for error in errors:
        item = dict(error)
        loc = item.get("loc") or ()
        if "input" in item and not (loc and loc[0] in ECHOED_LOCATIONS):
            del item["input"]
        out.append(item)
    return list(json_safe(jsonable_encoder(out)))


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": validation_detail(exc.errors())})

    @app.exception_handler(QueryError)
    async def _query_error(request: Request, exc: QueryError) -> JSONResponse:
        return JSONResponse(
            status_code=422,
            content={
                "detail": [{"loc": ["query", exc.param], "msg": exc.message, "type": "value_error"}]
            },
        )

    @app.exception_handler(StorageError)
    async def _storage_error(request: Request, exc: StorageError) -> JSONResponse:
        logger.warning("storage error on %s: %s", request.url.path, exc)
        return JSONResponse(status_code=503, content={"detail": "storage unavailable"})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s", request.url.path)
        return JSONResponse(status_code=500, content={"detail": "internal error"})
