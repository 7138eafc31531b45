"""Auto-recharge attempts (rule 9), each from request to outcome. The settings that start
them are `ledger.auto_recharge`.

- An attempt is requested (by a charge, the sweep or an admin), claimed by the worker that
  makes its Stripe call, and finishes as succeeded or failed; an API error is retried
  under the same key with backoff.
- At most one pending attempt per account (the database enforces it), each with its own
  idempotency key, never beyond the monthly cap; three failures in a row pause
  auto-recharge. Every attempt and its outcome is recorded and alerted.

Plain functions over a session; nothing here talks to Stripe (`bot.stripe` makes the call
between these transactions and reports what Stripe said).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger import outbox
from ledger.agents import waiting_list
from ledger.auto_recharge import month_recharged, month_start, recharge_amount, under_threshold
from ledger.cycles import utcnow
from ledger.errors import NotFound
from ledger.journal import lock_account
from ledger.models import Account
from ledger.models.payments import Recharge, StripeCustomer
from ledger.outbox import Alert
from ledger.topups import PaymentResult, record_payment

#: A worker that claimed a recharge has this long to report before another may retry it.
LEASE = timedelta(minutes=2)
#: Stripe calls for one attempt that failed with an API error before it counts as failed.
MAX_TRIES = 4
#: After a failed attempt, automatic triggers wait this long before trying again.
RETRY_AFTER_FAILURE = timedelta(minutes=10)
#: Failures in a row that pause auto-recharge.
FAILURES_TO_PAUSE = 3


@dataclass(frozen=True)
class RechargeJob:
    """What a worker needs to make the Stripe call of a pending attempt."""

    recharge_id: int
    account_id: int
    idempotency_key: str
    amount_minor: int
    currency: str
    customer_id: str
    payment_method_id: str
    tries: int


@dataclass(frozen=True)
class RechargeRequest:
    """The outcome of asking for a recharge: a job to run, an attempt that failed at once
    (no saved card), or why none was started (`skipped`)."""

    job: RechargeJob | None = None
    failed: Recharge | None = None
    skipped: str | None = None


def pending_recharge(session: Session, account_id: int) -> Recharge | None:
    return session.execute(
        select(Recharge).where(Recharge.account_id == account_id, Recharge.status == "pending")
    ).scalar_one_or_none()


def list_recharges(session: Session, account_id: int, *, limit: int = 50) -> list[Recharge]:
    """The account's attempts, newest first."""
    return list(
        session.execute(
            select(Recharge)
            .where(Recharge.account_id == account_id)
            .order_by(Recharge.id.desc())
            .limit(limit)
        ).scalars()
    )


def last_recharge(session: Session, account_id: int) -> Recharge | None:
    """The latest attempt (what `/balance` shows)."""
    latest = list_recharges(session, account_id, limit=1)
    return latest[0] if latest else None


def get_recharge(session: Session, ref: int | str) -> Recharge:
    """An attempt by id or by its idempotency key."""
    column = Recharge.id if isinstance(ref, int) else Recharge.idempotency_key
    recharge = session.execute(select(Recharge).where(column == ref)).scalar_one_or_none()
    if recharge is None:
        raise NotFound(f"No recharge attempt {ref}.")
    return recharge


# --- starting attempts ------------------------------------------------------------------


