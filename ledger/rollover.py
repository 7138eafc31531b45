"""Month rollover of agents' spending (rules 6 and 7): when the calendar month changes in
the account's time zone, each agent's month spend and the account's (what its budget
counts) start again at zero, and agents that were stopped for their monthly limit or for
the account's budget resume (with an "agent resumed" alert).

Charges already start a new month lazily; this job makes it happen at the month's first
minute for agents that no runtime is asking about (a stopped agent's runtime was told to
stop, so it may never ask). Limit alerts (80% and 100%) fire when spend crosses them, so
restarting the spend at zero re-arms them.

Idempotent: an agent whose month is already current is left alone, so a second run, or a
run racing a charge (both take the account lock), changes nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger import policy
from ledger.agent_status import resume_agents, roll_month
from ledger.cycles import month_key, utcnow
from ledger.journal import lock_account
from ledger.models import Account, Agent


@dataclass(frozen=True)
class Rollover:
    account_id: int
    month: str
    #: Agents whose month spend restarted at zero.
    rolled: list[int] = field(default_factory=list)
    #: Agents stopped for their monthly limit that resumed.
    resumed: list[int] = field(default_factory=list)
    #: Agents stopped for their monthly limit that still cannot pay: they now wait, stopped,
    #: for what they really lack (plan credits or wallet), which a renewal or a top-up clears.
    still_stopped: list[int] = field(default_factory=list)


def accounts_to_roll(session: Session, *, now: datetime | None = None) -> list[int]:
    """Ids of accounts with an agent whose month spend belongs to an earlier month, or
    whose own month spend does."""
    now = now or utcnow()
    ids: set[int] = set()
    for tz in session.execute(select(Account.timezone).distinct()).scalars():
        current = month_key(now, tz)
        ids.update(
            session.execute(
                select(Agent.account_id)
                .join(Account, Account.id == Agent.account_id)
                .where(Account.timezone == tz, Agent.month < current)
                .distinct()
            ).scalars()
        )
        ids.update(
            session.execute(
                select(Account.id).where(
                    Account.timezone == tz,
                    Account.account_month != "",
                    Account.account_month < current,
                )
            ).scalars()
        )
    return sorted(ids)


def roll_account(session: Session, account_id: int, *, now: datetime | None = None) -> Rollover:
    """Start the new month for the account's agents (see the module's docstring)."""
    now = now or utcnow()
    account = lock_account(session, account_id)
    current = month_key(now, account.timezone)
    agents = list(
        session.execute(
            select(Agent)
            .where(Agent.account_id == account_id, Agent.month < current)
            .order_by(Agent.id)
        ).scalars()
    )
    limited = []
    for agent in agents:
        roll_month(agent, current)
        if agent.status == "stopped" and agent.stop_reason == "monthly_limit":
            limited.append(agent)
    if account.account_month and account.account_month < current:
        account.account_month, account.account_month_spend = current, 0
    held = list(
        session.execute(
            select(Agent)
            .where(Agent.account_id == account_id, Agent.stop_reason == "account_budget")
            .order_by(Agent.id)
        ).scalars()
    )
    resumed = resume_agents(
        session, account, now, "new_month", reasons=("monthly_limit", "account_budget"),
        agents=[*limited, *held],
    )  # fmt: skip
    still = [agent for agent in limited if agent not in resumed]
    for agent in still:
        # The limit no longer holds it back; what does is the source it pays from.
        under_limit = policy.limit_room(agent.monthly_limit, agent.month_spend)
        agent.stop_reason = policy.short_reason(agent.behaviour, under_limit, 1)
    session.flush()
    return Rollover(
        account_id=account_id,
        month=current,
        rolled=[a.id for a in agents],
        resumed=[a.id for a in resumed],
        still_stopped=[a.id for a in still],
    )
