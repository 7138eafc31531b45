"""Money in: top-ups, saved cards, auto-recharge attempts, refunds and Stripe events.

Plain functions over a session, like the rest of the ledger; nothing here talks to Stripe.
`bot.stripe_gateway` makes the Stripe calls between these transactions and reports what
Stripe said. The rules they keep:

- a payment is keyed on its Stripe PaymentIntent (or Checkout Session), and the wallet
  credit on the same key, so however often it is reported it is credited once;
- each Stripe event id is processed once;
- at most one pending recharge per account (the database enforces it), each with its own
  idempotency key, never beyond the monthly cap, three failures in a row pause
  auto-recharge; every attempt and its outcome is recorded and alerted.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ledger import outbox
from ledger.cycles import local_date, local_midnight, utcnow
from ledger.errors import InvalidInput, NotFound
from ledger.journal import lock_account
from ledger.models import Account
from ledger.models.payments import Recharge, StripeCustomer, StripeEvent, Topup
from ledger.outbox import Alert
from ledger.units import money_to_credits
from ledger.wallet import credit_wallet, debit_wallet

#: A worker that claimed a recharge has this long to report before another may retry it.
LEASE = timedelta(minutes=2)
#: Stripe calls for one attempt that failed with an API error before it counts as failed.
MAX_TRIES = 4
#: After a failed attempt, automatic triggers wait this long before trying again.
RETRY_AFTER_FAILURE = timedelta(minutes=10)
#: Failures in a row that pause auto-recharge.
FAILURES_TO_PAUSE = 3


# --- Stripe customer and saved card ---------------------------------------------------


def stripe_customer(session: Session, account_id: int) -> StripeCustomer | None:
    return session.get(StripeCustomer, account_id)


def save_customer(
    session: Session, account_id: int, customer_id: str, *, now: datetime | None = None
) -> StripeCustomer:
    """Remember the account's Stripe customer (the first one saved wins a race)."""
    lock_account(session, account_id)
    row = session.get(StripeCustomer, account_id)
    if row is None:
        row = StripeCustomer(
            account_id=account_id, customer_id=customer_id, created_at=now or utcnow()
        )
        session.add(row)
        session.flush()
    return row


def save_card(
    session: Session,
    account_id: int,
    *,
    customer_id: str,
    payment_method_id: str,
    brand: str | None,
    last4: str | None,
    now: datetime | None = None,
) -> StripeCustomer:
    """The card future off-session payments use (it replaces any earlier one)."""
    now = now or utcnow()
    row = save_customer(session, account_id, customer_id, now=now)
    if row.customer_id != customer_id:
        raise InvalidInput("That card belongs to another Stripe customer.")
    row.payment_method_id = payment_method_id
    row.card_brand = (brand or "card")[:32]
    row.card_last4 = (last4 or "")[-4:] or None
    row.card_saved_at = now
    session.flush()
    return row


# --- Stripe events ----------------------------------------------------------------------


def event_processed(session: Session, event_id: str) -> bool:
    return session.get(StripeEvent, event_id) is not None


def mark_event(
    session: Session, event_id: str, event_type: str, *, now: datetime | None = None
) -> bool:
    """Record `event_id` as processed in the caller's transaction. False when it already
    was (a concurrent duplicate loses on the primary key and its transaction is retried)."""
    if event_processed(session, event_id):
        return False
    session.add(StripeEvent(id=event_id, type=event_type[:100], processed_at=now or utcnow()))
    session.flush()
    return True


# --- top-ups ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PaymentResult:
    topup_id: int
    account_id: int
    amount_minor: int
    credited: int
    wallet_balance: int
    replayed: bool


def open_checkout_topup(
    session: Session,
    account_id: int,
    amount_minor: int,
    *,
    requested_by: str | None = None,
    now: datetime | None = None,
) -> Topup:
    """A top-up waiting for its Checkout payment (credited only when Stripe confirms it)."""
    account = lock_account(session, account_id)
    topup = Topup(
        account_id=account_id,
        source="checkout",
        status="open",
        amount_minor=amount_minor,
        currency=account.currency,
        credited=0,
        refunded_minor=0,
        refund_shortfall=0,
        requested_by=requested_by,
        created_at=now or utcnow(),
    )
    session.add(topup)
    session.flush()
    return topup


def attach_checkout_session(session: Session, topup_id: int, checkout_session_id: str) -> None:
    topup = session.get(Topup, topup_id)
    if topup is None:
        raise NotFound(f"No top-up {topup_id}.")
    topup.checkout_session_id = checkout_session_id
    session.flush()


def _find_topup(
    session: Session,
    account_id: int,
    payment_intent_id: str | None,
    topup_id: int | None,
    checkout_session_id: str | None,
) -> Topup | None:
    for column, value in (
        (Topup.payment_intent_id, payment_intent_id),
        (Topup.id, topup_id),
        (Topup.checkout_session_id, checkout_session_id),
    ):
        if value is None:
            continue
        topup = session.execute(
            select(Topup).where(column == value, Topup.account_id == account_id)
        ).scalar_one_or_none()
        if topup is not None:
            return topup
    return None


