"""The agent runtime API under /v1: agents, message charges, call minutes and the balance.

Every endpoint is a plain `def`: FastAPI runs it in its thread pool, and each one is one
ledger transaction (`ledger.db.transaction`) that first authenticates the API key and then
calls one ledger service. Amounts are integer milli-credits (1 credit = 1,000).

Errors all have the body `{"error": {"code": ..., "message": ...}}`; `_STATUS` below is the
one place where ledger errors become HTTP status codes.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, FastAPI, Header, Path, Request, Response
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.context import AppContext
from bot.http.gates import Gates
from ledger import accounts, agents, calls
from ledger.api_keys import authenticate, well_formed
from ledger.charges import MAX_QUANTITY, Charge, charge
from ledger.cycles import month_key, utcnow
from ledger.db import transaction
from ledger.errors import (
    IdempotencyConflict,
    InsufficientCredits,
    InvalidInput,
    LedgerError,
    NotFound,
    UnknownAgent,
)
from ledger.models import Account, Agent, Call

T = TypeVar("T")
logger = logging.getLogger(__name__)

PREFIX = "/v1"
#: Largest request body accepted under /v1 (every valid request is far smaller).
MAX_BODY_BYTES = 64 * 1024
#: Longest Idempotency-Key accepted.
MAX_KEY_LENGTH = 128
#: Ids are 32-bit in the database: a larger number cannot name anything.
MAX_ID = 2**31 - 1
#: Largest monthly limit (a thousand billion credits): bigger is a typo.
MAX_LIMIT = 10**15
MAX_MINUTE = calls.MAX_DURATION // 60

# --------------------------------------------------------------------------- errors


class ApiError(Exception):
    """An error answer: HTTP status, a stable machine code and a message for a person."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


#: Ledger errors as HTTP statuses, most specific class first: the one place they are mapped.
_STATUS: tuple[tuple[type[LedgerError], int], ...] = (
    (NotFound, 404),
    (IdempotencyConflict, 409),
    (InsufficientCredits, 402),
    (InvalidInput, 422),
    (LedgerError, 400),
)


def _ledger_status(exc: LedgerError) -> int:
    return next(status for cls, status in _STATUS if isinstance(exc, cls))


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def _error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    return JSONResponse(error_body(code, message, **extra), status_code=status, headers=headers)


def _unauthorised() -> ApiError:
    return ApiError(
        401,
        "unauthorized",
        "Send a valid API key as 'Authorization: Bearer <key>' (creditbot api-keys create).",
        {"WWW-Authenticate": "Bearer"},
    )


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
        return _error(400, "malformed_json", f"The request body is not valid JSON: {reason}.")
    if any(
        tuple(e.get("loc", ())) == ("body",)
        and e.get("type") in ("model_attributes_type", "dict_type")
        for e in errors
    ):
        return _error(
            422,
            "invalid_body",
            "The body must be a JSON object sent with 'Content-Type: application/json'.",
        )
    fields = [
        {"field": _field(tuple(e.get("loc", ()))), "message": e.get("msg", "")} for e in errors
    ]
    message = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:5])
    return _error(422, "invalid_request", message or "Invalid request.", fields=fields)


def _under_prefix(request: Request) -> bool:
    return request.url.path.startswith(PREFIX + "/") or request.url.path == PREFIX


