"""/v1/calls: start a call (its first minute paid), pay each further minute, end it."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy.orm import Session
from starlette.responses import Response

import ledger.agents
import ledger.calls
from bot.http.api.authentication import ApiKeyAccount, ApiKeyRoute
from bot.http.api.charge_answers import charge_answer
from bot.http.api.dependencies import CallIdPath, CurrentAccount, IdempotencyKey
from bot.http.api.errors import error_responses
from bot.http.api.schemas import (
    CallEnd,
    CallEndOut,
    CallMinute,
    CallMinuteOut,
    CallStart,
    RefusedMinute,
)

router = APIRouter(route_class=ApiKeyRoute)


def _minute_answer(agent_id: int, minute: ledger.calls.CallMinute) -> Response:
    return charge_answer(
        agent_id,
        minute.charge,
        call_id=minute.call_id,
        minute=minute.minute,
        hang_up=minute.hang_up,
    )


@router.post(
    "/calls",
    response_model=CallMinuteOut,
    responses={
        402: {"model": RefusedMinute, "description": "Refused: do not start the call."},
        **error_responses(400, 401, 404, 409, 413, 422),
    },
    summary="Start a call: authorise and charge its first minute",
)
async def start_call(
    body: CallStart, idempotency_key: IdempotencyKey, account: CurrentAccount
) -> Response:
    return await call_started(account, body, idempotency_key)


async def call_started(account: ApiKeyAccount, body: CallStart, idempotency_key: str) -> Response:
    """The call's first minute and its answer, once the key, the header and the body are
    known good: the work of this route and of its fast path (fast_routes.py)."""
    minute = await account.run(
        ledger.calls.start_call, body.agent_id, idempotency_key=idempotency_key
    )
    return _minute_answer(body.agent_id, minute)


def _charge_next_minute(
    session: Session, account_id: int, call_id: str, minute: int
) -> tuple[int, ledger.calls.CallMinute]:
    """The minute's charge and the call's agent (the answer names it; CallMinute does not)."""
    charged = ledger.calls.continue_call(session, account_id, call_id, minute)
    return ledger.agents.agent_of_call(session, account_id, call_id), charged


@router.post(
    "/calls/{call_id}/minutes",
    response_model=CallMinuteOut,
    responses={
        402: {"model": RefusedMinute, "description": "Not paid: hang up now."},
        **error_responses(400, 401, 404, 413, 422),
    },
    summary="Authorise and charge the next minute of a call",
)
async def call_minute(call_id: CallIdPath, body: CallMinute, account: CurrentAccount) -> Response:
    return await minute_charged(account, body, call_id)


async def minute_charged(account: ApiKeyAccount, body: CallMinute, call_id: str) -> Response:
    """The minute's charge and its answer, once the key, the call id and the body are known
    good: the work of this route and of its fast path (fast_routes.py)."""
    agent_id, minute = await account.charge(_charge_next_minute, call_id, body.minute)
    return _minute_answer(agent_id, minute)


@router.post(
    "/calls/{call_id}/end",
    response_model=CallEndOut,
    responses=error_responses(400, 401, 404, 409, 413, 422),
    summary="End a call (per-second billing refunds the unused part of its last minute)",
)
async def end_call(call_id: CallIdPath, body: CallEnd, account: CurrentAccount) -> CallEndOut:
    ended = await account.run(ledger.calls.end_call, call_id, body.duration_seconds)
    return CallEndOut.of(ended)