def record_payment(
    session: Session,
    account_id: int,
    *,
    amount_minor: int,
    currency: str,
    payment_intent_id: str | None = None,
    checkout_session_id: str | None = None,
    topup_id: int | None = None,
    source: str = "checkout",
    recharge_id: int | None = None,
    requested_by: str | None = None,
    now: datetime | None = None,
) -> PaymentResult:
    """A payment Stripe confirmed: credit the wallet once and say so.

    Keyed on the PaymentIntent (else the Checkout Session): the webhook, the direct answer
    of an off-session charge and reconciliation all land here, and only the first credits.
    """
    if not payment_intent_id and not checkout_session_id:
        raise InvalidInput("A payment needs its Stripe PaymentIntent or Checkout Session.")
    now = now or utcnow()
    account = lock_account(session, account_id)
    if currency.upper() != account.currency.upper():
        raise InvalidInput(
            f"A payment in {currency.upper()} cannot fund a wallet kept in {account.currency}."
        )
    topup = _find_topup(session, account_id, payment_intent_id, topup_id, checkout_session_id)
    if topup is None:
        topup = Topup(
            account_id=account_id,
            source=source,
            status="open",
            amount_minor=amount_minor,
            currency=account.currency,
            credited=0,
            refunded_minor=0,
            refund_shortfall=0,
            requested_by=requested_by,
            recharge_id=recharge_id,
            created_at=now,
        )
        session.add(topup)
    if payment_intent_id and not topup.payment_intent_id:
        topup.payment_intent_id = payment_intent_id
    if checkout_session_id and not topup.checkout_session_id:
        topup.checkout_session_id = checkout_session_id
    session.flush()
    if topup.status == "paid":
        return PaymentResult(
            topup.id, account_id, topup.amount_minor, topup.credited, account.wallet_balance, True
        )
    amount = money_to_credits(amount_minor, account.currency, account.credits_per_unit)
    key = f"stripe:{topup.payment_intent_id or topup.checkout_session_id}"
    change = credit_wallet(
        session,
        account_id,
        amount,
        key=key,
        kind="topup",
        memo=f"Stripe {source} payment {topup.payment_intent_id or topup.checkout_session_id}",
        now=now,
    )
    topup.status = "paid"
    topup.amount_minor = amount_minor
    topup.credited = change.amount
    topup.paid_at = now
    session.flush()
    if source != "auto_recharge" and not change.replayed:
        outbox.add(
            session,
            account_id,
            Alert.TOPUP_RECEIVED,
            {
                "topup_id": topup.id,
                "source": source,
                "amount_minor": amount_minor,
                "currency": account.currency,
                "credits": change.amount,
                "wallet_balance": change.wallet_balance,
                "requested_by": topup.requested_by,
            },
            now=now,
            dedup_key=f"{Alert.TOPUP_RECEIVED}:{topup.id}",
        )
    return PaymentResult(
        topup.id, account_id, amount_minor, change.amount, change.wallet_balance, change.replayed
    )


@dataclass(frozen=True)
class RefundResult:
    topup_id: int
    account_id: int
    taken: int
    shortfall: int
    replayed: bool


def payment_recorded(
    session: Session,
    *,
    payment_intent_id: str | None = None,
    checkout_session_id: str | None = None,
) -> bool:
    """Whether this Stripe payment has already been credited."""
    for column, value in (
        (Topup.payment_intent_id, payment_intent_id),
        (Topup.checkout_session_id, checkout_session_id),
    ):
        if value is not None:
            status = session.execute(select(Topup.status).where(column == value)).scalar()
            if status == "paid":
                return True
    return False


def payment_account(session: Session, payment_intent_id: str) -> int | None:
    """The account a credited Stripe payment belongs to."""
    return session.execute(
        select(Topup.account_id).where(Topup.payment_intent_id == payment_intent_id)
    ).scalar_one_or_none()


