"""Off-session charges of the saved card: auto-recharge attempts (asked for by charges,
found by the sweep, started by hand) and one-click top-ups.

Every Stripe call happens outside a database transaction: the ledger records the intent
(a pending recharge), the call is made, and its outcome is recorded in a new transaction
through `apply_payment_intent`, the same way the webhook and reconciliation record it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import stripe
from sqlalchemy.orm import Session

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
from ledger.models.payments import StripeCustomer, Topup
from ledger.recharges import (
    MAX_TRIES,
    RechargeJob,
    RechargeRequest,
    claim_due_recharges,
    request_recharge,
)
from ledger.stripe_records import stripe_customer
from ledger.topups import check_topup, topup_with_key

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
    #: A request with the same key was credited before: nothing was charged again.
    replayed: bool = False

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"


def charge_saved_card(
    context: AppContext, account_id: int, amount_minor: int, idempotency_key: str, user_id: str
) -> SavedCardCharge:
    """A one-click top-up with the saved card (off-session PaymentIntent). Keyed on
    `idempotency_key`, here and at Stripe: a top-up already credited under the key is
    answered again (the key for another amount is an `IdempotencyConflict`)."""
    result = _charge_saved_card(context, account_id, amount_minor, idempotency_key, user_id)
    if not result.replayed:
        missing = result.reason == "missing_payment_method"
        metrics.CARD_TOPUPS.labels(result.reason if missing else result.status).inc()
    return result


def _charge_saved_card(
    context: AppContext, account_id: int, amount_minor: int, idempotency_key: str, user_id: str
) -> SavedCardCharge:

    def card(session: Any) -> tuple[str, StripeCustomer | None, Topup | None]:
        account = get_account(session, account_id)
        done = topup_with_key(session, account_id, idempotency_key, amount_minor)
        if done is None:
            check_topup(account, amount_minor)
        return account.currency, stripe_customer(session, account_id), done

    currency, customer, done = transaction(context.sessions, card)
    if done is not None and done.status == "paid":
        return SavedCardCharge(
            "succeeded", amount_minor, credited=done.credited,
            payment_intent_id=done.payment_intent_id, replayed=True,
        )  # fmt: skip
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
        purpose = IntentPurpose(
            account_id, "saved_card", requested_by=user_id, idempotency_key=idempotency_key
        )
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
            replayed=result.replayed,
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


def attempt_recharge(
    context: AppContext, job: RechargeJob, *, now: datetime | None = None
) -> ChargeOutcome:
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
    return outcome


@dataclass
class RechargeRun:
    """What one pass over recharge requests or wallets did, account by account. A pass
    goes on past an account that fails; `ok` says whether everything it tried worked."""

    #: Recharge requests (outbox messages) handled and marked so.
    requests: int = 0
    #: Attempts started: a Stripe call made, or an attempt that failed at once.
    started: int = 0
    succeeded: int = 0
    #: Attempts that failed, as "account 3: card_declined".
    failed: list[str] = field(default_factory=list)
    #: Accounts whose handling raised, as "account 3: IntegrityError: ..."; retried later.
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.errors

    def problems(self) -> str:
        """The failures and errors, in one line."""
        return "; ".join(self.failed + self.errors)


def _run_for_account(
    context: AppContext,
    run: RechargeRun,
    account_id: int,
    start: Callable[[], RechargeRequest],
    now: datetime | None,
) -> str | None:
    """Start (with `start`) and make one account's attempt, noting what came of it in
    `run`. Anything it raises is logged and noted, never passed on: the pass goes on to
    the next account. Returns the error, None when the account was handled."""
    try:
        request = start()
        if request.failed is not None:
            run.started += 1
            run.failed.append(f"account {account_id}: {request.failed.reason}")
            metrics.RECHARGE_ATTEMPTS.labels(request.failed.reason or "failed").inc()
        elif request.job is not None:
            run.started += 1
            outcome = attempt_recharge(context, request.job, now=now)
            if outcome.status == "succeeded":
                run.succeeded += 1
            elif outcome.status == "failed" or (
                outcome.status == "retry" and request.job.tries >= MAX_TRIES  # given up
            ):
                run.failed.append(f"account {account_id}: {outcome.reason}")
    except Exception as exc:  # noqa: BLE001 - recorded in the run and retried; others go on
        log.exception("auto-recharge failed for account %s", account_id)
        error = f"account {account_id}: {type(exc).__name__}: {exc}"[:500]
        run.errors.append(error)
        return error
    return None


def _request(
    context: AppContext, account_id: int, trigger: str, now: datetime | None
) -> RechargeRequest:
    return transaction(
        context.sessions,
        lambda s: request_recharge(
            s, account_id, trigger=trigger, fix_link_base=fix_link_base(context), now=now
        ),
    )


#: How long a claimed recharge request is reserved for the worker handling it.
REQUEST_LEASE = timedelta(minutes=2)


def process_recharge_requests(context: AppContext, *, now: datetime | None = None) -> RechargeRun:
    """Act on `recharge.requested` outbox messages written by charges.

    The charge that wrote a message has long returned: the Stripe call happens here, in
    the scheduler, never on the request path. Messages are leased, not taken: each is
    marked handled only once its account was handled, and one whose account failed comes
    back after a backoff (or when the lease runs out, if this process dies).
    """

    def claim(session: Session) -> dict[int, list[int]]:
        messages = outbox.claim_due(
            session, kind_prefix=outbox.RECHARGE_REQUESTED, lease=REQUEST_LEASE, now=now
        )
        by_account: dict[int, list[int]] = {}
        for message in messages:
            if message.account_id is None:
                outbox.mark_delivered(session, message.id, now=now)  # nothing to act on
            else:
                by_account.setdefault(message.account_id, []).append(message.id)
        return by_account

    run = RechargeRun()
    for account_id, message_ids in transaction(context.sessions, claim).items():
        start = partial(_request, context, account_id, "charge", now)
        error = _run_for_account(context, run, account_id, start, now)
        try:
            transaction(context.sessions, partial(_settle, message_ids, error, now))
        except Exception as exc:  # noqa: BLE001 - the lease runs out and they come back
            log.exception("could not settle the recharge requests of account %s", account_id)
            run.errors.append(f"account {account_id}: {type(exc).__name__}: {exc}"[:500])
        else:
            run.requests += 0 if error else len(message_ids)
    return run


def _settle(
    message_ids: list[int], error: str | None, now: datetime | None, session: Session
) -> None:
    """Mark an account's requests handled, or failed (offered again after a backoff)."""
    for message_id in message_ids:
        if error is None:
            outbox.mark_delivered(session, message_id, now=now)
        else:
            outbox.mark_failed(session, message_id, error, now=now)


