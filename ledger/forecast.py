"""How long credits last at the recent pace: the forecast `/balance`, `/usage` and the
billing page show.

The pace is the usage of the last 7 whole local days (account time zone), read from the
usage rollup: a handful of rows, however long the journal grows. The projection is integer
arithmetic and stops at a horizon of a year: past it the forecast says "more than a year"
instead of a date (a large wallet and a quiet week would otherwise land past year 9999).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from ledger.cycles import local_date, utcnow
from ledger.errors import UnknownAccount
from ledger.models import Account
from ledger.usage import used

#: Days of usage the pace is taken over: the whole local days before today.
WINDOW_DAYS = 7
#: How far the forecast looks: beyond it, credits last "more than a year".
HORIZON = timedelta(days=365)
_DAY = 86_400


@dataclass(frozen=True)
class Forecast:
    """At `per_day` milli-credits a day: when plan credits and then the wallet run out.

    `plan_until` is None when plan credits outlast the cycle (they renew first), or outlast
    the horizon (`plan_beyond`); `wallet_until` is None when the wallet is not drawn before
    the renewal or the horizon, holds nothing, or outlasts the horizon (`wallet_beyond`).
    """

    days: int
    per_day: int
    plan_until: datetime | None
    wallet_until: datetime | None
    renewal_at: datetime | None
    plan_beyond: bool = False
    wallet_beyond: bool = False


def project(
    now: datetime,
    per_day: int,
    plan_balance: int,
    wallet_balance: int,
    renewal_at: datetime | None,
    *,
    days: int = WINDOW_DAYS,
) -> Forecast:
    """Plan credits first, then the wallet, at `per_day` (the simple model a person can
    check). Whole seconds, integers only; nothing past the horizon becomes a date."""
    if per_day <= 0:
        return Forecast(days, 0, None, None, renewal_at)
    horizon = int(HORIZON.total_seconds())
    plan_seconds = max(0, plan_balance) * _DAY // per_day
    if renewal_at is not None and plan_seconds >= (renewal_at - now).total_seconds():
        return Forecast(days, per_day, None, None, renewal_at)
    if plan_seconds > horizon:
        return Forecast(days, per_day, None, None, renewal_at, plan_beyond=True)
    plan_until = now + timedelta(seconds=plan_seconds)
    if wallet_balance <= 0:
        return Forecast(days, per_day, plan_until, None, renewal_at)
    wallet_seconds = plan_seconds + wallet_balance * _DAY // per_day
    if wallet_seconds > horizon:
        return Forecast(days, per_day, plan_until, None, renewal_at, wallet_beyond=True)
    return Forecast(days, per_day, plan_until, now + timedelta(seconds=wallet_seconds), renewal_at)


def forecast(
    session: Session, account_id: int, *, now: datetime | None = None, days: int = WINDOW_DAYS
) -> Forecast:
    """The pace of the `days` whole local days before today, projected forward."""
    now = now or utcnow()
    account = session.get(Account, account_id)
    if account is None:
        raise UnknownAccount(f"No account {account_id}.")
    today = local_date(now, account.timezone)
    spent = used(session, account_id, today - timedelta(days=days), today - timedelta(days=1))
    return project(
        now,
        max(0, spent) // days,
        account.plan_balance,
        account.wallet_balance,
        account.next_renewal_at,
        days=days,
    )