def record_refund(
    session: Session,
    *,
    payment_intent_id: str,
    charge_id: str,
    amount_refunded_minor: int,
    now: datetime | None = None,
) -> RefundResult | None:
    """Stripe refunded (part of) a payment: take its credits back out of the wallet.

    `amount_refunded_minor` is Stripe's running total, so each refund is taken once. What
    the wallet no longer holds is recorded on the top-up and alerted; never negative.
    Returns None for a payment creditbot never credited.
    """
    now = now or utcnow()
    account_id = payment_account(session, payment_intent_id)
    if account_id is None:
        return None
    account = lock_account(session, account_id)
    topup = session.execute(
        select(Topup).where(Topup.payment_intent_id == payment_intent_id)
    ).scalar_one()
    total = min(amount_refunded_minor, topup.amount_minor)
    if topup.status != "paid" or total <= topup.refunded_minor:
        return RefundResult(topup.id, account_id, 0, 0, True)
    price = account.currency, account.credits_per_unit
    amount = min(topup.credited, money_to_credits(total, *price)) - min(
        topup.credited, money_to_credits(topup.refunded_minor, *price)
    )
    taken = shortfall = 0
    if amount > 0:
        change = debit_wallet(
            session,
            account_id,
            amount,
            key=f"stripe-refund:{charge_id}:{total}",
            kind="topup",
            memo=f"Stripe refund of {payment_intent_id}",
            partial=True,
            now=now,
        )
        taken, shortfall = change.amount, change.shortfall
    topup.refunded_minor = total
    topup.refund_shortfall += shortfall
    session.flush()
    if shortfall:
        outbox.add(
            session,
            account_id,
            Alert.REFUND_SHORTFALL,
            {
                "topup_id": topup.id,
                "payment_intent_id": payment_intent_id,
                "refunded_minor": total,
                "currency": account.currency,
                "taken": taken,
                "shortfall": shortfall,
                "wallet_balance": account.wallet_balance,
            },
            now=now,
            dedup_key=f"{Alert.REFUND_SHORTFALL}:{charge_id}:{total}",
        )
    return RefundResult(topup.id, account_id, taken, shortfall, False)


def list_topups(session: Session, account_id: int, *, limit: int = 50) -> list[Topup]:
    return list(
        session.execute(
            select(Topup)
            .where(Topup.account_id == account_id)
            .order_by(Topup.id.desc())
            .limit(limit)
        ).scalars()
    )


# --- auto-recharge --------------------------------------------------------------------


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


def month_start(account: Account, now: datetime) -> datetime:
    day = local_date(now, account.timezone)
    return local_midnight(day.replace(day=1), account.timezone)


def month_recharged(session: Session, account: Account, now: datetime) -> int:
    """Money auto-recharged this calendar month (account time zone), counting the
    attempt in flight: what the monthly cap is checked against."""
    return session.execute(
        select(func.coalesce(func.sum(Recharge.amount_minor), 0)).where(
            Recharge.account_id == account.id,
            Recharge.status.in_(("pending", "succeeded")),
            Recharge.created_at >= month_start(account, now),
        )
    ).scalar_one()


def pending_recharge(session: Session, account_id: int) -> Recharge | None:
    return session.execute(
        select(Recharge).where(Recharge.account_id == account_id, Recharge.status == "pending")
    ).scalar_one_or_none()


def last_recharge(session: Session, account_id: int) -> Recharge | None:
    """The latest attempt (what `/balance` shows)."""
    return session.execute(
        select(Recharge)
        .where(Recharge.account_id == account_id)
        .order_by(Recharge.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def list_recharges(session: Session, account_id: int, *, limit: int = 50) -> list[Recharge]:
    return list(
        session.execute(
            select(Recharge)
            .where(Recharge.account_id == account_id)
            .order_by(Recharge.id.desc())
            .limit(limit)
        ).scalars()
    )


def get_recharge(session: Session, ref: int | str) -> Recharge:
    """An attempt by id or by its idempotency key."""
    column = Recharge.id if isinstance(ref, int) else Recharge.idempotency_key
    recharge = session.execute(select(Recharge).where(column == ref)).scalar_one_or_none()
    if recharge is None:
        raise NotFound(f"No recharge attempt {ref}.")
    return recharge


def under_threshold(account: Account) -> bool:
    threshold = money_to_credits(
        account.auto_recharge_threshold_minor, account.currency, account.credits_per_unit
    )
    return account.wallet_balance < threshold


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
        last is not None
        and last.status == "failed"
        and last.finished_at is not None
        and now - last.finished_at < RETRY_AFTER_FAILURE
    ):
        return RechargeRequest(skipped="the last attempt failed moments ago")
    amount = account.auto_recharge_amount_minor
    cap = account.auto_recharge_monthly_cap_minor
    if month_recharged(session, account, now) + amount > cap:
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
    key = f"recharge-{uuid.uuid4().hex}"
    recharge = Recharge(
        account_id=account_id,
        idempotency_key=key,
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
            fix_url=f"{fix_link_base}{key}" if fix_link_base else None,
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


def accounts_needing_recharge(session: Session) -> list[int]:
    """Accounts with auto-recharge on, not paused, under the threshold, none in flight."""
    accounts = session.execute(
        select(Account).where(
            Account.auto_recharge_enabled.is_(True), Account.auto_recharge_paused.is_(False)
        )
    ).scalars()
    busy = set(
        session.execute(select(Recharge.account_id).where(Recharge.status == "pending")).scalars()
    )
    return [a.id for a in accounts if under_threshold(a) and a.id not in busy]


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
    fix_url: str | None = None,
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
        fix_url=fix_url,
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
    fix_url: str | None = None,
) -> None:
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
    recent = list(
        session.execute(
            select(Recharge)
            .where(Recharge.account_id == account.id)
            .order_by(Recharge.id.desc())
            .limit(FAILURES_TO_PAUSE)
        ).scalars()
    )
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
