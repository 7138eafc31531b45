"""Agents resuming (rule 6), and the month their spend counts in (rule 7).

Agents stop only by a charge's decision (ledger/policy.py, applied by ledger/charges.py).
They resume when what stopped them clears: a renewal grants plan credits, the wallet is
credited, a refund gives credits back, a new month starts, or an admin changes the agent's
settings; the policy says whether the agent can pay for work again.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger import outbox, policy
from ledger.cycles import month_key
from ledger.models import Account, Agent


def roll_month(agent: Agent, month: str) -> bool:
    """Count the agent's spend in `month` from now on; True when that started a new month."""
    if agent.month == month:
        return False
    agent.month_spend = policy.spend_in(month, agent.month, agent.month_spend)
    agent.month = month
    return True


def resume_agents(
    session: Session,
    account: Account,
    now: datetime,
    cause: str,
    *,
    reasons: tuple[str, ...],
    agents: Iterable[Agent] | None = None,
) -> list[Agent]:
    """Resume stopped agents whose stop reason is in `reasons` and who can now pay for work.

    `cause` says what cleared the reason ('renewal', 'wallet_credit', 'new_month',
    'settings', 'refund'); it goes into the "agent resumed" alert. The caller holds the
    account lock and `account` shows its balances.
    """
    if agents is None:
        agents = session.execute(
            select(Agent).where(
                Agent.account_id == account.id,
                Agent.status == "stopped",
                Agent.stop_reason.in_(reasons),
            )
        ).scalars()
    current = month_key(now, account.timezone)
    resumed = []
    for agent in agents:
        if agent.status != "stopped" or agent.stop_reason not in reasons:
            continue
        roll_month(agent, current)
        if not policy.resumes(
            account.plan_balance,
            account.wallet_balance,
            agent.behaviour,
            agent.monthly_limit,
            agent.month_spend,
        ):
            continue
        kind, payload = policy.agent_resumed(agent.id, agent.name, agent.stop_reason, cause)
        agent.status, agent.stop_reason, agent.stopped_at = "active", None, None
        resumed.append(agent)
        outbox.add(session, account.id, kind, payload, now=now)
    session.flush()
    return resumed
