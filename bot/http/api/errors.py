"""Error answers of the agent API: the one place ledger errors become HTTP statuses.

Every error has the body `{"error": {"code": ..., "message": ...}}` (invalid requests add
`fields`), the shape of every route (bot/http/errors.py, which also answers 404, 405, 413,
database refusals and bugs for the whole app).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from bot.http.api.schemas import ErrorResponse
from bot.http.errors import error_response
from ledger.errors import (
    FieldError,
    IdempotencyConflict,
    InsufficientCredits,
    InvalidInput,
    LedgerError,
    NotFound,
)

#: Where the API lives.
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


def forbidden() -> ApiError:
    """A runtime key on a route for billing admins' work."""
    return ApiError(
        403,
        "forbidden",
        "This needs an API key with the admin scope (creditbot api-keys create --scope admin).",
    )


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
        402: "The payment was refused (a declined card, no saved card): nothing was credited.",
        403: "The API key's scope does not allow this (a runtime key on an admin route).",
        404: "Unknown agent or call (or one of another account).",
        409: "Idempotency-Key reused with a different request, or a conflicting call end.",
        502: "Stripe could not be reached or refused the request: nothing was charged.",
        413: "Request body too large.",
        422: "A field is missing, of the wrong type or out of range.",
        503: "The ledger is busy, or the database is read-only or unavailable: retry with "
        "the same Idempotency-Key.",
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


async def on_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.headers)


async def on_ledger_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LedgerError)
    if isinstance(exc, FieldError):  # the field it concerns, as invalid requests name theirs
        fields = [{"field": exc.field, "message": str(exc)}]
        return error_response(ledger_status(exc), exc.code, str(exc), fields=fields)
    return error_response(ledger_status(exc), exc.code, str(exc))


async def on_invalid_request(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return _validation_response(exc)


def install_error_handlers(app: FastAPI) -> None:
    """The API's own errors: ApiError, ledger errors and invalid requests (on any route,
    in the one shape)."""
    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(LedgerError, on_ledger_error)
    app.add_exception_handler(RequestValidationError, on_invalid_request)
