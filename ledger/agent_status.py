"""Agents resuming (rule 6), stopping all at once for the account's budget, and the month
their spend counts in (rule 7).

Agents stop by a charge's decision (ledger/policy.py, applied by ledger/charges.py): one
agent, or every agent when the charge used up the account's budget (also when an admin
lowers the budget under what was spent). They resume when what stopped them clears: a
renewal grants plan credits, the wallet is credited, a refund gives credits back, a new
month starts, the budget has room again, or an admin changes the agent's settings; the
policy says whether the agent can pay for work again.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ledger import outbox, policy
from ledger.cycles import month_key
from ledger.models import Account, Agent
from ledger.outbox import AgentEvent


def roll_month(agent: Agent, month: str) -> bool:
    """Count the agent's spend in `month` from now on; True when that started a new month."""
    if agent.month == month:
        return False
    agent.month_spend = policy.spend_in(month, agent.month, agent.month_spend)
    agent.month = month
    return True


def budget_left(account: Account, month: str) -> int | None:
    """What the account's budget still lets its agents spend in `month`, or None."""
    spent = policy.spend_in(month, account.account_month, account.account_month_spend)
    return policy.limit_room(account.monthly_budget, spent)


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
    'settings', 'refund', 'budget'); it goes into the "agent resumed" alert. The caller
    holds the account lock and `account` shows its balances.

    The budget has the last word: an agent that could pay again while the budget is used
    up stays stopped, now for `account_budget`; one stopped for the budget whose budget has
    room again but that cannot pay stays stopped for what it lacks (plan credits, wallet,
    its own limit), which a renewal, a top-up or a new month clears.
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
    budget = budget_left(account, current)
    budget_full = budget is not None and budget <= 0
    resumed = []
    for agent in agents:
        if agent.status != "stopped" or agent.stop_reason not in reasons:
            continue
        roll_month(agent, current)
        if agent.stop_reason == "account_budget" and budget_full:
            continue
        if not policy.resumes(
            account.plan_balance,
            account.wallet_balance,
            agent.behaviour,
            agent.monthly_limit,
            agent.month_spend,
        ):
            if agent.stop_reason == "account_budget":
                under_limit = policy.limit_room(agent.monthly_limit, agent.month_spend)
                agent.stop_reason = policy.short_reason(agent.behaviour, under_limit, 1)
            continue
        if budget_full:
            agent.stop_reason = "account_budget"
            continue
        kind, payload = policy.agent_resumed(agent.id, agent.name, agent.stop_reason, cause)
        agent.status, agent.stop_reason, agent.stopped_at = "active", None, None
        resumed.append(agent)
        outbox.add(session, account.id, kind, payload, now=now)
    session.flush()
    return resumed


def stop_for_budget(
    session: Session, account_id: int, now: datetime, *, also: Iterable[tuple[int, str]] = ()
) -> None:
    """Every active agent of the account stops for `account_budget` (its budget is used up);
    agents stopped for another reason keep it. The budget alert tells Slack about them all
    at once; agent runtimes hear `agent.stopped` for each, with the agents in `also` (id
    and name: the one whose charge used the budget up, stopped by the caller)."""
    stopped = session.execute(
        update(Agent)
        .where(Agent.account_id == account_id, Agent.status == "active")
        .values(status="stopped", stop_reason="account_budget", stopped_at=now)
        .returning(Agent.id, Agent.name)
        .execution_options(synchronize_session="fetch")
    ).all()
    for agent_id, name in sorted({*also, *((a, n) for a, n in stopped)}):
        _, payload = policy.agent_stopped(agent_id, name, "account_budget")
        outbox.add_runtime_event(session, account_id, AgentEvent.STOPPED, payload, now=now)
