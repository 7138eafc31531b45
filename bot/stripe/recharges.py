"""Off-session charges of the saved card: auto-recharge attempts (asked for by charges,
found by the sweep, started by hand) and one-click top-ups.

Every Stripe call happens outside a database transaction: the ledger records the intent
(a pending recharge), the call is made, and its outcome is recorded in a new transaction
through `apply_payment_intent`, the same way the webhook and reconciliation record it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import stripe

from bot import metrics
from bot.context import AppContext
from bot.stripe.client import as_dict, client, creditbot_metadata, fix_link_base
from bot.stripe.customers import receipt_email
from bot.stripe.payment_intents import (
    ChargeOutcome,
    IntentPurpose,
    apply_payment_intent,
    intent_outcome,
)
from ledger import outbox
from ledger.accounts import get_account
from ledger.auto_recharge import accounts_needing_recharge
from ledger.db import transaction
from ledger.errors import LedgerError
from ledger.models.payments import StripeCustomer
from ledger.recharges import (
    RechargeJob,
    RechargeRequest,
    claim_due_recharges,
    request_recharge,
)
from ledger.stripe_records import stripe_customer
from ledger.topups import check_topup

log = logging.getLogger(__name__)


def charge_off_session(
    context: AppContext,
    *,
    customer_id: str,
    payment_method_id: str,
    amount_minor: int,
    currency: str,
    idempotency_key: str,
    metadata: dict[str, str],
) -> ChargeOutcome:
    """Charge the saved card without the cardholder (one PaymentIntent, confirmed now)
    and classify Stripe's answer; an API error worth retrying is 'retry'."""
    params: dict[str, Any] = {
        "amount": amount_minor,
        "currency": currency.lower(),
        "customer": customer_id,
        "payment_method": payment_method_id,
        "off_session": True,
        "confirm": True,
        "metadata": metadata,
    }
    email = receipt_email(context, customer_id)
    if email:
        params["receipt_email"] = email
    try:
        intent = client(context).v1.payment_intents.create(
            params=params, options={"idempotency_key": idempotency_key}
        )
    except stripe.CardError as exc:
        error = as_dict(getattr(exc, "error", None))
        intent = as_dict(error.get("payment_intent"))
        code = exc.code or error.get("code")
        if code == "authentication_required":
            return ChargeOutcome(
                "failed", intent, "authentication_required", None, exc.user_message
            )
        decline = error.get("decline_code") or code
        return ChargeOutcome("failed", intent, "card_declined", decline, exc.user_message)
    except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
        return ChargeOutcome("retry", {}, "api_error", None, str(exc.user_message or exc))
    except stripe.StripeError as exc:
        status = exc.http_status or 0
        if status >= 500 or status in (0, 409, 429):
            return ChargeOutcome("retry", {}, "api_error", None, str(exc.user_message or exc))
        return ChargeOutcome("failed", {}, "api_error", None, str(exc.user_message or exc))
    return intent_outcome(as_dict(intent))


# --- one-click top-ups ------------------------------------------------------------------


@dataclass(frozen=True)
class SavedCardCharge:
    """The result of a one-click top-up with the saved card."""

    status: str  # 'succeeded' | 'processing' | 'failed'
    amount_minor: int
    credited: int = 0
    wallet_balance: int | None = None
    reason: str | None = None
    decline_code: str | None = None
    message: str | None = None
    payment_intent_id: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"


def charge_saved_card(
    context: AppContext, account_id: int, amount_minor: int, idempotency_key: str, user_id: str
) -> SavedCardCharge:
    """A one-click top-up with the saved card (off-session PaymentIntent)."""

    def card(session: Any) -> tuple[str, StripeCustomer | None]:
        account = get_account(session, account_id)
        check_topup(account, amount_minor)
        return account.currency, stripe_customer(session, account_id)

    currency, customer = transaction(context.sessions, card)
    if customer is None or not customer.payment_method_id:
        return SavedCardCharge(
            "failed",
            amount_minor,
            reason="missing_payment_method",
            message="No card is saved: add one first.",
        )
    outcome = charge_off_session(
        context,
        customer_id=customer.customer_id,
        payment_method_id=customer.payment_method_id,
        amount_minor=amount_minor,
        currency=currency,
        idempotency_key=f"creditbot-topup-{account_id}-{idempotency_key}",
        metadata=creditbot_metadata(account_id, "saved_card", user=user_id),
    )
    if outcome.status == "succeeded":
        purpose = IntentPurpose(account_id, "saved_card", requested_by=user_id)
        result = transaction(
            context.sessions,
            lambda s: apply_payment_intent(
                s, purpose, outcome, fix_link_base=fix_link_base(context)
            ),
        )
        return SavedCardCharge(
            "succeeded",
            amount_minor,
            credited=result.credited,
            wallet_balance=result.wallet_balance,
            payment_intent_id=outcome.payment_intent_id,
        )
    if outcome.status == "retry":
        outcome = ChargeOutcome("failed", {}, "api_error", None, outcome.message)
    return SavedCardCharge(
        outcome.status,
        amount_minor,
        reason=outcome.reason,
        decline_code=outcome.decline_code,
        message=outcome.message,
        payment_intent_id=outcome.payment_intent_id,
    )


