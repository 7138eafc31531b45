"""Writing the journal: lock an account, post an entry of transfers, keep the cached
balances equal to the postings, and stop or resume agents as balances change."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger import outbox
from ledger.cycles import month_key
from ledger.errors import UnknownAccount
from ledger.models import Account, Agent, Entry, Transfer
from ledger.outbox import Alert

#: The books whose balance is cached on the account row (and may never go negative).
CACHED = {"plan": "plan_balance", "wallet": "wallet_balance"}

Move = tuple[str, str, int]  # (debit book, credit book, milli-credits)


def lock_account(session: Session, account_id: int) -> Account:
    """The account, locked until the transaction ends. Every balance change takes this lock
    first, so concurrent changes to one account queue instead of overwriting each other."""
    account = session.execute(
        select(Account)
        .where(Account.id == account_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if account is None:
        raise UnknownAccount(f"No account {account_id}.")
    return account


def find_entry(session: Session, account_id: int, idempotency_key: str) -> Entry | None:
    return session.execute(
        select(Entry).where(
            Entry.account_id == account_id, Entry.idempotency_key == idempotency_key
        )
    ).scalar_one_or_none()


def post_entry(
    session: Session,
    account: Account,
    kind: str,
    moves: Iterable[Move],
    *,
    now: datetime,
    **fields: object,
) -> Entry:
    """Append an entry with its transfers and move the cached balances with them."""
    entry = Entry(account_id=account.id, kind=kind, created_at=now, **fields)
    session.add(entry)
    session.flush()
    total = 0
    for debit, credit, amount in moves:
        if amount <= 0:
            continue
        session.add(
            Transfer(
                entry_id=entry.id,
                account_id=account.id,
                debit_book=debit,
                credit_book=credit,
                amount=amount,
            )
        )
        if debit in CACHED:
            setattr(account, CACHED[debit], getattr(account, CACHED[debit]) - amount)
        if credit in CACHED:
            setattr(account, CACHED[credit], getattr(account, CACHED[credit]) + amount)
        total += amount
    if not entry.amount:
        entry.amount = total
    session.flush()
    return entry


def roll_month(agent: Agent, current_month: str) -> bool:
    """Start the agent's month spend afresh when a new calendar month began."""
    if agent.month != current_month:
        agent.month = current_month
        agent.month_spend = 0
        return True
    return False


def available(account: Account, agent: Agent) -> int:
    """Milli-credits the agent may still spend from the sources its settings allow."""
    plan = account.plan_balance
    if agent.monthly_limit is not None:
        plan = min(plan, max(0, agent.monthly_limit - agent.month_spend))
    wallet = account.wallet_balance if agent.behaviour == "use_balance" else 0
    return plan + wallet


def stop_agent(
    session: Session, account: Account, agent: Agent, reason: str, now: datetime
) -> None:
    agent.status = "stopped"
    agent.stop_reason = reason
    agent.stopped_at = now
    outbox.add(
        session,
        account.id,
        Alert.AGENT_STOPPED,
        {"agent_id": agent.id, "agent_name": agent.name, "reason": reason},
        now=now,
    )


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
    'settings'); it goes into the "agent resumed" alert.
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
        if available(account, agent) <= 0:
            continue
        previous = agent.stop_reason
        agent.status = "active"
        agent.stop_reason = None
        agent.stopped_at = None
        resumed.append(agent)
        outbox.add(
            session,
            account.id,
            Alert.AGENT_RESUMED,
            {
                "agent_id": agent.id,
                "agent_name": agent.name,
                "previous_reason": previous,
                "cause": cause,
            },
            now=now,
        )
    session.flush()
    return resumed
