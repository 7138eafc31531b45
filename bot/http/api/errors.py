"""Error answers under /v1: the one place ledger errors become HTTP statuses.

Every error has the body `{"error": {"code": ..., "message": ...}}` (invalid requests add
`fields`). Routes outside /v1 (Slack, Stripe, /healthz) keep FastAPI's own answers.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from bot.http.api.schemas import ErrorResponse
from ledger.errors import (
    IdempotencyConflict,
    InsufficientCredits,
    InvalidInput,
    LedgerError,
    NotFound,
)

logger = logging.getLogger(__name__)

#: Where the API lives: requests under it get the error bodies below.
PREFIX = "/v1"


class ApiError(Exception):
    """An error answer: HTTP status, a stable machine code and a message for a person."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


#: Ledger errors as HTTP statuses, most specific class first.
_STATUS: tuple[tuple[type[LedgerError], int], ...] = (
    (NotFound, 404),
    (IdempotencyConflict, 409),
    (InsufficientCredits, 402),
    (InvalidInput, 422),
    (LedgerError, 400),
)


def ledger_status(exc: LedgerError) -> int:
    return next(status for cls, status in _STATUS if isinstance(exc, cls))


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    return JSONResponse(error_body(code, message, **extra), status_code=status, headers=headers)


def unauthorised() -> ApiError:
    return ApiError(
        401,
        "unauthorized",
        "Send a valid API key as 'Authorization: Bearer <key>' (creditbot api-keys create).",
        {"WWW-Authenticate": "Bearer"},
    )


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` of an operation for these error statuses (and 503)."""
    text = {
        400: "Malformed JSON.",
        401: "Missing, unknown or revoked API key.",
        404: "Unknown agent or call (or one of another account).",
        409: "Idempotency-Key reused with a different request, or a conflicting call end.",
        413: "Request body too large.",
        422: "A field is missing, of the wrong type or out of range.",
        503: "The ledger is busy: retry with the same Idempotency-Key.",
    }
    return {s: {"model": ErrorResponse, "description": text[s]} for s in (*statuses, 503)}


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "header", "path", "query"):
        parts = parts[1:] if parts[0] == "body" else parts
    return ".".join(parts) or "body"


def _validation_response(exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        detail = next(e for e in errors if e.get("type") == "json_invalid")
        reason = (detail.get("ctx") or {}).get("error", "invalid JSON")
        return error_response(
            400, "malformed_json", f"The request body is not valid JSON: {reason}."
        )
    if any(
        tuple(e.get("loc", ())) == ("body",)
        and e.get("type") in ("model_attributes_type", "dict_type")
        for e in errors
    ):
        return error_response(
            422,
            "invalid_body",
            "The body must be a JSON object sent with 'Content-Type: application/json'.",
        )
    fields = [
        {"field": _field(tuple(e.get("loc", ()))), "message": e.get("msg", "")} for e in errors
    ]
    message = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:5])
    return error_response(422, "invalid_request", message or "Invalid request.", fields=fields)


def _under_prefix(request: Request) -> bool:
    return request.url.path.startswith(PREFIX + "/") or request.url.path == PREFIX


async def on_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.headers)


async def on_ledger_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LedgerError)
    if not _under_prefix(request):
        raise exc  # other routes handle their own; unhandled, it is a 500 as before
    return error_response(ledger_status(exc), exc.code, str(exc))


async def on_invalid_request(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if not _under_prefix(request):
        return await request_validation_exception_handler(request, exc)
    return _validation_response(exc)


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if not _under_prefix(request):
        return await http_exception_handler(request, exc)
    codes = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}
    code = codes.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else "Request refused."
    if exc.status_code == 404:
        message = f"No such endpoint: {request.method} {request.url.path}."
    return error_response(exc.status_code, code, message, getattr(exc, "headers", None))


async def on_database_busy(request: Request, exc: Exception) -> Response:
    # Locks held too long (SQLite busy, PostgreSQL lock timeout): safe to retry with the
    # same Idempotency-Key, since the transaction was rolled back.
    if not _under_prefix(request):
        raise exc
    logger.warning("database busy on %s %s: %s", request.method, request.url.path, exc)
    return error_response(
        503,
        "busy",
        "The ledger is busy: retry the request with the same Idempotency-Key.",
        {"Retry-After": "1"},
    )


async def on_crash(request: Request, exc: Exception) -> Response:
    # A bug. Starlette logs the traceback after this answer; the body stays JSON.
    if not _under_prefix(request):
        return PlainTextResponse("Internal Server Error", status_code=500)
    return error_response(500, "internal_error", "Something went wrong on our side: retry later.")


def install_error_handlers(app: FastAPI) -> None:
    """Error bodies under /v1; other routes keep FastAPI's defaults."""
    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(LedgerError, on_ledger_error)
    app.add_exception_handler(RequestValidationError, on_invalid_request)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(OperationalError, on_database_busy)
    app.add_exception_handler(Exception, on_crash)
