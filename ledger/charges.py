"""Charging usage (rule 4, pay before work): read, decide, post.

A charge reads the agent and its account in one locked read (`journal.read_for_charge`),
lets the policy decide (`policy.decide`: plan credits first, then the wallet for
`use_balance` agents, all or nothing) and posts its entry through the journal's gate
(`journal.post`). What else the decision changes -- the agent stopping or resuming, the
account's alert flags, alerts and the recharge request -- is written in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ledger import outbox, policy
from ledger.agent_status import resume_agents, stop_for_budget
from ledger.cycles import day_and_month, local_date, month_key, utcnow
from ledger.errors import IdempotencyConflict, InvalidInput, UnknownAgent
from ledger.journal import (
    KeyTaken,
    Posting,
    UsageKey,
    answer_later,
    find_entry,
    lock_account,
    post,
    read_for_charge,
    refresh_loaded,
)
from ledger.models import Account, Agent, Entry, Transfer
from ledger.recovery import note_recovery

UNITS = ("message", "call_minute")
#: Most units one request may charge: larger is a runaway or a typo, not usage.
MAX_QUANTITY = 10_000

_accounts = Account.__table__
_agents = Agent.__table__


@dataclass(frozen=True)
class Charge:
    """The answer to "may this agent do this work?", and what it cost."""

    entry_id: int
    allowed: bool
    reason: str | None
    amount: int
    from_plan: int
    from_wallet: int
    plan_balance: int
    wallet_balance: int
    agent_status: str
    replayed: bool = False


def charge(
    session: Session,
    account_id: int,
    agent_id: int,
    unit: str,
    quantity: int = 1,
    *,
    idempotency_key: str,
    request_hash: str | None = None,
    call_id: str | None = None,
    unit_price: int | None = None,
    now: datetime | None = None,
) -> Charge:
    """Authorise and pay for `quantity` units of work by the agent, before the work.

    Idempotent on `idempotency_key` (per account): a replay returns the first answer and
    changes nothing; the same key with another `request_hash` raises IdempotencyConflict.
    """
    _check_request(unit, quantity, idempotency_key)
    found = read_for_charge(session, account_id, agent_id, idempotency_key)
    if found is None:
        raise UnknownAgent(f"No agent {agent_id} in this account.")
    snapshot, existing_id = found
    if existing_id is not None:
        return replay(session, account_id, existing_id, request_hash)

    now = now or utcnow()
    rate = snapshot.message_rate if unit == "message" else snapshot.call_minute_rate
    price = (rate if unit_price is None else unit_price) * quantity
    day, month = day_and_month(now, snapshot.timezone)
    decision = policy.decide(snapshot, price, month)
    spend = None if decision.month_spend is None else (decision.month, decision.month_spend)
    account_spend = (
        None if decision.account_spend is None else (decision.month, decision.account_spend)
    )
    posting = Posting(
        account_id, "usage",
        (("plan", "usage", decision.from_plan), ("wallet", "usage", decision.from_wallet)),
        now, agent_id=agent_id, idempotency_key=idempotency_key, request_hash=request_hash,
        unit=unit, quantity=quantity, amount=price, refused_reason=decision.refused,
        call_id=call_id, spend=spend, account_spend=account_spend, usage=UsageKey(day, unit),
    )  # fmt: skip
    try:
        posted = post(session, posting)
    except KeyTaken:  # in a writer's batch the key is checked as the entry is written
        taken = find_entry(session, account_id, idempotency_key)
        assert taken is not None
        return replay(session, account_id, taken.id, request_hash)
    answer = Charge(
        posted.entry_id or 0,
        decision.allowed,
        decision.refused,
        price,
        decision.from_plan,
        decision.from_wallet,
        snapshot.plan_balance - decision.from_plan,
        snapshot.wallet_balance - decision.from_wallet,
        decision.status,
    )
    if posted.entry_id is None:  # a writer's batch writes the entry at its end
        answer_later(session, answer)
    _apply(session, account_id, agent_id, decision, now)
    return answer


def _check_request(unit: str, quantity: int, idempotency_key: str) -> None:
    if unit not in UNITS:
        raise InvalidInput(f"{unit!r} is not a unit: use 'message' or 'call_minute'.")
    if (
        not isinstance(quantity, int)
        or isinstance(quantity, bool)
        or not 1 <= quantity <= MAX_QUANTITY
    ):
        raise InvalidInput(f"Quantity must be a whole number from 1 to {MAX_QUANTITY}.")
    if not idempotency_key or len(idempotency_key) > 200:
        raise InvalidInput("An idempotency key of 1 to 200 characters is required.")


def _apply(
    session: Session, account_id: int, agent_id: int, decision: policy.Decision, now: datetime
) -> None:
    """What only some charges change besides money: alert flags, the agent's status (and
    every agent's, when the charge used up the budget), and the outbox messages (alerts,
    the recharge request), in the order they fired."""
    flags: dict[str, object] = {}
    if decision.flag_plan_exhausted:
        flags["plan_exhausted_alerted"] = True
    if decision.request_recharge:
        flags["recharge_requested"] = True
    if decision.flag_plan_low:
        flags["plan_low_alerted"] = True
    if decision.flag_wallet_low:
        flags["wallet_low_alerted"] = True
    if flags:
        session.connection().execute(
            update(_accounts).where(_accounts.c.id == account_id).values(**flags)
        )
        refresh_loaded(session, Account, account_id, flags)
    if decision.change is not None:
        stopped = decision.change.status == "stopped"
        status = {
            "status": decision.change.status,
            "stop_reason": decision.change.reason,
            "stopped_at": now if stopped else None,
        }
        session.connection().execute(
            update(_agents).where(_agents.c.id == agent_id).values(**status)
        )
        refresh_loaded(session, Agent, agent_id, status)
    if decision.stop_all:  # rare: the charge that used the budget up
        name = session.execute(select(Agent.name).where(Agent.id == agent_id)).scalar_one()
        stop_for_budget(session, account_id, now, also=[(agent_id, name)])
    for kind, payload in decision.messages:
        outbox.add(session, account_id, kind, payload, now=now)


def replay(session: Session, account_id: int, entry_id: int, request_hash: str | None) -> Charge:
    """The answer a usage key gave the first time, with today's balances."""
    entry = session.get(Entry, entry_id)
    if entry is None or entry.kind != "usage":
        raise IdempotencyConflict("That idempotency key was used for something else.")
    if request_hash and entry.request_hash and request_hash != entry.request_hash:
        raise IdempotencyConflict("That idempotency key was used with a different request.")
    moved = _moved(session, entry_id, Transfer.debit_book)
    balances = session.execute(
        select(Account.plan_balance, Account.wallet_balance).where(Account.id == account_id)
    ).one()
    status = session.execute(select(Agent.status).where(Agent.id == entry.agent_id)).scalar_one()
    return Charge(
        entry_id=entry.id,
        allowed=entry.refused_reason is None,
        reason=entry.refused_reason,
        amount=entry.amount,
        from_plan=moved["plan"],
        from_wallet=moved["wallet"],
        plan_balance=balances.plan_balance,
        wallet_balance=balances.wallet_balance,
        agent_status=status,
        replayed=True,
    )


