"""How long credits last at the recent pace: the forecast `/balance` shows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ledger.cycles import utcnow
from ledger.errors import UnknownAccount
from ledger.models import Account, Entry, Transfer

SPENDABLE = ("plan", "wallet")


def net_usage(session: Session, account_id: int, since: datetime, until: datetime) -> int:
    """Milli-credits used (usage minus refunds) from plan and wallet in [since, until)."""

    def total(debit: tuple[str, ...], credit: tuple[str, ...]) -> int:
        return session.execute(
            select(func.coalesce(func.sum(Transfer.amount), 0))
            .join(Entry, Entry.id == Transfer.entry_id)
            .where(
                Transfer.account_id == account_id,
                Transfer.debit_book.in_(debit),
                Transfer.credit_book.in_(credit),
                Entry.created_at >= since,
                Entry.created_at < until,
            )
        ).scalar_one()

    return int(total(SPENDABLE, ("usage",)) - total(("usage",), SPENDABLE))


@dataclass(frozen=True)
class Forecast:
    """At `per_day` milli-credits a day: when plan credits and then the wallet run out.

    `plan_until` is None when plan credits outlast the cycle (they renew first);
    `wallet_until` is None when the wallet is not drawn before the renewal, or holds nothing.
    """

    days: int
    per_day: int
    plan_until: datetime | None
    wallet_until: datetime | None
    renewal_at: datetime | None


def forecast(
    session: Session, account_id: int, *, now: datetime | None = None, days: int = 7
) -> Forecast:
    """The last `days` days' pace projected forward. Plan credits are used first; once they
    run out the wallet carries the same pace (the simple model a person can check)."""
    now = now or utcnow()
    account = session.get(Account, account_id)
    if account is None:
        raise UnknownAccount(f"No account {account_id}.")
    used = net_usage(session, account_id, now - timedelta(days=days), now)
    per_day = max(0, used) // days
    renewal = account.next_renewal_at
    if per_day <= 0:
        return Forecast(days, 0, None, None, renewal)
    plan_until = now + timedelta(days=account.plan_balance / per_day)
    if renewal is not None and plan_until >= renewal:
        return Forecast(days, per_day, None, None, renewal)
    wallet_until = None
    if account.wallet_balance > 0:
        wallet_until = plan_until + timedelta(days=account.wallet_balance / per_day)
    return Forecast(days, per_day, plan_until, wallet_until, renewal)
