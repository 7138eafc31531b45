"""Tables for the payments part of creditbot: the Stripe customer and saved card of each
account, top-ups keyed on their Stripe payment, Stripe events already processed, and
auto-recharge attempts. Models here are picked up by Alembic autogenerate through
`ledger.models`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from ledger.models.base import Base, UTCDateTime

RECHARGE_STATUSES = ("pending", "succeeded", "failed")
RECHARGE_REASONS = (
    "missing_payment_method",
    "card_declined",
    "authentication_required",
    "api_error",
)
TOPUP_SOURCES = ("checkout", "saved_card", "auto_recharge")
TOPUP_STATUSES = ("open", "paid", "expired")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class StripeCustomer(Base):
    """The Stripe customer of an account and the card saved for off-session payments."""

    __tablename__ = "stripe_customers"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(64), unique=True)
    payment_method_id: Mapped[str | None] = mapped_column(String(64))
    card_brand: Mapped[str | None] = mapped_column(String(32))
    card_last4: Mapped[str | None] = mapped_column(String(4))
    card_saved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Topup(Base):
    """Money received through Stripe, keyed on its payment (PaymentIntent, or Checkout
    Session before Stripe names the PaymentIntent). The wallet credit is keyed the same way,
    so however many times Stripe reports a payment, it is credited once."""

    __tablename__ = "topups"
    __table_args__ = (
        CheckConstraint(_in("source", TOPUP_SOURCES), name="source"),
        CheckConstraint(_in("status", TOPUP_STATUSES), name="status"),
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        CheckConstraint("refunded_minor >= 0 AND refund_shortfall >= 0", name="refunds"),
        Index("ix_topups_account", "account_id", "id"),
        UniqueConstraint("account_id", "idempotency_key", name="uq_topups_account_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    source: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    checkout_session_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    payment_intent_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    recharge_id: Mapped[int | None] = mapped_column(ForeignKey("recharges.id"))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    #: Milli-credits put in the wallet (set when paid).
    credited: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Money refunded so far (Stripe's cumulative `amount_refunded`).
    refunded_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Milli-credits a refund should have taken back but the wallet no longer held.
    refund_shortfall: Mapped[int] = mapped_column(BigInteger, default=0)
    requested_by: Mapped[str | None] = mapped_column(String(64))
    #: The Idempotency-Key of the admin API request that opened it, if one did: the same
    #: key answers this top-up again instead of opening another.
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    #: The Checkout page made for it (answered again to a repeated request).
    checkout_url: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class StripeEvent(Base):
    """A Stripe event already processed: each event id is acted on once."""

    __tablename__ = "stripe_events"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    processed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Recharge(Base):
    """One auto-recharge attempt: its own idempotency key (also Stripe's), its outcome.

    The partial unique index lets an account have at most one `pending` attempt: a second
    concurrent start fails in the database, whatever the application thought it saw.
    """

    __tablename__ = "recharges"
    __table_args__ = (
        CheckConstraint(_in("status", RECHARGE_STATUSES), name="status"),
        CheckConstraint(f"reason IS NULL OR {_in('reason', RECHARGE_REASONS)}", name="reason"),
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        Index(
            "uq_recharges_one_pending",
            "account_id",
            unique=True,
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_recharges_account", "account_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16))
    #: What started it: 'charge' (a charge left the wallet under the threshold) or 'sweep'.
    trigger: Mapped[str] = mapped_column(String(16))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    payment_intent_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    reason: Mapped[str | None] = mapped_column(String(40))
    decline_code: Mapped[str | None] = mapped_column(String(64))
    message: Mapped[str | None] = mapped_column(Text)
    fix_url: Mapped[str | None] = mapped_column(Text)
    #: Stripe calls made (an `api_error` is retried with backoff under the same key).
    tries: Mapped[int] = mapped_column(Integer, default=0)
    #: When a worker may (re)try the Stripe call; a claimed attempt is leased until then.
    next_try_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: This failure was the third in a row and paused auto-recharge.
    paused_auto_recharge: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
