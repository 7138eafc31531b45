"""/v1/topups and /v1/recharges: start a top-up (a Stripe Checkout page, or the saved card
charged now), list top-ups and auto-recharge attempts. Keys of the `admin` scope only.

Money-moving POSTs carry an Idempotency-Key: a repeated request answers the first one's
page or payment and charges nothing more; the same key for another amount is 409. The key,
its scope and the amount are checked through the journal's writer like every /v1 request;
Stripe is then called between two transactions of the Stripe gateway, never inside one
(bot/stripe/), on a thread of the pool, so the event loop never waits for Stripe.
"""

from __future__ import annotations

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from bot import stripe as stripe_gateway
from bot.http.api.admin_schemas import (
    CheckoutOut,
    RechargeList,
    RechargeOut,
    SavedCardOut,
    TopupIn,
    TopupList,
    TopupOut,
)
from bot.http.api.authentication import ApiKeyRoute
from bot.http.api.dependencies import CurrentAccount, IdempotencyKey
from bot.http.api.errors import ApiError, error_responses
from ledger.accounts import get_account
from ledger.audit import Actor
from ledger.recharges import list_recharges
from ledger.topups import list_topups, parse_topup

router = APIRouter(route_class=ApiKeyRoute)


def _parse_amount(session: Session, account_id: int, text: str, *, actor: Actor) -> tuple[int, str]:
    """The typed amount, checked against the account's top-up limits, and its currency."""
    account = get_account(session, account_id)
    return parse_topup(account, text), account.currency


def _payer(actor: Actor) -> str:
    """Who asked, as a top-up records it (Slack records the user's id)."""
    return f"api:{actor.name}"


@router.post(
    "/topups", status_code=201, response_model=CheckoutOut,
    responses=error_responses(400, 401, 403, 409, 413, 422, 502),
    summary="Start a top-up: the Stripe Checkout page to pay it on (admin)",
)  # fmt: skip
async def start_topup(
    body: TopupIn, idempotency_key: IdempotencyKey, account: CurrentAccount
) -> CheckoutOut:
    holder = await account.admin_holder()
    amount, currency = await account.admin(_parse_amount, body.amount)
    try:
        page = await run_in_threadpool(
            stripe_gateway.open_topup_checkout, account.context, holder.account_id, amount,
            _payer(holder.actor), idempotency_key=f"api:{idempotency_key}",
        )  # fmt: skip
    except stripe_gateway.StripeFailed as exc:
        raise ApiError(502, "stripe_error", f"Stripe refused the Checkout page: {exc}") from exc
    return CheckoutOut(
        topup_id=page.topup_id, amount_minor=page.amount_minor, currency=currency,
        checkout_url=page.url, replayed=page.replayed,
    )  # fmt: skip


@router.post(
    "/topups/saved-card", response_model=SavedCardOut,
    responses={402: {"model": SavedCardOut, "description": "The card was refused: nothing was credited."},
               **error_responses(400, 401, 403, 409, 413, 422, 502)},
    summary="Top up now with the saved card (admin)",
)  # fmt: skip
async def charge_saved_card(
    body: TopupIn, idempotency_key: IdempotencyKey, account: CurrentAccount
) -> JSONResponse:
    holder = await account.admin_holder()
    amount, currency = await account.admin(_parse_amount, body.amount)
    result = await run_in_threadpool(
        stripe_gateway.charge_saved_card, account.context, holder.account_id, amount,
        f"api:{idempotency_key}", _payer(holder.actor),
    )  # fmt: skip
    answer = SavedCardOut(
        status=result.status, amount_minor=amount, currency=currency,
        credited_millicredits=result.credited, wallet_balance_millicredits=result.wallet_balance,
        payment_intent_id=result.payment_intent_id, reason=result.reason,
        decline_code=result.decline_code, message=result.message, replayed=result.replayed,
    )  # fmt: skip
    headers = {"Idempotent-Replayed": "true"} if result.replayed else None
    status = 402 if result.status == "failed" else 200
    return JSONResponse(answer.model_dump(mode="json"), status_code=status, headers=headers)


def read_topups(session: Session, account_id: int, limit: int, *, actor: Actor) -> TopupList:
    return TopupList(
        topups=[
            TopupOut(
                id=t.id,
                source=t.source,
                status=t.status,
                amount_minor=t.amount_minor,
                currency=t.currency,
                credited_millicredits=t.credited,
                requested_by=t.requested_by,
                created_at=t.created_at,
                paid_at=t.paid_at,
            )  # fmt: skip
            for t in list_topups(session, account_id, limit=limit)
        ]
    )


def read_recharges(session: Session, account_id: int, limit: int, *, actor: Actor) -> RechargeList:
    return RechargeList(
        recharges=[
            RechargeOut(
                id=r.id,
                status=r.status,
                trigger=r.trigger,
                amount_minor=r.amount_minor,
                currency=r.currency,
                reason=r.reason,
                decline_code=r.decline_code,
                message=r.message,
                created_at=r.created_at,
                finished_at=r.finished_at,
            )  # fmt: skip
            for r in list_recharges(session, account_id, limit=limit)
        ]
    )


Limit = Query(50, ge=1, le=500, description="How many, newest first.")


@router.get(
    "/topups", response_model=TopupList, responses=error_responses(401, 403, 422),
    summary="Top-ups, newest first (admin)",
)  # fmt: skip
async def get_topups(account: CurrentAccount, limit: int = Limit) -> TopupList:
    return await account.admin(read_topups, limit)


@router.get(
    "/recharges", response_model=RechargeList, responses=error_responses(401, 403, 422),
    summary="Auto-recharge attempts and their outcomes, newest first (admin)",
)  # fmt: skip
async def get_recharges(account: CurrentAccount, limit: int = Limit) -> RechargeList:
    return await account.admin(read_recharges, limit)