def install_error_handlers(app: FastAPI) -> None:
    """Error bodies under /v1; other routes keep FastAPI's defaults."""

    async def on_api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return _error(exc.status, exc.code, exc.message, exc.headers)

    async def on_ledger_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LedgerError)
        if not _under_prefix(request):
            raise exc  # other routes handle their own; unhandled, it is a 500 as before
        return _error(_ledger_status(exc), exc.code, str(exc))

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        if not _under_prefix(request):
            return await request_validation_exception_handler(request, exc)
        return _validation_response(exc)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if not _under_prefix(request):
            return await http_exception_handler(request, exc)
        codes = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}
        code = codes.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else "Request refused."
        if exc.status_code == 404:
            message = f"No such endpoint: {request.method} {request.url.path}."
        return _error(exc.status_code, code, message, getattr(exc, "headers", None))

    async def on_database_busy(request: Request, exc: Exception) -> Response:
        # Locks held too long (SQLite busy, PostgreSQL lock timeout): safe to retry with the
        # same Idempotency-Key, since the transaction was rolled back.
        if not _under_prefix(request):
            raise exc
        logger.warning("database busy on %s %s: %s", request.method, request.url.path, exc)
        return _error(
            503,
            "busy",
            "The ledger is busy: retry the request with the same Idempotency-Key.",
            {"Retry-After": "1"},
        )

    async def on_crash(request: Request, exc: Exception) -> Response:
        # A bug. Starlette logs the traceback after this answer; the body stays JSON.
        if not _under_prefix(request):
            return PlainTextResponse("Internal Server Error", status_code=500)
        return _error(500, "internal_error", "Something went wrong on our side: retry later.")

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(LedgerError, on_ledger_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(OperationalError, on_database_busy)
    app.add_exception_handler(Exception, on_crash)


class BodyLimit:
    """Refuse request bodies over `limit` bytes under /v1 with 413, whether the client sends
    a Content-Length or streams the body (pure ASGI, so it costs nothing per request)."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0 or declared > self.limit:
                    await self._refuse(send)
                    return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise StarletteHTTPException(413, self._message())
            return message

        await self.app(scope, limited, send)

    def _message(self) -> str:
        return f"The request body is larger than {self.limit} bytes."

    async def _refuse(self, send: Send) -> None:
        body = json.dumps(error_body("body_too_large", self._message())).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


# --------------------------------------------------------------------------- schemas


class Strict(BaseModel):
    """Request bodies: exact JSON types (no "5" for 5, no 5.0 for 5), no unknown fields."""

    model_config = ConfigDict(strict=True, extra="forbid")


Milli = Annotated[int, Field(description="Milli-credits (1 credit = 1000).")]
AgentId = Annotated[int, Field(ge=1, le=MAX_ID, description="The agent's id.")]
Behaviour = Literal["stop", "use_balance"]
StopReason = Literal["plan_exhausted", "wallet_empty", "monthly_limit"]
AgentName = Annotated[str, Field(min_length=1, max_length=100)]
Limit = Annotated[
    int,
    Field(ge=1, le=MAX_LIMIT, description="Monthly spending limit in milli-credits."),
]


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. 'unknown_agent'.")
    message: str = Field(description="What went wrong, fit to show a person.")
    fields: list[dict[str, str]] | None = Field(
        default=None, description="For invalid requests: each field and what is wrong with it."
    )


class ErrorResponse(BaseModel):
    error: ErrorDetail


class AgentCreate(Strict):
    name: AgentName
    behaviour: Behaviour = Field(
        default="stop", description="When plan credits run out: stop, or go on from the wallet."
    )
    monthly_limit_millicredits: Limit | None = None


class AgentUpdate(Strict):
    """Only the fields sent change. `monthly_limit_millicredits: null` removes the limit."""

    name: AgentName | None = None
    behaviour: Behaviour | None = None
    monthly_limit_millicredits: Limit | None = None


class AgentOut(BaseModel):
    id: int
    name: str
    status: Literal["active", "stopped"]
    stop_reason: StopReason | None
    behaviour: Behaviour
    monthly_limit_millicredits: int | None
    month_spend_millicredits: int = Field(description="Spent this calendar month, both sources.")


class AgentUpdated(AgentOut):
    resumed: bool = Field(description="Whether the change resumed the stopped agent (rule 6).")


class AgentList(BaseModel):
    agents: list[AgentOut]


class MessageCharge(Strict):
    agent_id: AgentId
    quantity: int = Field(default=1, ge=1, le=MAX_QUANTITY, description="Messages to charge.")
    direction: Literal["inbound", "outbound"] = Field(
        description="Received (inbound) or about to be sent (outbound); both cost the same."
    )


class ChargeOut(BaseModel):
    """The answer to "may the agent do this work?" and what it cost."""

    allowed: bool
    reason: StopReason | None = Field(description="Why the work was refused.")
    agent_id: int
    amount_millicredits: int = Field(description="Price of the work (charged only if allowed).")
    from_plan_millicredits: int
    from_wallet_millicredits: int
    plan_balance_millicredits: int
    wallet_balance_millicredits: int
    agent_status: Literal["active", "stopped"]
    replayed: bool = Field(description="True when this answers a repeated Idempotency-Key.")


class MessageChargeOut(ChargeOut):
    quantity: int
    direction: Literal["inbound", "outbound"]


class RefusedMessage(MessageChargeOut):
    error: ErrorDetail


class CallStart(Strict):
    agent_id: AgentId


class CallMinute(Strict):
    minute: int = Field(ge=2, le=MAX_MINUTE, description="The minute starting now: 2, 3, ...")


class CallEnd(Strict):
    duration_seconds: int = Field(ge=0, le=calls.MAX_DURATION)


class CallMinuteOut(ChargeOut):
    call_id: str
    minute: int
    hang_up: bool = Field(description="True: end the call now, this minute is not paid.")


class RefusedMinute(CallMinuteOut):
    error: ErrorDetail


class CallEndOut(BaseModel):
    call_id: str
    minutes_charged: int
    duration_seconds: int
    charged_millicredits: int = Field(description="What the call cost after any refund.")
    refunded_millicredits: int = Field(description="Per-second billing: unused seconds back.")
    replayed: bool


class BalanceOut(BaseModel):
    account_id: int
    name: str
    currency: str
    plan_balance_millicredits: int = Field(description="Plan credits left this cycle.")
    plan_grant_millicredits: int = Field(description="Plan credits granted this cycle.")
    wallet_balance_millicredits: int
    wallet_value_minor: int = Field(description="The wallet's worth in the currency's cents.")
    cycle_start: date | None
    next_renewal_at: datetime | None
    agents: list[AgentOut]


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
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


# --------------------------------------------------------------------------- helpers

bearer = HTTPBearer(
    auto_error=False,
    description="An API key from `creditbot api-keys create`, as 'Authorization: Bearer cb_...'.",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
CallIdPath = Annotated[
    str,
    Path(min_length=1, max_length=64, pattern=r"^[0-9a-f]+$", description="The call's id."),
]
AgentIdPath = Annotated[int, Path(ge=1, le=MAX_ID, description="The agent's id.")]
IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=MAX_KEY_LENGTH,
        pattern=r"^[\x21-\x7e]+$",
        description=(
            "Your unique id for this piece of work (printable ASCII, no spaces). Retrying "
            "with the same key and body answers the first result and charges nothing more; "
            "the same key with another body is refused with 409."
        ),
    ),
]


def request_hash(path: str, body: BaseModel) -> str:
    """Fingerprint of a request: SHA-256 of its canonical JSON (sorted keys, no spaces),
    after validation, so formatting and key order do not matter."""
    canonical = json.dumps(
        {"path": path, "body": body.model_dump(mode="json")},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _agent_out(agent: Agent, timezone: str) -> AgentOut:
    current = month_key(utcnow(), timezone)
    return AgentOut(
        id=agent.id,
        name=agent.name,
        status=agent.status,  # type: ignore[arg-type]
        stop_reason=agent.stop_reason,  # type: ignore[arg-type]
        behaviour=agent.behaviour,  # type: ignore[arg-type]
        monthly_limit_millicredits=agent.monthly_limit,
        month_spend_millicredits=agent.month_spend if agent.month == current else 0,
    )


def _charge_fields(agent_id: int, result: Charge) -> dict[str, Any]:
    return {
        "allowed": result.allowed,
        "reason": result.reason,
        "agent_id": agent_id,
        "amount_millicredits": result.amount,
        "from_plan_millicredits": result.from_plan,
        "from_wallet_millicredits": result.from_wallet,
        "plan_balance_millicredits": result.plan_balance,
        "wallet_balance_millicredits": result.wallet_balance,
        "agent_status": result.agent_status,
        "replayed": result.replayed,
    }


_REFUSALS = {
    "plan_exhausted": "Plan credits are used up and this agent is set to stop.",
    "wallet_empty": "Plan credits and the wallet cannot pay for this work.",
    "monthly_limit": "This agent reached its monthly spending limit.",
}


def _refusal(reason: str | None) -> dict[str, str]:
    reason = reason or "refused"
    return {"code": reason, "message": _REFUSALS.get(reason, "This work is refused.")}


def _answer(payload: dict[str, Any], *, allowed: bool, replayed: bool) -> JSONResponse:
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    if not allowed:
        payload = {**payload, "error": _refusal(payload["reason"])}
    return JSONResponse(payload, status_code=200 if allowed else 402, headers=headers)


# --------------------------------------------------------------------------- routes


def build_router(context: AppContext) -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["agent runtime"])
    gates = Gates(context.engine, sessions=context.sessions, safe=(LedgerError, ApiError))

    def run(
        credentials: HTTPAuthorizationCredentials | None,
        work: Callable[[Session, int], T],
        *,
        group: bool = False,
    ) -> T:
        """Authenticate and do `work` for the key's account, in one transaction. `group`
        work (a charge, which raises only before it writes) may share its transaction and
        commit with others waiting for the same account (bot/http/gates.py)."""
        if credentials is None or not well_formed(credentials.credentials):
            raise _unauthorised()  # without touching the database
        token = credentials.credentials

        def unit(session: Session) -> T:
            account_id = authenticate(session, token)
            if account_id is None:
                raise _unauthorised()
            return work(session, account_id)

        batch = gates.group_for_key(token) if group else None
        if batch is not None:
            return batch.run(unit)
        with gates.for_key(token):
            return transaction(context.sessions, unit)

    def timezone_of(session: Session, account_id: int) -> str:
        return session.execute(
            select(Account.timezone).where(Account.id == account_id)
        ).scalar_one()

    @router.post(
        "/agents",
        status_code=201,
        response_model=AgentOut,
        responses=_errors(400, 401, 413, 422),
        summary="Create an agent",
    )
    def create_agent(body: AgentCreate, credentials: Credentials) -> Any:
        def work(session: Session, account_id: int) -> AgentOut:
            agent = agents.add_agent(
                session,
                account_id,
                body.name,
                behaviour=body.behaviour,
                monthly_limit=body.monthly_limit_millicredits,
            )
            return _agent_out(agent, timezone_of(session, account_id))

        return run(credentials, work)

    @router.get(
        "/agents",
        response_model=AgentList,
        responses=_errors(401),
        summary="List the account's agents",
    )
    def list_agents(credentials: Credentials) -> Any:
        def work(session: Session, account_id: int) -> AgentList:
            tz = timezone_of(session, account_id)
            return AgentList(
                agents=[_agent_out(a, tz) for a in agents.list_agents(session, account_id)]
            )

        return run(credentials, work)

    @router.get(
        "/agents/{agent_id}",
        response_model=AgentOut,
        responses=_errors(401, 404, 422),
        summary="Read an agent",
    )
    def read_agent(agent_id: AgentIdPath, credentials: Credentials) -> Any:
        def work(session: Session, account_id: int) -> AgentOut:
            agent = session.get(Agent, agent_id)
            if agent is None or agent.account_id != account_id:
                raise UnknownAgent(f"No agent {agent_id} in this account.")
            return _agent_out(agent, timezone_of(session, account_id))

        return run(credentials, work)

    @router.patch(
        "/agents/{agent_id}",
        response_model=AgentUpdated,
        responses=_errors(400, 401, 404, 413, 422),
        summary="Change an agent's name, behaviour or monthly limit",
    )
    def update_agent(
        agent_id: AgentIdPath,
        body: AgentUpdate,
        credentials: Credentials,
    ) -> Any:
        sent = body.model_fields_set
        for name in ("name", "behaviour"):
            if name in sent and getattr(body, name) is None:
                raise ApiError(422, "invalid_request", f"{name}: cannot be null.")

        def work(session: Session, account_id: int) -> AgentUpdated:
            agent = session.get(Agent, agent_id)
            if agent is None or agent.account_id != account_id:
                raise UnknownAgent(f"No agent {agent_id} in this account.")
            agent, resumed = agents.update_agent(
                session,
                account_id,
                agent.id,
                name=body.name if "name" in sent else agents.UNSET,  # type: ignore[arg-type]
                behaviour=body.behaviour if "behaviour" in sent else agents.UNSET,  # type: ignore[arg-type]
                monthly_limit=body.monthly_limit_millicredits
                if "monthly_limit_millicredits" in sent
                else agents.UNSET,
            )
            out = _agent_out(agent, timezone_of(session, account_id))
            return AgentUpdated(**out.model_dump(), resumed=resumed)

        return run(credentials, work)

    @router.post(
        "/messages",
        response_model=MessageChargeOut,
        responses={
            402: {"model": RefusedMessage, "description": "Refused: do not send or process it."},
            **_errors(400, 401, 404, 409, 413, 422),
        },
        summary="Authorise and charge messages",
    )
    def charge_messages(
        body: MessageCharge, idempotency_key: IdempotencyKey, credentials: Credentials
    ) -> Any:
        digest = request_hash("/v1/messages", body)

        def work(session: Session, account_id: int) -> Charge:
            return charge(
                session,
                account_id,
                body.agent_id,
                "message",
                body.quantity,
                idempotency_key=f"msg:{idempotency_key}",
                request_hash=digest,
            )

        result = run(credentials, work, group=True)
        payload = {
            **_charge_fields(body.agent_id, result),
            "quantity": body.quantity,
            "direction": body.direction,
        }
        return _answer(payload, allowed=result.allowed, replayed=result.replayed)

    def _minute_answer(agent_id: int, minute: calls.CallMinute) -> JSONResponse:
        payload = {
            **_charge_fields(agent_id, minute.charge),
            "call_id": minute.call_id,
            "minute": minute.minute,
            "hang_up": minute.hang_up,
        }
        return _answer(payload, allowed=minute.charge.allowed, replayed=minute.charge.replayed)

    @router.post(
        "/calls",
        response_model=CallMinuteOut,
        responses={
            402: {"model": RefusedMinute, "description": "Refused: do not start the call."},
            **_errors(400, 401, 404, 409, 413, 422),
        },
        summary="Start a call: authorise and charge its first minute",
    )
    def start_call(
        body: CallStart, idempotency_key: IdempotencyKey, credentials: Credentials
    ) -> Any:
        result = run(
            credentials,
            lambda s, account_id: calls.start_call(
                s, account_id, body.agent_id, idempotency_key=idempotency_key
            ),
        )
        return _minute_answer(body.agent_id, result)

    @router.post(
        "/calls/{call_id}/minutes",
        response_model=CallMinuteOut,
        responses={
            402: {"model": RefusedMinute, "description": "Not paid: hang up now."},
            **_errors(400, 401, 404, 413, 422),
        },
        summary="Authorise and charge the next minute of a call",
    )
    def call_minute(call_id: CallIdPath, body: CallMinute, credentials: Credentials) -> Any:
        def work(session: Session, account_id: int) -> tuple[int, calls.CallMinute]:
            result = calls.continue_call(session, account_id, call_id, body.minute)
            agent_id = session.execute(select(Call.agent_id).where(Call.id == call_id)).scalar_one()
            return agent_id, result

        agent_id, result = run(credentials, work)
        return _minute_answer(agent_id, result)

    @router.post(
        "/calls/{call_id}/end",
        response_model=CallEndOut,
        responses=_errors(400, 401, 404, 409, 413, 422),
        summary="End a call (per-second billing refunds the unused part of its last minute)",
    )
    def end_call(call_id: CallIdPath, body: CallEnd, credentials: Credentials) -> Any:
        result = run(
            credentials,
            lambda s, account_id: calls.end_call(s, account_id, call_id, body.duration_seconds),
        )
        return CallEndOut(
            call_id=result.call_id,
            minutes_charged=result.minutes_charged,
            duration_seconds=result.duration_seconds,
            charged_millicredits=result.charged,
            refunded_millicredits=result.refunded,
            replayed=result.replayed,
        )

    @router.get(
        "/balance",
        response_model=BalanceOut,
        responses=_errors(401),
        summary="Plan credits left, wallet, next renewal and each agent's month spend",
    )
    def read_balance(credentials: Credentials) -> Any:
        def work(session: Session, account_id: int) -> BalanceOut:
            view = accounts.balance(session, account_id)
            return BalanceOut(
                account_id=view.account_id,
                name=view.name,
                currency=view.currency,
                plan_balance_millicredits=view.plan_balance,
                plan_grant_millicredits=view.plan_grant,
                wallet_balance_millicredits=view.wallet_balance,
                wallet_value_minor=view.wallet_value_minor,
                cycle_start=view.cycle_start,
                next_renewal_at=view.next_renewal_at,
                agents=[
                    AgentOut(
                        id=a.id,
                        name=a.name,
                        status=a.status,  # type: ignore[arg-type]
                        stop_reason=a.stop_reason,  # type: ignore[arg-type]
                        behaviour=a.behaviour,  # type: ignore[arg-type]
                        monthly_limit_millicredits=a.monthly_limit,
                        month_spend_millicredits=a.month_spend,
                    )
                    for a in view.agents
                ],
            )

        return run(credentials, work)

    return router


def register(app: FastAPI, context: AppContext) -> None:
    """Add the /v1 routes, their error bodies and the request body limit."""
    app.include_router(build_router(context))
    install_error_handlers(app)
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)
