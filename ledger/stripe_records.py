"""What creditbot keeps of Stripe: each account's Stripe customer and saved card, and the
ids of Stripe events already processed (each is acted on once).

Plain functions over a session; nothing here talks to Stripe (`bot.stripe` does).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from ledger.cycles import utcnow
from ledger.errors import InvalidInput
from ledger.journal import lock_account
from ledger.models import Account
from ledger.models.payments import StripeCustomer, StripeEvent


@dataclass(frozen=True)
class Payer:
    """Who pays through Stripe: the account, as Stripe needs it, and its Stripe customer
    (None until the first payment or card creates one)."""

    account_id: int
    name: str
    currency: str
    customer_id: str | None


def stripe_customer(session: Session, account_id: int) -> StripeCustomer | None:
    return session.get(StripeCustomer, account_id)


def has_saved_card(session: Session, account_id: int) -> bool:
    """Whether the account has a card that off-session charges can use."""
    customer = stripe_customer(session, account_id)
    return customer is not None and bool(customer.payment_method_id)


def payer(session: Session, account: Account) -> Payer:
    """The account's name, currency and Stripe customer, read together for a Stripe call."""
    customer = stripe_customer(session, account.id)
    return Payer(
        account.id, account.name, account.currency, customer.customer_id if customer else None
    )


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
