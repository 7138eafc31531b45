"""Plan credits: each cycle's grant, and the expiry of what the last cycle left."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger import outbox
from ledger.agent_status import resume_agents
from ledger.cycles import local_date, local_midnight, next_cycle_start, utcnow
from ledger.journal import Posting, find_entry, lock_account, post
from ledger.models import Account
from ledger.outbox import Alert
from ledger.recovery import note_recovery


@dataclass(frozen=True)
class Renewal:
    cycle_start: date
    granted: int
    expired: int
    next_renewal_at: datetime
    replayed: bool = False


def renewal_key(cycle_start: date) -> str:
    return f"renewal:{cycle_start.isoformat()}"


def renew_cycle(
    session: Session,
    account_id: int,
    cycle_start: date,
    *,
    now: datetime | None = None,
    alert: bool = True,
) -> Renewal:
    """Start the cycle beginning on `cycle_start`: expire the plan credits left (no rollover),
    grant the cycle's plan credits and resume agents that were waiting for them.

    Keyed on (account, cycle start): a second call for the same cycle, or for a cycle older
    than the current one, changes nothing.
    """
    now = now or utcnow()
    account = lock_account(session, account_id)
    done = find_entry(session, account_id, renewal_key(cycle_start))
    if done is not None or (account.cycle_start is not None and cycle_start <= account.cycle_start):
        return Renewal(
            cycle_start=account.cycle_start or cycle_start,
            granted=0,
            expired=0,
            next_renewal_at=account.next_renewal_at or now,
            replayed=True,
        )
    expired = account.plan_balance
    granted = account.plan_credits_per_cycle
    post(
        session,
        Posting(
            account_id, "renewal", [("plan", "expired", expired), ("grants", "plan", granted)],
            now, idempotency_key=renewal_key(cycle_start),
            memo=f"cycle starting {cycle_start.isoformat()}",
        ),
    )  # fmt: skip
    account.cycle_start = cycle_start
    account.plan_grant = granted
    account.plan_exhausted_alerted = False
    account.next_renewal_at = local_midnight(
        next_cycle_start(account.cycle_anchor_day, cycle_start), account.timezone
    )
    note_recovery(session, account, now, announce_plan=False)
    resume_agents(
        session, account, now, "renewal",
        reasons=("plan_exhausted", "wallet_empty", "account_budget"),
    )  # fmt: skip
    if alert:
        outbox.add(
            session,
            account.id,
            Alert.CYCLE_RENEWED,
            {
                "cycle_start": cycle_start.isoformat(),
                "granted": granted,
                "expired": expired,
                "next_renewal_at": account.next_renewal_at.isoformat(),
            },
            now=now,
        )
    session.flush()
    return Renewal(cycle_start, granted, expired, account.next_renewal_at)


def renew_due(session: Session, account_id: int, *, now: datetime | None = None) -> list[Renewal]:
    """Every renewal of the account that is due by `now`, each missed cycle once, in order."""
    now = now or utcnow()
    done: list[Renewal] = []
    account = lock_account(session, account_id)
    while account.next_renewal_at is not None and account.next_renewal_at <= now:
        # The cycle that follows the current one, by the calendar: the local date of the
        # stored instant would be a day early if the zone's rules moved that midnight (a
        # tzdata update) since it was computed, and the cycle after that would come a day
        # later, granting twice in one month.
        start = (
            next_cycle_start(account.cycle_anchor_day, account.cycle_start)
            if account.cycle_start is not None
            else local_date(account.next_renewal_at, account.timezone)
        )
        renewal = renew_cycle(session, account_id, start, now=now)
        if renewal.replayed:  # the date did not move: never loop
            break
        done.append(renewal)
    return done


def accounts_due(session: Session, *, now: datetime | None = None) -> list[int]:
    """Ids of the accounts whose next renewal is due."""
    now = now or utcnow()
    return list(
        session.execute(
            select(Account.id).where(Account.next_renewal_at <= now).order_by(Account.id)
        ).scalars()
    )
