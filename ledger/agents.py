"""Agents: adding them, their settings (behaviour and monthly limit), and reading them.

Adapters read an agent as an `AgentView`, which already says this month's spend, so none of
them has to know that a spend counted for an earlier month is no spend now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger import audit
from ledger.agent_status import budget_left
from ledger.audit import Actor
from ledger.calls import _call
from ledger.cycles import month_key, utcnow
from ledger.errors import InvalidInput, UnknownAccount, UnknownAgent
from ledger.journal import lock_account, resume_agents
from ledger.models import BEHAVIOURS, STOP_REASONS, Account, Agent
from ledger.names import check_name
from ledger.units import AmountError, parse_credits


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


#: "Leave this setting as it is" (None means "no limit" for the monthly limit).
UNSET: Final = _Unset()


def parse_limit(text: str | None) -> int | None:
    """A monthly limit typed by a person, in whole credits; blank means no limit.

    Returns milli-credits. '500', '1,000' are fine; '0', '-5', '2.5', 'abc', '²' are refused
    (the credits parser's `AmountError`, saying what a limit is).
    """
    raw = (text or "").strip()
    if not raw or raw.lower() in ("none", "no limit"):
        return None
    try:
        limit = parse_credits(raw, whole=True)
    except AmountError:
        limit = 0
    if limit <= 0:
        raise AmountError(
            f"{text!r} is not a limit: enter a whole number of credits above 0, or leave it blank for none."
        )
    return limit


def _validate_behaviour(behaviour: str) -> str:
    if behaviour not in BEHAVIOURS:
        raise InvalidInput(f"{behaviour!r} is not a behaviour: choose 'stop' or 'use_balance'.")
    return behaviour


def _validate_limit(limit: int | None) -> int | None:
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit <= 0):
        raise InvalidInput("A monthly limit is a whole positive number of credits, or none.")
    return limit


def _validate_name(name: str) -> str:
    return check_name(name, what="An agent's name")


def get_agent(session: Session, account_id: int, ref: int | str) -> Agent:
    """The account's agent by id or by name; another account's agent is unknown here."""
    stmt = select(Agent).where(Agent.account_id == account_id)
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
        by_id = session.execute(stmt.where(Agent.id == int(ref))).scalar_one_or_none()
        if by_id is not None:
            return by_id
    agent = session.execute(stmt.where(Agent.name == str(ref))).scalar_one_or_none()
    if agent is None:
        raise UnknownAgent(f"No agent {ref!r} in this account.")
    return agent


def list_agents(session: Session, account_id: int) -> list[Agent]:
    return list(
        session.execute(
            select(Agent).where(Agent.account_id == account_id).order_by(Agent.name)
        ).scalars()
    )


def add_agent(
    session: Session,
    account_id: int,
    name: str,
    *,
    behaviour: str = "stop",
    monthly_limit: int | None = None,
    actor: Actor | None = None,
    now: datetime | None = None,
) -> Agent:
    """A new, active agent (stopped at once for `account_budget` when the account's budget
    is used up, as its first charge would be)."""
    now = now or utcnow()
    name = _validate_name(name)
    account = lock_account(session, account_id)
    if session.execute(
        select(Agent.id).where(Agent.account_id == account_id, Agent.name == name)
    ).first():
        raise InvalidInput(f"This account already has an agent named {name!r}.")
    agent = Agent(
        account_id=account_id,
        name=name,
        status="active",
        behaviour=_validate_behaviour(behaviour),
        monthly_limit=_validate_limit(monthly_limit),
        month=month_key(now, account.timezone),
        month_spend=0,
        created_at=now,
    )
    session.add(agent)
    session.flush()
    left = budget_left(account, agent.month)
    if left is not None and left <= 0:
        agent.status, agent.stop_reason, agent.stopped_at = "stopped", "account_budget", now
    audit.record(
        session, account_id, actor, "agent.created", {}, _settings(agent), subject=agent.id,
        now=now, always=True,
    )  # fmt: skip
    session.flush()
    return agent


def _settings(agent: Agent) -> dict[str, object]:
    """What the audit trail records of an agent's settings."""
    return {"name": agent.name, "behaviour": agent.behaviour, "monthly_limit": agent.monthly_limit}


def update_agent(
    session: Session,
    account_id: int,
    ref: int | str,
    *,
    behaviour: str | _Unset = UNSET,
    monthly_limit: int | None | _Unset = UNSET,
    name: str | _Unset = UNSET,
    actor: Actor | None = None,
    now: datetime | None = None,
) -> tuple[Agent, bool]:
    """Change an agent's settings. Returns the agent and whether the change resumed it
    (rule 6: a raised or removed limit, or a switch to `use_balance` while the wallet has
    credits, clears the reason it stopped for)."""
    now = now or utcnow()
    account = lock_account(session, account_id)
    agent = get_agent(session, account_id, ref)
    before = _settings(agent)
    if not isinstance(name, _Unset):
        new_name = _validate_name(name)
        if (
            new_name != agent.name
            and session.execute(
                select(Agent.id).where(Agent.account_id == account_id, Agent.name == new_name)
            ).first()
        ):
            raise InvalidInput(f"This account already has an agent named {new_name!r}.")
        agent.name = new_name
    was = (agent.behaviour, agent.monthly_limit)
    if not isinstance(behaviour, _Unset):
        agent.behaviour = _validate_behaviour(behaviour)
    if not isinstance(monthly_limit, _Unset):
        agent.monthly_limit = _validate_limit(monthly_limit)
    session.flush()
    audit.record(
        session, account_id, actor, "agent", before, _settings(agent), subject=agent.id, now=now
    )
    if (agent.behaviour, agent.monthly_limit) == was:
        return agent, False  # saved as it was: nothing cleared the reason it stopped for
    resumed = resume_agents(session, account, now, "settings", reasons=STOP_REASONS, agents=[agent])
    return agent, bool(resumed)


# --------------------------------------------------------------------------- views


@dataclass(frozen=True)
class AgentView:
    """What a person or a runtime sees of an agent. Credits are milli-credits."""

    id: int
    name: str
    status: str
    stop_reason: str | None
    behaviour: str
    monthly_limit: int | None
    #: Spent in the account's current calendar month, from both sources.
    month_spend: int


def agent_view(agent: Agent, month: str) -> AgentView:
    """The view of `agent` in the account's current `month` ('2026-11'). The agent's own
    count may still be for an earlier month (it is reset by its next charge or the
    rollover job): then nothing is spent yet this month."""
    return AgentView(
        id=agent.id,
        name=agent.name,
        status=agent.status,
        stop_reason=agent.stop_reason,
        behaviour=agent.behaviour,
        monthly_limit=agent.monthly_limit,
        month_spend=agent.month_spend if agent.month == month else 0,
    )


def _current_month(session: Session, account_id: int, now: datetime | None) -> str:
    account = session.get(Account, account_id)  # usually already loaded: no query then
    if account is None:
        raise UnknownAccount(f"No account {account_id}.")
    return month_key(now or utcnow(), account.timezone)


def _agent_by_id(session: Session, account_id: int, agent_id: int) -> Agent:
    """By id only (`get_agent` also takes names, so agent '7' could answer for id 7)."""
    agent = session.get(Agent, agent_id)
    if agent is None or agent.account_id != account_id:
        raise UnknownAgent(f"No agent {agent_id} in this account.")
    return agent


def read_agent(
    session: Session, account_id: int, agent_id: int, *, now: datetime | None = None
) -> AgentView:
    """The account's agent with this id; another account's agent is unknown here."""
    agent = _agent_by_id(session, account_id, agent_id)
    return agent_view(agent, _current_month(session, account_id, now))


def read_agents(
    session: Session, account_id: int, *, now: datetime | None = None
) -> list[AgentView]:
    """Every agent of the account, by name."""
    month = _current_month(session, account_id, now)
    return [agent_view(a, month) for a in list_agents(session, account_id)]


def create_agent(
    session: Session,
    account_id: int,
    name: str,
    *,
    behaviour: str = "stop",
    monthly_limit: int | None = None,
    actor: Actor | None = None,
    now: datetime | None = None,
) -> AgentView:
    """`add_agent`, answered as the view of the new agent."""
    now = now or utcnow()
    agent = add_agent(
        session, account_id, name, behaviour=behaviour, monthly_limit=monthly_limit,
        actor=actor, now=now,
    )  # fmt: skip
    return agent_view(agent, _current_month(session, account_id, now))


def change_agent(
    session: Session,
    account_id: int,
    agent_id: int,
    *,
    behaviour: str | _Unset = UNSET,
    monthly_limit: int | None | _Unset = UNSET,
    name: str | _Unset = UNSET,
    actor: Actor | None = None,
    now: datetime | None = None,
) -> tuple[AgentView, bool]:
    """`update_agent` for the agent with this id (never a name). Returns the view after
    the change and whether the change resumed the agent."""
    now = now or utcnow()
    _agent_by_id(session, account_id, agent_id)
    agent, resumed = update_agent(
        session,
        account_id,
        agent_id,
        behaviour=behaviour,
        monthly_limit=monthly_limit,
        name=name,
        actor=actor,
        now=now,
    )
    return agent_view(agent, _current_month(session, account_id, now)), resumed


def agent_of_call(session: Session, account_id: int, call_id: str) -> int:
    """The id of the agent a call of the account is for (`CallMinute` does not say)."""
    return _call(session, account_id, call_id).agent_id  # no query right after a charge


# --------------------------------------------------------------------------- until a top-up

#: What a `stop` agent waits for when a top-up cannot help it by itself (rule 3): it never
#: touches the wallet, so it waits for the renewal or the new month -- unless it is
#: switched to Use balance.
WAITING_REASONS = ("plan_exhausted", "monthly_limit")


def waiting_agents(session: Session, account_id: int) -> list[Agent]:
    """The account's `stop` agents stopped for plan credits or their limit: those a top-up
    would serve only once switched to Use balance ("stops working until you top up")."""
    return list(
        session.execute(
            select(Agent)
            .where(
                Agent.account_id == account_id,
                Agent.status == "stopped",
                Agent.behaviour == "stop",
                Agent.stop_reason.in_(WAITING_REASONS),
            )
            .order_by(Agent.name)
        ).scalars()
    )


def waiting_list(session: Session, account_id: int) -> list[dict[str, object]]:
    """`waiting_agents` as an alert payload carries them."""
    return [
        {"id": a.id, "name": a.name, "reason": a.stop_reason}
        for a in waiting_agents(session, account_id)
    ]


def use_balance_for(
    session: Session,
    account_id: int,
    agent_ids: list[int] | None,
    *,
    actor: Actor | None = None,
    now: datetime | None = None,
) -> list[tuple[AgentView, bool]]:
    """Switch agents to Use balance, each resuming if the wallet can pay for it (rule 6):
    those named, or with None every agent waiting for a top-up. Each change is audited."""
    now = now or utcnow()
    lock_account(session, account_id)
    ids = [a.id for a in waiting_agents(session, account_id)] if agent_ids is None else agent_ids
    done = []
    for agent_id in ids:
        _agent_by_id(session, account_id, agent_id)
        agent, resumed = update_agent(
            session, account_id, agent_id, behaviour="use_balance", actor=actor, now=now
        )
        done.append((agent_view(agent, _current_month(session, account_id, now)), resumed))
    return done
