"""Error responses: always JSON ``{"detail": ...}``, never a stack trace.

``unprocessable`` builds a 422 in the same shape FastAPI uses for validation errors, so a
client sees one format whose ``loc`` names the bad parameter.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from app.errors import QueryError, StorageError
from app.timeparse import parse_instant

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


def install_handlers(app: FastAPI) -> None:
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
