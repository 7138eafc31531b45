"""The auto-recharge rule of an account (rule 9): the settings a billing admin saves (on or
off, threshold, amount, monthly cap), when a wallet needs a recharge, and how much the
month's cap still allows. The attempts it starts are `ledger.recharges`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ledger.cycles import local_date, local_midnight
from ledger.errors import FieldError, NoSavedCard
from ledger.journal import lock_account
from ledger.models import Account
from ledger.models.payments import Recharge
from ledger.stripe_records import has_saved_card
from ledger.units import format_money, money_to_credits


@dataclass(frozen=True)
class AutoRecharge:
    enabled: bool
    threshold_minor: int
    amount_minor: int
    monthly_cap_minor: int
    paused: bool


def auto_recharge(account: Account) -> AutoRecharge:
    return AutoRecharge(
        enabled=account.auto_recharge_enabled,
        threshold_minor=account.auto_recharge_threshold_minor,
        amount_minor=account.auto_recharge_amount_minor,
        monthly_cap_minor=account.auto_recharge_monthly_cap_minor,
        paused=account.auto_recharge_paused,
    )


def update_auto_recharge(
    session: Session,
    account_id: int,
    *,
    enabled: bool,
    threshold_minor: int,
    amount_minor: int,
    monthly_cap_minor: int | None = None,
    now: datetime | None = None,
) -> AutoRecharge:
    """Save auto-recharge settings (money in minor units). Saving them on again un-pauses it.
    Turning it on needs a saved card (`NoSavedCard`): without one every attempt would fail.

    Errors name the field they concern in `InvalidInput.field` so a modal can show them
    beside it.
    """
    del now  # settings are state, not journal entries; kept for a uniform signature
    account = lock_account(session, account_id)
    cap = (
        account.auto_recharge_monthly_cap_minor if monthly_cap_minor is None else monthly_cap_minor
    )
    money = account.currency
    if threshold_minor < 0:
        raise FieldError("threshold", "The threshold cannot be negative.")
    if enabled and threshold_minor == 0:
        raise FieldError("threshold", "Set a threshold above zero to turn auto-recharge on.")
    if amount_minor < 0 or (enabled and amount_minor == 0):
        raise FieldError("amount", "Set a recharge amount above zero.")
    if enabled:
        check = account.topup_min_minor, account.topup_max_minor
        if not check[0] <= amount_minor <= check[1]:
            raise FieldError(
                "amount",
                f"A recharge is between {format_money(check[0], money)} and {format_money(check[1], money)}.",
            )
    if cap <= 0 or (enabled and cap < amount_minor):
        raise FieldError(
            "monthly_cap",
            f"The monthly cap must be at least the recharge amount ({format_money(amount_minor, money)}).",
        )
    if enabled and not has_saved_card(session, account_id):
        raise NoSavedCard()
    account.auto_recharge_enabled = enabled
    account.auto_recharge_threshold_minor = threshold_minor
    account.auto_recharge_amount_minor = amount_minor
    account.auto_recharge_monthly_cap_minor = cap
    if enabled:
        account.auto_recharge_paused = False
    session.flush()
    return auto_recharge(account)


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


def under_threshold(account: Account) -> bool:
    threshold = money_to_credits(
        account.auto_recharge_threshold_minor, account.currency, account.credits_per_unit
    )
    return account.wallet_balance < threshold


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
