"""The auto-recharge rule of an account (rule 9): the settings a billing admin saves (on or
off, threshold, mode, amount or target, monthly cap), when a wallet needs a recharge, how
much one charges at that moment, and how much the month's cap still allows. The attempts
it starts are `ledger.recharges`.

Two modes (docs/payments.md):

- **add**: add a fixed amount when the wallet drops below the threshold -- or more, when
  that amount could not lift the wallet back to the threshold: the charge is sized so one
  recharge closes the gap (issue 10 item 2: a smaller amount never would, and the card
  would be charged again and again until the monthly cap). Sized at the moment of the
  recharge, so settings saved before this rule are safe too;
- **target**: top the wallet back up to a target balance (above the threshold); what that
  costs is computed at the moment of the recharge, within the top-up minimum and maximum
  and what the monthly cap still allows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ledger import audit
from ledger.audit import Actor
from ledger.cycles import local_date, local_midnight, utcnow
from ledger.errors import FieldError, NoSavedCard, UnknownAccount
from ledger.journal import lock_account
from ledger.models import Account
from ledger.models.core import RECHARGE_MODES
from ledger.models.payments import Recharge
from ledger.stripe_records import has_saved_card
from ledger.units import MILLI, currency_exponent, format_money, money_to_credits


@dataclass(frozen=True)
class AutoRecharge:
    enabled: bool
    threshold_minor: int
    amount_minor: int
    monthly_cap_minor: int
    paused: bool
    mode: str = "add"
    target_minor: int = 0


def auto_recharge(account: Account) -> AutoRecharge:
    return AutoRecharge(
        enabled=account.auto_recharge_enabled,
        threshold_minor=account.auto_recharge_threshold_minor,
        amount_minor=account.auto_recharge_amount_minor,
        monthly_cap_minor=account.auto_recharge_monthly_cap_minor,
        paused=account.auto_recharge_paused,
        mode=account.auto_recharge_mode,
        target_minor=account.auto_recharge_target_minor,
    )


def _audited(a: AutoRecharge) -> dict[str, object]:
    return {
        "enabled": a.enabled,
        "mode": a.mode,
        "threshold_minor": a.threshold_minor,
        "amount_minor": a.amount_minor,
        "target_minor": a.target_minor,
        "monthly_cap_minor": a.monthly_cap_minor,
    }


def update_auto_recharge(
    session: Session,
    account_id: int,
    *,
    enabled: bool,
    threshold_minor: int,
    amount_minor: int,
    monthly_cap_minor: int | None = None,
    mode: str | None = None,
    target_minor: int | None = None,
    actor: Actor | None = None,
    now: datetime | None = None,
) -> AutoRecharge:
    """Save auto-recharge settings (money in minor units). Saving them on again un-pauses it.
    `mode` and `target_minor` left out keep theirs. Turning it on needs a saved card
    (`NoSavedCard`): without one every attempt would fail.

    Errors name the field they concern in `FieldError.field` so a modal can show them
    beside it.
    """
    account = lock_account(session, account_id)
    before = auto_recharge(account)
    mode = account.auto_recharge_mode if mode is None else mode
    target = account.auto_recharge_target_minor if target_minor is None else target_minor
    cap = (
        account.auto_recharge_monthly_cap_minor if monthly_cap_minor is None else monthly_cap_minor
    )
    money = account.currency
    if mode not in RECHARGE_MODES:
        raise FieldError("mode", f"{mode!r} is not a mode: choose 'add' or 'target'.")
    if threshold_minor < 0:
        raise FieldError("threshold", "The threshold cannot be negative.")
    if enabled and threshold_minor == 0:
        raise FieldError("threshold", "Set a threshold above zero to turn auto-recharge on.")
    check = account.topup_min_minor, account.topup_max_minor
    if mode == "add":
        if amount_minor < 0 or (enabled and amount_minor == 0):
            raise FieldError("amount", "Set a recharge amount above zero.")
        if enabled and not check[0] <= amount_minor <= check[1]:
            raise FieldError(
                "amount",
                f"A recharge is between {format_money(check[0], money)} and {format_money(check[1], money)}.",
            )
        least = amount_minor
    else:
        if target < 0 or amount_minor < 0:
            raise FieldError("target", "The balance to top up to cannot be negative.")
        if enabled and target <= threshold_minor:
            raise FieldError(
                "target",
                f"Top up to a balance above the threshold ({format_money(threshold_minor, money)}).",
            )
        least = check[0]
    if cap <= 0 or (enabled and cap < least):
        what = "the recharge amount" if mode == "add" else "the smallest top-up"
        raise FieldError(
            "monthly_cap",
            f"The monthly cap must be at least {what} ({format_money(least, money)}).",
        )
    if enabled and not has_saved_card(session, account_id):
        raise NoSavedCard()
    account.auto_recharge_enabled = enabled
    account.auto_recharge_threshold_minor = threshold_minor
    account.auto_recharge_amount_minor = amount_minor
    account.auto_recharge_monthly_cap_minor = cap
    account.auto_recharge_mode = mode
    account.auto_recharge_target_minor = target
    if enabled:
        account.auto_recharge_paused = False
    after = auto_recharge(account)
    audit.record(session, account_id, actor, "auto_recharge", _audited(before), _audited(after),
                 now=now)  # fmt: skip
    session.flush()
    return after


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


def credits_cost(milli: int, currency: str, credits_per_unit: int) -> int:
    """What `milli` credits cost in minor units of money, rounded up: a recharge that buys
    them must not fall short by a fraction of a cent."""
    per_minor = credits_per_unit * MILLI
    return -(-milli * 10 ** currency_exponent(currency) // per_minor)


@dataclass(frozen=True)
class RechargeAmount:
    """What a recharge would charge now (minor units), or why none would be made."""

    amount_minor: int | None
    #: Why not: 'monthly_cap_reached' or 'not_needed' (the wallet is at its target).
    skipped: str | None = None
    #: The monthly cap made it smaller than the mode asked for.
    capped: bool = False
    #: An 'add' recharge charges more than its amount: what lifts the wallet back to the
    #: threshold.
    raised: bool = False


def recharge_amount(account: Account, recharged_this_month: int) -> RechargeAmount:
    """How much one recharge charges at this moment (rule 9), never past the top-up maximum
    or the monthly cap:

    - add: the amount, or more when the amount would leave the wallet under the threshold
      (what lifts it back to it). A fixed amount the cap cannot take is not made at all (as
      it always was); the part above it is cut to what the cap still allows;
    - target: what tops the wallet back up to the target, at least the top-up minimum,
      cut to what the cap still allows (down to the minimum).
    """
    cap_left = account.auto_recharge_monthly_cap_minor - recharged_this_month
    low, high = account.topup_min_minor, account.topup_max_minor
    price = account.currency, account.credits_per_unit
    if account.auto_recharge_mode != "target":
        amount = account.auto_recharge_amount_minor
        if amount > cap_left:
            return RechargeAmount(None, "monthly_cap_reached")
        threshold = money_to_credits(account.auto_recharge_threshold_minor, *price)
        gap = credits_cost(threshold - account.wallet_balance, *price)
        if gap <= amount:
            return RechargeAmount(amount)
        sized = min(gap, high, cap_left)
        return RechargeAmount(sized, capped=sized < min(gap, high), raised=sized > amount)
    target = money_to_credits(account.auto_recharge_target_minor, *price)
    short = target - account.wallet_balance
    if short <= 0:
        return RechargeAmount(None, "not_needed")
    amount = min(high, max(low, credits_cost(short, *price)))
    if amount > cap_left:
        if cap_left < low:
            return RechargeAmount(None, "monthly_cap_reached")
        return RechargeAmount(cap_left, capped=True)
    return RechargeAmount(amount)


def recharge_preview(
    session: Session, account_id: int, *, now: datetime | None = None
) -> RechargeAmount:
    """What a recharge would charge right now (the settings modal and API show it)."""
    account = session.get(Account, account_id)
    if account is None:
        raise UnknownAccount(f"No account {account_id}.")
    return recharge_amount(account, month_recharged(session, account, now or utcnow()))


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
