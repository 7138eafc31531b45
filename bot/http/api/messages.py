"""/v1/messages: authorise and charge messages before they are sent or processed."""

from __future__ import annotations

import hashlib
import json

from fastapi import APIRouter
from pydantic import BaseModel
from starlette.responses import Response

from bot.http.api.authentication import ApiKeyAccount, ApiKeyRoute
from bot.http.api.charge_answers import charge_answer
from bot.http.api.dependencies import CurrentAccount, IdempotencyKey
from bot.http.api.errors import error_responses
from bot.http.api.schemas import MessageCharge, MessageChargeOut, RefusedMessage
from ledger.charges import charge

router = APIRouter(route_class=ApiKeyRoute)


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


def message_request_hash(body: MessageCharge) -> str:
    """`request_hash("/v1/messages", body)`, written out: the same canonical JSON (keys
    sorted, `direction` one of two ASCII words), without building and sorting dicts on the
    hot path (tests/bot/test_fast_routes.py checks they agree)."""
    canonical = b'{"body":{"agent_id":%d,"direction":"%s","quantity":%d},"path":"/v1/messages"}'
    return hashlib.sha256(
        canonical % (body.agent_id, body.direction.encode(), body.quantity)
    ).hexdigest()


@router.post(
    "/messages",
    response_model=MessageChargeOut,
    responses={
        402: {"model": RefusedMessage, "description": "Refused: do not send or process it."},
        **error_responses(400, 401, 404, 409, 413, 422),
    },
    summary="Authorise and charge messages",
)
async def charge_messages(
    body: MessageCharge, idempotency_key: IdempotencyKey, account: CurrentAccount
) -> Response:
    return await charge_message(account, body, idempotency_key)


async def charge_message(
    account: ApiKeyAccount, body: MessageCharge, idempotency_key: str
) -> Response:
    """The charge and its answer, once the key, the header and the body are known good: the
    work of this route and of its fast path (fast_routes.py)."""
    result = await account.charge(
        charge,
        body.agent_id,
        "message",
        body.quantity,
        idempotency_key=f"msg:{idempotency_key}",
        request_hash=message_request_hash(body),
    )
    return charge_answer(body.agent_id, result, quantity=body.quantity, direction=body.direction)
