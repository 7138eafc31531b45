"""/v1/balance: plan credits, wallet, next renewal and each agent's month spend."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from bot.http.api.authentication import ApiKeyAccount, ApiKeyRoute
from bot.http.api.dependencies import CurrentAccount
from bot.http.api.errors import error_responses
from bot.http.api.schemas import BalanceOut
from ledger.accounts import balance

router = APIRouter(route_class=ApiKeyRoute)


@router.get(
    "/balance",
    response_model=BalanceOut,
    responses=error_responses(401),
    summary="Plan credits left, wallet, next renewal and each agent's month spend",
)
async def read_balance(account: CurrentAccount) -> Response:
    return await balance_answer(account)


async def balance_answer(account: ApiKeyAccount, *_: object) -> Response:
    """The account's balance as JSON bytes, serialized as FastAPI serializes a response
    model: the work of this route and of its fast path (fast_routes.py)."""
    out = BalanceOut.of(await account.read(balance))
    return Response(out.model_dump_json(), media_type="application/json")
