"""/v1/usage: what the account used, by agent, local day and unit, plan vs wallet; answered
from the usage rollup (ledger/usage.py), never by scanning the journal."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query

from bot.http.api.authentication import ApiKeyRoute
from bot.http.api.dependencies import CurrentAccount
from bot.http.api.errors import error_responses
from bot.http.api.schemas import UsageOut
from ledger.usage import usage_report

router = APIRouter(route_class=ApiKeyRoute)

GroupBy = Annotated[
    str,
    Query(
        max_length=40,
        pattern=r"^[a-z]+(,[a-z]+)*$",
        description="Comma-separated groups: any of agent, day, unit.",
    ),
]


@router.get(
    "/usage",
    response_model=UsageOut,
    response_model_by_alias=True,
    responses=error_responses(401, 422),
    summary="Usage by agent, day and unit, from plan credits and the wallet",
    description=(
        "Days are the account's local days; `from` and `to` are both included. Without "
        "them: the last 30 days, today included. A range that ends before it starts, or of "
        "more than 3,660 days, is a 422."
    ),
)
async def read_usage(
    account: CurrentAccount,
    from_: Annotated[date | None, Query(alias="from", description="First day, YYYY-MM-DD.")] = None,
    to: Annotated[date | None, Query(description="Last day, YYYY-MM-DD.")] = None,
    group_by: GroupBy = "agent,day,unit",
) -> UsageOut:
    groups = group_by.split(",")
    return UsageOut.of(await account.read(usage_report, from_, to, groups))