def recharge_now(context: AppContext, account_id: int, *, now: datetime | None = None) -> str:
    """Start (and run) a recharge for one account now if it needs one; says what happened.

    An admin's run does not wait after a failed attempt (automatic triggers do): the
    admin may just have fixed the card."""
    request = _request(context, account_id, "manual", now)
    if request.job is not None:
        return attempt_recharge(context, request.job, now=now).status
    if request.failed is not None:
        metrics.RECHARGE_ATTEMPTS.labels(request.failed.reason or "failed").inc()
        return f"failed: {request.failed.reason}"
    return f"skipped: {request.skipped}"


def sweep_auto_recharge(context: AppContext, *, now: datetime | None = None) -> RechargeRun:
    """Retry attempts whose Stripe call is due again, and start a recharge for every
    account whose wallet sits under its threshold. One account's failure is noted in the
    run and the sweep goes on to the others."""
    run = RechargeRun()
    jobs = transaction(context.sessions, lambda s: claim_due_recharges(s, now=now))
    for job in jobs:
        _run_for_account(context, run, job.account_id, partial(RechargeRequest, job=job), now)
    for account_id in transaction(context.sessions, accounts_needing_recharge):
        start = partial(_request, context, account_id, "sweep", now)
        _run_for_account(context, run, account_id, start, now)
    return run
