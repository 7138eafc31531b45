"""Account settings a billing admin changes: auto-recharge, alert channel, billing admins,
and the top-up amounts they may choose."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from ledger.errors import InvalidInput
from ledger.journal import lock_account
from ledger.models import Account
from ledger.units import format_money, parse_money


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
    account.auto_recharge_enabled = enabled
    account.auto_recharge_threshold_minor = threshold_minor
    account.auto_recharge_amount_minor = amount_minor
    account.auto_recharge_monthly_cap_minor = cap
    if enabled:
        account.auto_recharge_paused = False
    session.flush()
    return auto_recharge(account)


class FieldError(InvalidInput):
    """Bad input in one named field of a form."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def set_alert_channel(session: Session, account_id: int, channel_id: str | None) -> None:
    account = lock_account(session, account_id)
    account.alert_channel_id = channel_id or None


def set_billing_admins(session: Session, account_id: int, user_ids: list[str]) -> None:
    """The Slack users (besides workspace admins and owners) who may top up and change settings."""
    account = lock_account(session, account_id)
    account.billing_admins = sorted({u.strip() for u in user_ids if u.strip()})
