"""One error body for every route: `{"error": {"code": ..., "message": ...}}`.

The agent API adds its own codes and fields (bot/http/api/errors.py). This module answers
what can happen on any route: no such path or method (404, 405), a body too large or too
slow (413, 408), a database that is busy, read-only or unreachable (503: the body says which,
the log says the rest), and a bug (500: the log has the traceback, the body never does).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledger.db import database_refusal

logger = logging.getLogger(__name__)

#: Machine codes of HTTP errors raised by the framework or the body limits.
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "body_too_large",
    415: "unsupported_media_type",
    431: "headers_too_large",
    500: "internal_error",
    503: "unavailable",
}

#: What each database refusal (ledger.db.database_refusal) answers: code, message, and
#: seconds to wait before retrying.
REFUSALS: dict[str, tuple[str, str, int]] = {
    "busy": (
        "busy",
        "The ledger is busy: retry the request (with the same Idempotency-Key for work "
        "that charges).",
        1,
    ),
    "read_only": (
        "database_read_only",
        "The database refuses writes (it is read-only): nothing was changed. An operator "
        "must make it writable; retry then.",
        30,
    ),
    "unavailable": (
        "database_unavailable",
        "The database is unavailable: nothing was changed; retry later.",
        5,
    ),
}


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    return JSONResponse(error_body(code, message, **extra), status_code=status, headers=headers)


def refusal_response(refusal: str) -> JSONResponse:
    """The 503 of a database refusal."""
    code, message, retry_after = REFUSALS[refusal]
    return error_response(503, code, message, {"Retry-After": str(retry_after)})


def _shown(path: str) -> str:
    return path if len(path) <= 200 else path[:200] + "…"


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    message = exc.detail if isinstance(exc.detail, str) and exc.detail else "Request refused."
    if status == 404:
        message = f"No such endpoint: {request.method} {_shown(request.url.path)}."
    elif status == 405:
        message = f"{request.method} is not allowed on {_shown(request.url.path)}."
    code = HTTP_CODES.get(status, "http_error")
    return error_response(status, code, message, getattr(exc, "headers", None))


async def on_database_error(request: Request, exc: Exception) -> Response:
    """A database error that escaped the work: 503 when the database refused (busy,
    read-only, unreachable), else a bug. No driver text or SQL ever leaves in the body."""
    refusal = database_refusal(exc)
    if refusal is None:
        logger.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return _internal_error()
    logger.warning(
        "database %s on %s %s: %s", refusal, request.method, request.url.path, _one_line(exc)
    )
    return refusal_response(refusal)


async def on_crash(request: Request, exc: Exception) -> Response:
    # A bug. Starlette logs its traceback after this answer; the body stays the one shape.
    return _internal_error()


def _internal_error() -> JSONResponse:
    return error_response(500, "internal_error", "Something went wrong on our side: retry later.")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:500]


def database_errors(app: FastAPI) -> tuple[type[BaseException], ...]:
    """SQLAlchemy's errors and the driver's own (the journal's fast path runs on the
    driver), for the app's engine."""
    driver = app.state.context.engine.dialect.loaded_dbapi.Error
    return (DBAPIError, PoolTimeout, driver)


def install_error_handlers(app: FastAPI) -> None:
    """The one error shape for every route (after `app.state.context` is set)."""
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    for error in database_errors(app):
        app.add_exception_handler(error, on_database_error)
    app.add_exception_handler(Exception, on_crash)
