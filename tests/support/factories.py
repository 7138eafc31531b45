"""Small helpers to set up the customer document's story in tests."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from ledger.accounts import AccountSettings, BalanceView, balance, create_account
from ledger.agents import add_agent
from ledger.charges import Charge, charge
from ledger.db import transaction
from ledger.models import Account
from ledger.stripe_records import save_card
from ledger.units import credits
from ledger.wallet import credit_wallet

NOW = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)


def story(
    sessions: sessionmaker[Session],
    *,
    plan: int = 1000,
    wallet: int = 500,
    now: datetime = NOW,
    timezone: str = "UTC",
    cycle_day: int = 1,
    per_second: bool = False,
    team: str | None = "T0001",
) -> dict[str, int]:
    """Plan of `plan` credits, agent A set to stop, agent B to use_balance, wallet `wallet`.
    Returns the ids: account, a, b."""

    def work(s: Session) -> dict[str, int]:
        account = create_account(
            s,
            AccountSettings(
                name="Acme",
                slack_team_id=team,
                timezone=timezone,
                plan_credits=credits(plan),
                cycle_anchor_day=cycle_day,
                per_second_billing=per_second,
            ),
            now=now,
        )
        a = add_agent(s, account.id, "A", behaviour="stop", now=now)
        b = add_agent(s, account.id, "B", behaviour="use_balance", now=now)
        if wallet:
            credit_wallet(
                s, account.id, credits(wallet), key="seed-wallet", kind="adjustment", now=now
            )
        return {"account": account.id, "a": a.id, "b": b.id}

    return transaction(sessions, work)


def minute(
    sessions: sessionmaker[Session], ids: dict[str, int], agent: str, key: str, now: datetime = NOW
) -> Charge:
    """Charge one call minute to agent "a" or "b" of the story, in its own transaction."""
    return transaction(
        sessions,
        lambda s: charge(
            s, ids["account"], ids[agent], "call_minute", 1, idempotency_key=key, now=now
        ),
    )


def view(sessions: sessionmaker[Session], ids: dict[str, int], now: datetime = NOW) -> BalanceView:
    return transaction(sessions, lambda s: balance(s, ids["account"], now=now))


def auto_recharge_without_card(
    sessions: sessionmaker[Session],
    account_id: int,
    *,
    threshold_minor: int = 1000,
    amount_minor: int = 2000,
    cap_minor: int | None = 50000,
) -> None:
    """Auto-recharge on with no saved card, as an account saved it before turning it on
    needed a card: what rule 9's `missing_payment_method` failure is for. (Saving the
    settings now refuses this, so the columns are written directly.)"""
    transaction(
        sessions,
        lambda s: turn_on_without_card(
            s, account_id, threshold_minor=threshold_minor, amount_minor=amount_minor,
            cap_minor=cap_minor,
        ),
    )  # fmt: skip


def turn_on_without_card(
    session: Session,
    account_id: int,
    *,
    threshold_minor: int,
    amount_minor: int,
    cap_minor: int | None = None,
) -> None:
    """`auto_recharge_without_card` in the caller's transaction (a cap of None keeps it)."""
    account = session.get(Account, account_id)
    account.auto_recharge_enabled = True
    account.auto_recharge_threshold_minor = threshold_minor
    account.auto_recharge_amount_minor = amount_minor
    if cap_minor is not None:
        account.auto_recharge_monthly_cap_minor = cap_minor


def card_saved(sessions: sessionmaker[Session], account_id: int) -> None:
    """What Stripe's card setup page records once a card is saved (no Stripe call)."""
    transaction(
        sessions,
        lambda s: save_card(
            s, account_id, customer_id=f"cus_{account_id}", payment_method_id="pm_1",
            brand="visa", last4="4242",
        ),
    )  # fmt: skip