def _moved(session: Session, entry_id: int, book: object) -> dict[str, int]:
    """What the entry's transfers moved out of (`Transfer.debit_book`) or into
    (`Transfer.credit_book`) the plan and the wallet."""
    moved = dict.fromkeys(("plan", "wallet"), 0)
    for name, amount in session.execute(
        select(book, Transfer.amount).where(Transfer.entry_id == entry_id)
    ):
        if name in moved:
            moved[name] += amount
    return moved


@dataclass(frozen=True)
class Refund:
    entry_id: int | None
    amount: int
    to_plan: int
    to_wallet: int
    replayed: bool = False


def refund(
    session: Session,
    account_id: int,
    entry_id: int,
    amount: int,
    *,
    key: str,
    now: datetime | None = None,
) -> Refund:
    """Give back `amount` of a charge (for example the unused seconds of a call's last
    minute): to the wallet part first, then the plan part, never more than was charged."""
    now = now or utcnow()
    account = lock_account(session, account_id)
    done = session.execute(
        select(Entry).where(Entry.account_id == account_id, Entry.idempotency_key == key)
    ).scalar_one_or_none()
    if done is not None:
        if done.refund_of != entry_id or done.amount != amount:
            raise IdempotencyConflict("That refund key was used for another refund.")
        return _refund_view(session, done, replayed=True)
    original = session.get(Entry, entry_id)
    if original is None or original.account_id != account_id or original.kind != "usage":
        raise InvalidInput(f"No charge {entry_id} to refund in this account.")
    if amount <= 0:
        raise InvalidInput("A refund must be more than zero credits.")
    left = _moved(session, entry_id, Transfer.debit_book)
    for book, value in session.execute(
        select(Transfer.credit_book, Transfer.amount)
        .join(Entry, Entry.id == Transfer.entry_id)
        .where(Entry.refund_of == entry_id)
    ):
        left[book] -= value
    if amount > left["plan"] + left["wallet"]:
        raise InvalidInput("A refund cannot be more than what is left of the charge.")
    to_wallet = min(amount, left["wallet"])
    to_plan = amount - to_wallet
    agent = session.get(Agent, original.agent_id) if original.agent_id is not None else None
    # The refund counts against the day (and unit) of the charge it gives back.
    usage = UsageKey(local_date(original.created_at, account.timezone), original.unit or "")
    spend = None
    charged_in = month_key(original.created_at, account.timezone)
    if agent is not None:
        after = policy.spend_after_refund(agent.month, agent.month_spend, charged_in, amount)
        spend = None if after is None else (agent.month, after)
    # The budget counts what was spent: a refund in the charge's month gives it room back.
    month = account.account_month
    left = policy.spend_after_refund(month, account.account_month_spend, charged_in, amount)
    posted = post(
        session,
        Posting(
            account_id, "refund", (("usage", "wallet", to_wallet), ("usage", "plan", to_plan)),
            now, agent_id=original.agent_id, idempotency_key=key, refund_of=entry_id,
            call_id=original.call_id, amount=amount, spend=spend, usage=usage,
            account_spend=None if left is None else (month, left),
        ),
    )  # fmt: skip
    note_recovery(session, account, now)
    resume_agents(
        session, account, now, "refund",
        reasons=("wallet_empty", "plan_exhausted", "account_budget"),
    )  # fmt: skip
    return Refund(posted.entry_id, amount, to_plan, to_wallet)


def _refund_view(session: Session, entry: Entry, *, replayed: bool) -> Refund:
    moved = _moved(session, entry.id, Transfer.credit_book)
    return Refund(
        entry.id, entry.amount, to_plan=moved["plan"], to_wallet=moved["wallet"], replayed=replayed
    )
