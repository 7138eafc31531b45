"""/v1/balance: plan credits, wallet, next renewal and each agent's month spend."""

from __future__ import annotations

from fastapi import APIRouter

from bot.http.api.authentication import ApiKeyRoute
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
async def read_balance(account: CurrentAccount) -> BalanceOut:
    return BalanceOut.of(await account.read(balance))
