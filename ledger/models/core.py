"""The ledger's own tables: accounts, agents, the journal (entries and transfers), calls,
and the outbox that carries side effects out of the ledger."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from ledger.models.base import Base, BigId, UTCDateTime

#: Books of one customer account. Plan and wallet hold credits the account can spend;
#: the others are where credits come from and go to, so every transfer balances.
BOOKS = ("plan", "wallet", "grants", "expired", "topups", "usage", "adjustments")
STOP_REASONS = ("plan_exhausted", "wallet_empty", "monthly_limit", "account_budget")
BEHAVIOURS = ("stop", "use_balance")
ENTRY_KINDS = ("renewal", "topup", "usage", "refund", "adjustment")
#: Auto-recharge: add a fixed amount, or top the wallet back up to a target balance.
RECHARGE_MODES = ("add", "target")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Account(Base):
    """One customer team, linked to one Slack workspace."""

    __tablename__ = "accounts"
    __table_args__ = (
        CheckConstraint("plan_balance >= 0", name="plan_not_negative"),
        CheckConstraint("wallet_balance >= 0", name="wallet_not_negative"),
        CheckConstraint("cycle_anchor_day BETWEEN 1 AND 31", name="anchor_day"),
        CheckConstraint("plan_credits_per_cycle >= 0", name="plan_credits"),
        CheckConstraint("call_minute_rate > 0 AND message_rate > 0", name="rates_positive"),
        CheckConstraint("credits_per_unit > 0", name="credit_price"),
        CheckConstraint("topup_min_minor > 0 AND topup_max_minor >= topup_min_minor", name="topup"),
        CheckConstraint("plan_low_percent BETWEEN 0 AND 100", name="plan_low_percent"),
        CheckConstraint("monthly_budget IS NULL OR monthly_budget > 0", name="monthly_budget"),
        CheckConstraint("account_month_spend >= 0", name="account_month_spend"),
        CheckConstraint(_in("auto_recharge_mode", RECHARGE_MODES), name="auto_recharge_mode"),
        CheckConstraint("auto_recharge_target_minor >= 0", name="auto_recharge_target"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    slack_team_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # Rates and the plan, in milli-credits.
    plan_credits_per_cycle: Mapped[int] = mapped_column(BigInteger)
    cycle_anchor_day: Mapped[int] = mapped_column(Integer)
    call_minute_rate: Mapped[int] = mapped_column(BigInteger, default=10_000)
    message_rate: Mapped[int] = mapped_column(BigInteger, default=1_000)
    per_second_billing: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Credits bought by 1.00 of the account's currency.
    credits_per_unit: Mapped[int] = mapped_column(Integer, default=100)
    topup_min_minor: Mapped[int] = mapped_column(BigInteger, default=1_000)
    topup_max_minor: Mapped[int] = mapped_column(BigInteger, default=100_000)
    # The current cycle. Balances are caches of the journal: `ledger verify` checks them.
    cycle_start: Mapped[date | None] = mapped_column(Date)
    next_renewal_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    plan_grant: Mapped[int] = mapped_column(BigInteger, default=0)
    plan_balance: Mapped[int] = mapped_column(BigInteger, default=0)
    wallet_balance: Mapped[int] = mapped_column(BigInteger, default=0)
    # Alert settings and state. Each kind has its levels (ledger/alert_levels.py), kept as
    # comma-separated integers so the charge's locked read takes them as they are.
    #: Plan-low levels, % of the cycle's grant left ('50,20,5'); '' for none.
    plan_alert_levels: Mapped[str] = mapped_column(String(100), default="20")
    #: Wallet-low levels, milli-credits left.
    wallet_alert_levels: Mapped[str] = mapped_column(String(200), default="1000000")
    #: Agent monthly-limit levels and account budget levels, % of the limit or budget spent.
    limit_alert_levels: Mapped[str] = mapped_column(String(100), default="80,100")
    budget_alert_levels: Mapped[str] = mapped_column(String(100), default="80,100")
    #: The highest plan and wallet levels, as readers of one threshold know them.
    plan_low_percent: Mapped[int] = mapped_column(Integer, default=20)
    wallet_low_credits: Mapped[int] = mapped_column(BigInteger, default=1_000_000)
    plan_exhausted_alerted: Mapped[bool] = mapped_column(Boolean, default=False)
    #: A low alert fired and the balance was not lifted back since: the next lift above
    #: every level says "recovered" (and clears it).
    plan_low_alerted: Mapped[bool] = mapped_column(Boolean, default=False)
    wallet_low_alerted: Mapped[bool] = mapped_column(Boolean, default=False)
    alert_channel_id: Mapped[str | None] = mapped_column(String(32))
    #: Slack user ids named as billing admins, besides workspace admins and owners.
    billing_admins: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Auto-recharge settings (money in minor units) and its state.
    auto_recharge_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    auto_recharge_threshold_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    auto_recharge_amount_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    auto_recharge_monthly_cap_minor: Mapped[int] = mapped_column(BigInteger, default=50_000)
    auto_recharge_paused: Mapped[bool] = mapped_column(Boolean, default=False)
    #: 'add' the amount, or top the wallet back up to 'target' (its worth in money).
    auto_recharge_mode: Mapped[str] = mapped_column(String(8), default="add")
    auto_recharge_target_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Set when a charge asked for a recharge and cleared when that request is handled,
    #: so a burst of charges under the threshold asks once.
    recharge_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Milli-credits all agents together may spend in a calendar month, or no budget.
    monthly_budget: Mapped[int | None] = mapped_column(BigInteger)
    #: The month `account_month_spend` counts ('2026-11'), like an agent's `month`: what
    #: every agent spent in it, from both sources, kept by the journal with each charge.
    account_month: Mapped[str] = mapped_column(String(7), default="")
    account_month_spend: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Agent(Base):
    """One AI agent of an account."""

    __tablename__ = "agents"
    __table_args__ = (
        UniqueConstraint("account_id", "name", name="uq_agents_account_name"),
        CheckConstraint(_in("status", ("active", "stopped")), name="status"),
        CheckConstraint(_in("behaviour", BEHAVIOURS), name="behaviour"),
        CheckConstraint(
            "(status = 'active' AND stop_reason IS NULL) OR "
            f"(status = 'stopped' AND {_in('stop_reason', STOP_REASONS)})",
            name="stop_reason",
        ),
        CheckConstraint("monthly_limit IS NULL OR monthly_limit > 0", name="monthly_limit"),
        CheckConstraint("month_spend >= 0", name="month_spend"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default="active")
    stop_reason: Mapped[str | None] = mapped_column(String(32))
    behaviour: Mapped[str] = mapped_column(String(16), default="stop")
    #: Milli-credits per calendar month (account time zone), or no limit.
    monthly_limit: Mapped[int | None] = mapped_column(BigInteger)
    #: The month `month_spend` counts ('2026-11'); a new month starts it at zero.
    month: Mapped[str] = mapped_column(String(7))
    month_spend: Mapped[int] = mapped_column(BigInteger, default=0)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Entry(Base):
    """One journal entry: a change of balances made of transfers, or a refused charge.

    Immutable. Corrections are new entries. The idempotency key is unique per account, so a
    replayed request finds its entry instead of making another.
    """

    __tablename__ = "entries"
    __table_args__ = (
        UniqueConstraint("account_id", "idempotency_key", name="uq_entries_account_key"),
        CheckConstraint(_in("kind", ENTRY_KINDS), name="kind"),
        CheckConstraint(
            f"refused_reason IS NULL OR {_in('refused_reason', STOP_REASONS)}", name="refused"
        ),
        Index("ix_entries_account_created", "account_id", "id"),
        # A call's minutes and a charge's refunds are looked up by these; partial, so the
        # many entries that are neither cost nothing to index.
        Index(
            "ix_entries_call",
            "call_id",
            sqlite_where=text("call_id IS NOT NULL"),
            postgresql_where=text("call_id IS NOT NULL"),
        ),
        Index(
            "ix_entries_refund_of",
            "refund_of",
            sqlite_where=text("refund_of IS NOT NULL"),
            postgresql_where=text("refund_of IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    kind: Mapped[str] = mapped_column(String(16))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    #: Fingerprint of the request that used the key; the same key with another body is refused.
    request_hash: Mapped[str | None] = mapped_column(String(64))
    #: For usage: 'message' or 'call_minute' and how many; `amount` is their price.
    unit: Mapped[str | None] = mapped_column(String(16))
    quantity: Mapped[int | None] = mapped_column(Integer)
    amount: Mapped[int] = mapped_column(BigInteger, default=0)
    refused_reason: Mapped[str | None] = mapped_column(String(32))
    call_id: Mapped[str | None] = mapped_column(ForeignKey("calls.id"))
    refund_of: Mapped[int | None] = mapped_column(ForeignKey("entries.id"))
    memo: Mapped[str | None] = mapped_column(Text)
    #: The request (HTTP, scheduler run, command) that wrote it: ledger/tracing.py.
    request_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Transfer(Base):
    """`amount` milli-credits moved from one book to another of the same account.

    Each row is balanced by construction (one debit, one credit, same amount), so no entry
    can be unbalanced; the database refuses zero, negative and self transfers.
    """

    __tablename__ = "transfers"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("debit_book <> credit_book", name="two_books"),
        CheckConstraint(_in("debit_book", BOOKS), name="debit_book"),
        CheckConstraint(_in("credit_book", BOOKS), name="credit_book"),
        Index("ix_transfers_account", "account_id"),
        Index("ix_transfers_entry", "entry_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("entries.id"))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    debit_book: Mapped[str] = mapped_column(String(16))
    credit_book: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(BigInteger)


class Call(Base):
    """A voice call, charged a minute at a time as each minute starts."""

    __tablename__ = "calls"
    __table_args__ = (
        CheckConstraint(_in("status", ("active", "ended", "cut")), name="status"),
        CheckConstraint("minutes_charged >= 0", name="minutes"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id"))
    status: Mapped[str] = mapped_column(String(8), default="active")
    minutes_charged: Mapped[int] = mapped_column(Integer, default=0)
    #: Price of a minute and the billing mode when the call started: changes apply to new calls.
    minute_rate: Mapped[int] = mapped_column(BigInteger)
    per_second: Mapped[bool] = mapped_column(Boolean)
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    refunded: Mapped[int] = mapped_column(BigInteger, default=0)
    stop_reason: Mapped[str | None] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OutboxMessage(Base):
    """A side effect (an alert to Slack, a recharge to Stripe) written in the same
    transaction as the change that caused it, and delivered later with retries."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "delivered_at", "available_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    kind: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: Optional key that makes writing the same message twice impossible.
    dedup_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    #: The request (HTTP, scheduler run, command) that wrote it: ledger/tracing.py.
    request_id: Mapped[str | None] = mapped_column(String(128))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    available_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