# --- auto-recharge ------------------------------------------------------------------------


def charge_attempt(context: AppContext, job: RechargeJob) -> ChargeOutcome:
    """The Stripe call of a claimed attempt, under the attempt's own idempotency key (a
    repeated call returns the first call's PaymentIntent). Nothing is recorded yet."""
    return charge_off_session(
        context,
        customer_id=job.customer_id,
        payment_method_id=job.payment_method_id,
        amount_minor=job.amount_minor,
        currency=job.currency,
        idempotency_key=job.idempotency_key,
        metadata=creditbot_metadata(job.account_id, "auto_recharge", recharge_id=job.recharge_id),
    )


def attempt_recharge(context: AppContext, job: RechargeJob, *, now: datetime | None = None) -> str:
    """Make the Stripe call of a claimed attempt and record its outcome; returns it."""
    outcome = charge_attempt(context, job)
    metrics.RECHARGE_ATTEMPTS.labels(outcome.status).inc()
    log.info(
        "recharge %s of account %s: %s%s", job.recharge_id, job.account_id, outcome.status,
        f" ({outcome.reason})" if outcome.reason else "",
    )  # fmt: skip
    purpose = IntentPurpose(job.account_id, "auto_recharge", recharge_id=job.recharge_id)
    transaction(
        context.sessions,
        lambda s: apply_payment_intent(
            s, purpose, outcome, fix_link_base=fix_link_base(context), now=now
        ),
    )
    return outcome.status


def _request(
    context: AppContext, account_id: int, trigger: str, now: datetime | None
) -> RechargeRequest:
    return transaction(
        context.sessions,
        lambda s: request_recharge(
            s, account_id, trigger=trigger, fix_link_base=fix_link_base(context), now=now
        ),
    )


def _request_and_attempt(
    context: AppContext, account_id: int, trigger: str, now: datetime | None
) -> str | None:
    try:
        request = _request(context, account_id, trigger, now)
    except LedgerError as exc:
        log.warning("recharge for account %s not started: %s", account_id, exc)
        return None
    if request.job is not None:
        return attempt_recharge(context, request.job, now=now)
    if request.failed is not None:
        metrics.RECHARGE_ATTEMPTS.labels(request.failed.reason or "failed").inc()
        return "failed"
    return None


def process_recharge_requests(context: AppContext, *, now: datetime | None = None) -> int:
    """Act on `recharge.requested` outbox messages written by charges; returns how many.

    The charge that wrote the message has long returned: the Stripe call happens here,
    in the scheduler, never on the request path.
    """

    def take(session: Any) -> list[int]:
        messages = outbox.take_due(session, kind_prefix=outbox.RECHARGE_REQUESTED, now=now)
        for message in messages:
            outbox.mark_delivered(session, message.id, now=now)
        return [m.account_id for m in messages if m.account_id is not None]

    account_ids = transaction(context.sessions, take)
    for account_id in dict.fromkeys(account_ids):
        _request_and_attempt(context, account_id, "charge", now)
    return len(account_ids)


def recharge_now(context: AppContext, account_id: int, *, now: datetime | None = None) -> str:
    """Start (and run) a recharge for one account if it needs one; says what happened."""
    request = _request(context, account_id, "manual", now)
    if request.job is not None:
        return attempt_recharge(context, request.job, now=now)
    if request.failed is not None:
        metrics.RECHARGE_ATTEMPTS.labels(request.failed.reason or "failed").inc()
        return f"failed: {request.failed.reason}"
    return f"skipped: {request.skipped}"


def sweep_auto_recharge(context: AppContext, *, now: datetime | None = None) -> int:
    """Start a recharge for every account whose wallet sits under its threshold, and
    retry attempts whose Stripe call is due again. Returns how many calls were made."""
    jobs = transaction(context.sessions, lambda s: claim_due_recharges(s, now=now))
    for job in jobs:
        attempt_recharge(context, job, now=now)
    started = len(jobs)
    for account_id in transaction(context.sessions, accounts_needing_recharge):
        if _request_and_attempt(context, account_id, "sweep", now) is not None:
            started += 1
    return started