def request_recharge(
    session: Session,
    account_id: int,
    *,
    trigger: str = "charge",
    fix_link_base: str = "",
    now: datetime | None = None,
) -> RechargeRequest:
    """Start an auto-recharge attempt if the account needs one and may have one.

    Clears `accounts.recharge_requested`. Without a saved card the attempt fails at once
    (`missing_payment_method`); otherwise it is created pending and leased to the caller,
    who makes the Stripe call after this transaction commits and reports the outcome.
    After a failed attempt automatic triggers wait RETRY_AFTER_FAILURE; an admin's run
    (`trigger="manual"`) does not.
    """
    now = now or utcnow()
    account = lock_account(session, account_id)
    account.recharge_requested = False
    if not account.auto_recharge_enabled:
        return RechargeRequest(skipped="auto-recharge is off")
    if account.auto_recharge_paused:
        return RechargeRequest(skipped="auto-recharge is paused")
    if not under_threshold(account):
        return RechargeRequest(skipped="the wallet is not under the threshold")
    if pending_recharge(session, account_id) is not None:
        return RechargeRequest(skipped="a recharge is already in flight")
    last = last_recharge(session, account_id)
    if (
        trigger != "manual"  # an admin who just fixed the card wants one now
        and last is not None
        and last.status == "failed"
        and last.finished_at is not None
        and now - last.finished_at < RETRY_AFTER_FAILURE
    ):
        return RechargeRequest(skipped="the last attempt failed moments ago")
    cap = account.auto_recharge_monthly_cap_minor
    # Computed now: a target recharge tops up what the wallet lacks at this moment.
    sized = recharge_amount(account, month_recharged(session, account, now))
    if sized.skipped == "not_needed":
        return RechargeRequest(skipped="the wallet is at its target balance")
    amount = sized.amount_minor or account.auto_recharge_amount_minor
    if sized.amount_minor is None:
        outbox.add(
            session,
            account_id,
            Alert.RECHARGE_FAILED,
            {
                "reason": "monthly_cap_reached",
                "amount_minor": amount,
                "monthly_cap_minor": cap,
                "currency": account.currency,
                "message": "Auto-recharge reached its monthly cap; it starts again next month.",
            },
            now=now,
            dedup_key=f"alert.recharge_cap:{account_id}:{month_start(account, now).date()}",
        )
        return RechargeRequest(skipped="the monthly cap would be exceeded")
    recharge = Recharge(
        account_id=account_id,
        idempotency_key=f"recharge-{uuid.uuid4().hex}",
        status="pending",
        trigger=trigger,
        amount_minor=amount,
        currency=account.currency,
        tries=0,
        paused_auto_recharge=False,
        created_at=now,
    )
    customer = session.get(StripeCustomer, account_id)
    if customer is None or not customer.payment_method_id:
        recharge.status = "failed"
        session.add(recharge)
        session.flush()
        _fail(
            session,
            account,
            recharge,
            reason="missing_payment_method",
            message="No card is saved for auto-recharge: add one.",
            fix_link_base=fix_link_base,
            now=now,
        )
        return RechargeRequest(failed=recharge)
    recharge.tries = 1
    recharge.next_try_at = now + LEASE
    session.add(recharge)
    session.flush()  # the partial unique index refuses a second pending attempt here
    return RechargeRequest(job=_job(recharge, customer))


def _job(recharge: Recharge, customer: StripeCustomer) -> RechargeJob:
    return RechargeJob(
        recharge_id=recharge.id,
        account_id=recharge.account_id,
        idempotency_key=recharge.idempotency_key,
        amount_minor=recharge.amount_minor,
        currency=recharge.currency,
        customer_id=customer.customer_id,
        payment_method_id=customer.payment_method_id or "",
        tries=recharge.tries,
    )


def claim_due_recharges(
    session: Session, *, now: datetime | None = None, limit: int = 20
) -> list[RechargeJob]:
    """Pending attempts whose Stripe call is due again (a retry after an API error, or a
    worker that died mid-call), leased to the caller. Stripe's idempotency key makes a
    repeated call return the first call's PaymentIntent instead of charging twice."""
    now = now or utcnow()
    rows = session.execute(
        select(Recharge, StripeCustomer)
        .join(StripeCustomer, StripeCustomer.account_id == Recharge.account_id)
        .where(Recharge.status == "pending", Recharge.next_try_at <= now)
        .order_by(Recharge.id)
        .limit(limit)
        .with_for_update(of=Recharge, skip_locked=True)
    ).all()
    jobs = []
    for recharge, customer in rows:
        recharge.tries += 1
        recharge.next_try_at = now + LEASE
        jobs.append(_job(recharge, customer))
    session.flush()
    return jobs


# --- outcomes ---------------------------------------------------------------------------


def _locked_recharge(session: Session, recharge_id: int) -> tuple[Recharge, Account]:
    """The attempt and its account, locked, with the attempt read after the lock (another
    worker may have finished it while this one waited)."""
    recharge = session.get(Recharge, recharge_id)
    if recharge is None:
        raise NotFound(f"No recharge attempt {recharge_id}.")
    account = lock_account(session, recharge.account_id)
    session.refresh(recharge)
    return recharge, account


