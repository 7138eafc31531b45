"""Top-ups: money received through Stripe and credited to the wallet, and Stripe refunds
taken back out of it (rule 8).

- A top-up amount is checked against the account's minimum and maximum.
- A payment is keyed on its Stripe PaymentIntent (or Checkout Session), and so is its
  wallet credit: however often Stripe reports it, it is credited once.
- A refund takes back what the wallet still holds, never more; the rest is recorded on the
  top-up and alerted.

Plain functions over a session; nothing here talks to Stripe (`bot.stripe` does).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger import outbox
from ledger.agents import waiting_list
from ledger.cycles import utcnow
from ledger.errors import IdempotencyConflict, InvalidInput, NotFound
from ledger.journal import lock_account
from ledger.models import Account
from ledger.models.payments import Topup
from ledger.outbox import Alert
from ledger.stripe_records import Payer, payer
from ledger.units import format_money, money_to_credits, parse_money
from ledger.wallet import credit_wallet, debit_wallet


def check_topup(account: Account, minor: int) -> int:
    """`minor` if it is a top-up amount the account allows, else a clear error (rule 8)."""
    low, high = account.topup_min_minor, account.topup_max_minor
    if minor < low:
        raise InvalidInput(f"The smallest top-up is {format_money(low, account.currency)}.")
    if minor > high:
        raise InvalidInput(f"The largest top-up is {format_money(high, account.currency)}.")
    return minor


def parse_topup(account: Account, text: str) -> int:
    """A typed top-up ('50', '$50', '50.00', '1,000') checked against the account's limits."""
    return check_topup(account, parse_money(text, account.currency))


@dataclass(frozen=True)
class CheckoutTopup:
    """A top-up waiting for its Checkout payment, with what the Checkout page needs; the
    page already made for it when a request with the same key opened it before."""

    id: int
    amount_minor: int
    payer: Payer
    checkout_url: str | None = None
    replayed: bool = False


@dataclass(frozen=True)
class PaymentResult:
    topup_id: int
    account_id: int
    amount_minor: int
    credited: int
    wallet_balance: int
    replayed: bool


@dataclass(frozen=True)
class RefundResult:
    topup_id: int
    account_id: int
    taken: int
    shortfall: int
    replayed: bool


def _new_topup(
    account: Account,
    amount_minor: int,
    *,
    source: str,
    requested_by: str | None,
    now: datetime,
    recharge_id: int | None = None,
) -> Topup:
    return Topup(
        account_id=account.id,
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


def open_checkout_topup(
    session: Session,
    account_id: int,
    amount_minor: int,
    *,
    requested_by: str | None = None,
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> CheckoutTopup:
    """Check the amount and open a top-up waiting for its Checkout payment (credited only
    when Stripe confirms it), in one transaction with the lookup of the Stripe customer.

    With `idempotency_key` (the admin API's), a second request with the same key answers
    the top-up the first opened; the same key for another amount is a conflict."""
    account = lock_account(session, account_id)
    if idempotency_key is not None:
        done = topup_with_key(session, account_id, idempotency_key, amount_minor)
        if done is not None:
            return CheckoutTopup(
                done.id, done.amount_minor, payer(session, account), done.checkout_url, True
            )
    check_topup(account, amount_minor)
    topup = _new_topup(
        account, amount_minor, source="checkout", requested_by=requested_by, now=now or utcnow()
    )
    topup.idempotency_key = idempotency_key
    session.add(topup)
    session.flush()
    return CheckoutTopup(topup.id, amount_minor, payer(session, account))


def topup_with_key(
    session: Session, account_id: int, idempotency_key: str, amount_minor: int
) -> Topup | None:
    """The top-up a request with this key made, if any; the key for another amount is an
    `IdempotencyConflict`."""
    topup = session.execute(
        select(Topup).where(
            Topup.account_id == account_id, Topup.idempotency_key == idempotency_key
        )
    ).scalar_one_or_none()
    if topup is not None and topup.amount_minor != amount_minor:
        raise IdempotencyConflict("That Idempotency-Key was used for a top-up of another amount.")
    return topup


def attach_checkout_session(
    session: Session, topup_id: int, checkout_session_id: str, checkout_url: str | None = None
) -> None:
    topup = session.get(Topup, topup_id)
    if topup is None:
        raise NotFound(f"No top-up {topup_id}.")
    topup.checkout_session_id = checkout_session_id
    topup.checkout_url = checkout_url or topup.checkout_url
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
    idempotency_key: str | None = None,
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
        topup = _new_topup(
            account,
            amount_minor,
            source=source,
            requested_by=requested_by,
            now=now,
            recharge_id=recharge_id,
        )
        session.add(topup)
    if payment_intent_id and not topup.payment_intent_id:
        topup.payment_intent_id = payment_intent_id
    if checkout_session_id and not topup.checkout_session_id:
        topup.checkout_session_id = checkout_session_id
    if idempotency_key and not topup.idempotency_key:
        topup.idempotency_key = idempotency_key
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
                # Stop agents the top-up cannot serve unless switched to Use balance.
                "waiting_agents": waiting_list(session, account_id),
            },
            now=now,
            dedup_key=f"{Alert.TOPUP_RECEIVED}:{topup.id}",
        )
    return PaymentResult(
        topup.id, account_id, amount_minor, change.amount, change.wallet_balance, change.replayed
    )


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