def recharge_succeeded(
    session: Session,
    recharge_id: int,
    *,
    payment_intent_id: str,
    amount_minor: int,
    currency: str,
    now: datetime | None = None,
) -> PaymentResult:
    """Stripe took the money: credit the wallet once (from the direct answer or the
    webhook, whichever comes first), resume `wallet_empty` agents, alert."""
    now = now or utcnow()
    recharge, account = _locked_recharge(session, recharge_id)
    result = record_payment(
        session,
        account.id,
        amount_minor=amount_minor,
        currency=currency,
        payment_intent_id=payment_intent_id,
        source="auto_recharge",
        recharge_id=recharge.id,
        now=now,
    )
    if recharge.status != "succeeded":
        # A late success after an attempt was given up still took the money: record it.
        recharge.status = "succeeded"
        recharge.payment_intent_id = payment_intent_id
        recharge.reason = recharge.decline_code = recharge.fix_url = None
        recharge.finished_at = now
        recharge.next_try_at = None
        session.flush()
        outbox.add(
            session,
            account.id,
            Alert.RECHARGE_SUCCEEDED,
            {
                "recharge_id": recharge.id,
                "amount_minor": amount_minor,
                "currency": account.currency,
                "credits": result.credited,
                "wallet_balance": result.wallet_balance,
                "waiting_agents": waiting_list(session, account.id),
            },
            now=now,
            dedup_key=f"{Alert.RECHARGE_SUCCEEDED}:{recharge.id}",
        )
    return result


def recharge_failed(
    session: Session,
    recharge_id: int,
    *,
    reason: str,
    decline_code: str | None = None,
    message: str | None = None,
    fix_link_base: str = "",
    payment_intent_id: str | None = None,
    now: datetime | None = None,
) -> Recharge:
    """Stripe refused the attempt. Records why and alerts; the third failure in a row
    pauses auto-recharge. An attempt already finished is left as it is."""
    now = now or utcnow()
    recharge, account = _locked_recharge(session, recharge_id)
    if recharge.status != "pending":
        return recharge
    recharge.status = "failed"
    if payment_intent_id:
        recharge.payment_intent_id = payment_intent_id
    _fail(
        session,
        account,
        recharge,
        reason=reason,
        decline_code=decline_code,
        message=message,
        fix_link_base=fix_link_base,
        now=now,
    )
    return recharge


def recharge_retry_later(
    session: Session,
    recharge_id: int,
    error: str,
    *,
    now: datetime | None = None,
) -> Recharge:
    """A Stripe API error: try again after a backoff under the same key, or fail the
    attempt with `api_error` once it has been tried MAX_TRIES times."""
    now = now or utcnow()
    recharge, _ = _locked_recharge(session, recharge_id)
    if recharge.status != "pending":
        return recharge
    if recharge.tries >= MAX_TRIES:
        return recharge_failed(session, recharge_id, reason="api_error", message=error, now=now)
    recharge.message = error[:2000]
    recharge.next_try_at = now + outbox.backoff(recharge.tries)
    session.flush()
    return recharge


def _fail(
    session: Session,
    account: Account,
    recharge: Recharge,
    *,
    reason: str,
    now: datetime,
    decline_code: str | None = None,
    message: str | None = None,
    fix_link_base: str = "",
) -> None:
    """Record a failed attempt and alert it. Its fix link (`fix_link_base` + the attempt's
    key) lets an admin add or replace the card; an API error has nothing to fix."""
    fix_url = None
    if fix_link_base and reason != "api_error":
        fix_url = f"{fix_link_base}{recharge.idempotency_key}"
    recharge.reason = reason
    recharge.decline_code = decline_code
    recharge.message = (message or "")[:2000] or None
    recharge.fix_url = fix_url
    recharge.finished_at = now
    recharge.next_try_at = None
    session.flush()
    outbox.add(
        session,
        account.id,
        Alert.RECHARGE_FAILED,
        {
            "recharge_id": recharge.id,
            "reason": reason,
            "decline_code": decline_code,
            "message": recharge.message,
            "fix_url": fix_url,
            "amount_minor": recharge.amount_minor,
            "currency": account.currency,
        },
        now=now,
        dedup_key=f"{Alert.RECHARGE_FAILED}:{recharge.id}",
    )
    recent = list_recharges(session, account.id, limit=FAILURES_TO_PAUSE)
    in_a_row = len(recent) == FAILURES_TO_PAUSE and all(
        r.status == "failed" and not r.paused_auto_recharge for r in recent
    )
    if in_a_row and not account.auto_recharge_paused:
        account.auto_recharge_paused = True
        recharge.paused_auto_recharge = True
        session.flush()
        outbox.add(
            session,
            account.id,
            Alert.AUTO_RECHARGE_PAUSED,
            {
                "recharge_id": recharge.id,
                "failures": FAILURES_TO_PAUSE,
                "reason": reason,
                "fix_url": fix_url,
            },
            now=now,
            dedup_key=f"{Alert.AUTO_RECHARGE_PAUSED}:{recharge.id}",
        )
