"""Charging usage: pay before work, plan credits first, then (for `use_balance` agents)
the wallet; a charge the allowed sources cannot fully cover is refused and stops the agent.

This is the hot path: one locked read, then a handful of Core statements.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Connection,
    Integer,
    Select,
    String,
    bindparam,
    exists,
    insert,
    literal,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.orm import Session

from ledger import outbox
from ledger.cycles import month_key, utcnow
from ledger.driver import DriverStatement
from ledger.errors import IdempotencyConflict, InvalidInput, UnknownAgent
from ledger.journal import lock_account, post_entry, resume_agents
from ledger.models import Account, Agent, Entry, Transfer, UTCDateTime
from ledger.outbox import Alert
from ledger.units import money_to_credits

UNITS = ("message", "call_minute")
#: Most units one request may charge: larger is a runaway or a typo, not usage.
MAX_QUANTITY = 10_000

_A = Account.__table__
_G = Agent.__table__
_E = Entry.__table__
_T = Transfer.__table__


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


# Statements are built once: building and hashing a statement costs more than running it.
_READ = (
    select(
        _G.c.name,
        _G.c.status,
        _G.c.stop_reason,
        _G.c.behaviour,
        _G.c.monthly_limit,
        _G.c.month,
        _G.c.month_spend,
        _A.c.plan_balance,
        _A.c.wallet_balance,
        _A.c.plan_grant,
        _A.c.message_rate,
        _A.c.call_minute_rate,
        _A.c.timezone,
        _A.c.plan_low_percent,
        _A.c.wallet_low_credits,
        _A.c.plan_exhausted_alerted,
        _A.c.auto_recharge_enabled,
        _A.c.auto_recharge_paused,
        _A.c.auto_recharge_threshold_minor,
        _A.c.recharge_requested,
        _A.c.currency,
        _A.c.credits_per_unit,
        select(_E.c.id)
        .where(_E.c.account_id == bindparam("account_id"), _E.c.idempotency_key == bindparam("key"))
        .scalar_subquery()
        .label("existing_id"),
    )
    .select_from(_G.join(_A, _A.c.id == _G.c.account_id))
    .where(_G.c.id == bindparam("agent_id"), _G.c.account_id == bindparam("account_id"))
    .with_for_update(of=_A)
)
# Under the lock this cannot fail; the guard makes a logic error refuse rather than overdraw.
_DEBIT = (
    update(_A)
    .where(
        _A.c.id == bindparam("account_id"),
        _A.c.plan_balance >= bindparam("from_plan"),
        _A.c.wallet_balance >= bindparam("from_wallet"),
    )
    .values(
        plan_balance=_A.c.plan_balance - bindparam("from_plan"),
        wallet_balance=_A.c.wallet_balance - bindparam("from_wallet"),
    )
)
_ENTRY_COLUMNS = ("account_id", "agent_id", "kind", "idempotency_key", "request_hash", "unit",
                  "quantity", "amount", "refused_reason", "call_id", "created_at")  # fmt: skip
_INSERT_ENTRY = (
    insert(_E)
    .values({name: bindparam(name, type_=_E.c[name].type) for name in _ENTRY_COLUMNS})
    .returning(_E.c.id)
)
_INSERT_TRANSFER = insert(_T).values(
    {name: bindparam(name, type_=_T.c[name].type)
     for name in ("entry_id", "account_id", "debit_book", "credit_book", "amount")}
)  # fmt: skip


def _pay_in_one_statement() -> Select:
    """PostgreSQL: debit the account, write the entry and its transfers and the agent's
    spend in one statement (data-modifying CTEs), so a charge is one round trip after its
    locked read. If the guarded debit matches no row, nothing else is written."""
    debit = (
        update(_A)
        .where(
            _A.c.id == bindparam("b_account_id"),
            _A.c.plan_balance >= bindparam("b_from_plan"),
            _A.c.wallet_balance >= bindparam("b_from_wallet"),
        )
        .values(
            plan_balance=_A.c.plan_balance - bindparam("b_from_plan"),
            wallet_balance=_A.c.wallet_balance - bindparam("b_from_wallet"),
        )
        .returning(_A.c.id)
        .cte("debit")
    )
    entry = (
        insert(_E)
        .from_select(
            ["account_id", "agent_id", "kind", "idempotency_key", "request_hash", "unit",
             "quantity", "amount", "call_id", "created_at"],
            select(
                debit.c.id,
                bindparam("b_agent_id", type_=Integer),
                literal("usage", String),
                bindparam("b_idempotency_key", type_=String),
                bindparam("b_request_hash", type_=String),
                bindparam("b_unit", type_=String),
                bindparam("b_quantity", type_=Integer),
                bindparam("b_amount", type_=BigInteger),
                bindparam("b_call_id", type_=String),
                bindparam("b_created_at", type_=UTCDateTime()),
            ),
        )
        .returning(_E.c.id)
        .cte("entry")
    )  # fmt: skip
    moves = union_all(
        select(
            literal("plan", String).label("book"),
            bindparam("b_from_plan", type_=BigInteger).label("amount"),
        ),
        select(
            literal("wallet", String).label("book"),
            bindparam("b_from_wallet", type_=BigInteger).label("amount"),
        ),
    ).subquery("moves")
    transfers = (
        insert(_T)
        .from_select(
            ["entry_id", "account_id", "debit_book", "credit_book", "amount"],
            select(entry.c.id, bindparam("b_account_id", type_=Integer), moves.c.book, literal("usage", String), moves.c.amount)
            .select_from(entry.join(moves, true()))
            .where(moves.c.amount > 0),
        )
        .cte("transfers")
    )  # fmt: skip
    spend = (
        update(_G)
        .where(_G.c.id == bindparam("b_agent_id"), exists(select(entry.c.id)))
        .values(month=bindparam("b_month"), month_spend=bindparam("b_month_spend"))
        .cte("spend")
    )
    return select(entry.c.id).add_cte(transfers, spend)


_PAY_PG = _pay_in_one_statement()
_SPEND = (
    update(_G)
    .where(_G.c.id == bindparam("agent_id"))
    .values(month=bindparam("month"), month_spend=bindparam("month_spend"))
)


# Run straight on the driver: see ledger/driver.py.
_READ_D, _DEBIT_D, _ENTRY_D, _TRANSFER_D, _SPEND_D, _PAY_PG_D = map(
    DriverStatement, (_READ, _DEBIT, _INSERT_ENTRY, _INSERT_TRANSFER, _SPEND, _PAY_PG)
)


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
    conn = session.connection()
    row = _READ_D.first(
        conn, {"account_id": account_id, "agent_id": agent_id, "key": idempotency_key}
    )
    if row is None:
        raise UnknownAgent(f"No agent {agent_id} in this account.")
    if row.existing_id is not None:
        return replay(session, account_id, row.existing_id, request_hash)

    now = now or utcnow()
    month = month_key(now, row.timezone)
    new_month = row.month != month
    spend = 0 if new_month else row.month_spend
    price = (unit_price if unit_price is not None else _rate(row, unit)) * quantity
    plan, wallet = row.plan_balance, row.wallet_balance
    agent_values: dict[str, object] = {"month": month} if new_month else {}
    account_values: dict[str, object] = {}
    alerts: list[tuple[str, dict[str, object]]] = []
    agent_ref = {"agent_id": agent_id, "agent_name": row.name}

    # A stopped agent stays stopped until its reason clears; a new month clears a limit.
    reason = row.stop_reason if row.status == "stopped" else None
    if reason == "monthly_limit" and new_month:
        reason = None
    from_plan = from_wallet = 0
    if reason is None:
        room = None if row.monthly_limit is None else max(0, row.monthly_limit - spend)
        plan_room = plan if room is None else min(plan, room)
        if row.behaviour == "stop":
            if price <= plan_room:
                from_plan = price
            else:
                reason = "monthly_limit" if room is not None and room < price else "plan_exhausted"
        else:
            from_plan = min(price, plan_room)
            from_wallet = price - from_plan
            if from_wallet > wallet:
                reason, from_plan, from_wallet = "wallet_empty", 0, 0
        if plan < price and not row.plan_exhausted_alerted:
            account_values["plan_exhausted_alerted"] = True
            alerts.append((Alert.PLAN_EXHAUSTED, {"plan_balance": plan}))

    if reason is not None:
        if row.status != "stopped" or row.stop_reason != reason:
            agent_values.update(status="stopped", stop_reason=reason, stopped_at=now)
            alerts.append((Alert.AGENT_STOPPED, {**agent_ref, "reason": reason}))
        if new_month:
            agent_values["month_spend"] = 0
        entry_id = _write(
            session, conn, account_id, agent_id, account_values, agent_values, alerts, now,
            entry={"unit": unit, "quantity": quantity, "amount": price, "refused_reason": reason,
                   "idempotency_key": idempotency_key, "request_hash": request_hash,
                   "call_id": call_id},
            moves=[],
        )  # fmt: skip
        return Charge(entry_id, False, reason, price, 0, 0, plan, wallet, "stopped")

    new_plan, new_wallet, new_spend = plan - from_plan, wallet - from_wallet, spend + price
    agent_values.update(month=month, month_spend=new_spend)
    if row.status == "stopped":  # a new month cleared its limit
        agent_values.update(status="active", stop_reason=None, stopped_at=None)
        alerts.append(
            (
                Alert.AGENT_RESUMED,
                {**agent_ref, "previous_reason": row.stop_reason, "cause": "new_month"},
            )
        )

    # Alerts fire when a threshold is crossed, so each fires once and re-arms when it clears.
    low = row.plan_grant * row.plan_low_percent // 100
    if from_plan and plan > low >= new_plan:
        alerts.append((Alert.PLAN_LOW, {"plan_balance": new_plan, "plan_grant": row.plan_grant}))
    if from_plan and new_plan == 0 and "plan_exhausted_alerted" not in account_values:
        if not row.plan_exhausted_alerted:
            account_values["plan_exhausted_alerted"] = True
            alerts.append((Alert.PLAN_EXHAUSTED, {"plan_balance": 0}))
    if from_wallet and wallet >= row.wallet_low_credits > new_wallet:
        alerts.append(
            (
                Alert.WALLET_LOW,
                {"wallet_balance": new_wallet, "threshold": row.wallet_low_credits},
            )
        )
    limit = row.monthly_limit
    if limit is not None:
        if spend * 5 < limit * 4 <= new_spend * 5:
            alerts.append((Alert.LIMIT_80, {**agent_ref, "month_spend": new_spend, "limit": limit}))
        if spend < limit <= new_spend:
            alerts.append(
                (Alert.LIMIT_100, {**agent_ref, "month_spend": new_spend, "limit": limit})
            )
    if from_wallet and row.auto_recharge_enabled and not row.auto_recharge_paused:
        threshold = money_to_credits(
            row.auto_recharge_threshold_minor, row.currency, row.credits_per_unit
        )
        if new_wallet < threshold and not row.recharge_requested:
            account_values["recharge_requested"] = True
            alerts.append((outbox.RECHARGE_REQUESTED, {"wallet_balance": new_wallet}))

    # Pay before work, and nothing past what the agent may spend: once nothing is left for
    # it, it stops now rather than on its next request.
    left_plan = new_plan if limit is None else min(new_plan, max(0, limit - new_spend))
    left = left_plan + (new_wallet if row.behaviour == "use_balance" else 0)
    status = "active"
    if left == 0:
        stop = "wallet_empty" if row.behaviour == "use_balance" else (
            "monthly_limit" if limit is not None and new_spend >= limit else "plan_exhausted"
        )  # fmt: skip
        status = "stopped"
        agent_values.update(status="stopped", stop_reason=stop, stopped_at=now)
        alerts.append((Alert.AGENT_STOPPED, {**agent_ref, "reason": stop}))

    moves = [("plan", from_plan), ("wallet", from_wallet)]
    entry_id = _write(
        session, conn, account_id, agent_id, account_values, agent_values, alerts, now,
        entry={"unit": unit, "quantity": quantity, "amount": price, "refused_reason": None,
               "idempotency_key": idempotency_key, "request_hash": request_hash,
               "call_id": call_id},
        moves=[(book, amount) for book, amount in moves if amount],
        guard=(from_plan, from_wallet),
    )  # fmt: skip
    return Charge(entry_id, True, None, price, from_plan, from_wallet, new_plan, new_wallet, status)


def _rate(row: object, unit: str) -> int:
    return row.message_rate if unit == "message" else row.call_minute_rate  # type: ignore[attr-defined]


def _write(
    session: Session,
    conn: Connection,
    account_id: int,
    agent_id: int,
    account_values: dict[str, object],
    agent_values: dict[str, object],
    alerts: list[tuple[str, dict[str, object]]],
    now: datetime,
    *,
    entry: dict[str, object],
    moves: list[tuple[str, int]],
    guard: tuple[int, int] | None = None,
) -> int:
    if guard is not None and conn.dialect.name == "postgresql":
        spend = {k: agent_values.pop(k) for k in ("month", "month_spend")}
        params = {"account_id": account_id, "agent_id": agent_id, "from_plan": guard[0],
                  "from_wallet": guard[1], "created_at": now, **entry, **spend}  # fmt: skip
        entry_id = _PAY_PG_D.scalar(conn, {f"b_{k}": v for k, v in params.items()})
        if entry_id is None:
            raise RuntimeError("balance changed under the account lock")
        _write_rare(session, conn, account_id, agent_id, account_values, agent_values, alerts, now)
        return entry_id
    if guard is not None:
        debit = {"account_id": account_id, "from_plan": guard[0], "from_wallet": guard[1]}
        if _DEBIT_D.rowcount(conn, debit) != 1:
            raise RuntimeError("balance changed under the account lock")
    entry_id = _ENTRY_D.scalar(
        conn,
        {
            "account_id": account_id,
            "agent_id": agent_id,
            "kind": "usage",
            "created_at": now,
            **entry,
        },
    )
    if moves:
        _TRANSFER_D.executemany(
            conn,
            [
                {
                    "entry_id": entry_id,
                    "account_id": account_id,
                    "debit_book": book,
                    "credit_book": "usage",
                    "amount": amount,
                }
                for book, amount in moves
            ],
        )
    spend = {k: agent_values.pop(k) for k in ("month", "month_spend") if k in agent_values}
    if len(spend) == 2:
        _SPEND_D.rowcount(conn, {"agent_id": agent_id, **spend})
    else:
        agent_values.update(spend)
    _write_rare(session, conn, account_id, agent_id, account_values, agent_values, alerts, now)
    return entry_id


def _write_rare(
    session: Session,
    conn: Connection,
    account_id: int,
    agent_id: int,
    account_values: dict[str, object],
    agent_values: dict[str, object],
    alerts: list[tuple[str, dict[str, object]]],
    now: datetime,
) -> None:
    """What only some charges change: alert flags, the agent stopping or resuming, alerts."""
    if account_values:
        conn.execute(update(_A).where(_A.c.id == account_id).values(**account_values))
    if agent_values:
        conn.execute(update(_G).where(_G.c.id == agent_id).values(**agent_values))
    for kind, payload in alerts:
        outbox.add(session, account_id, kind, payload, now=now)


def replay(session: Session, account_id: int, entry_id: int, request_hash: str | None) -> Charge:
    """The answer a usage key gave the first time, with today's balances."""
    entry = session.get(Entry, entry_id)
    if entry is None or entry.kind != "usage":
        raise IdempotencyConflict("That idempotency key was used for something else.")
    if request_hash and entry.request_hash and request_hash != entry.request_hash:
        raise IdempotencyConflict("That idempotency key was used with a different request.")
    moved = session.execute(
        select(_T.c.debit_book, _T.c.amount).where(_T.c.entry_id == entry_id)
    ).all()
    acc = session.execute(
        select(_A.c.plan_balance, _A.c.wallet_balance).where(_A.c.id == account_id)
    ).one()
    status = session.execute(select(_G.c.status).where(_G.c.id == entry.agent_id)).scalar_one()
    return Charge(
        entry_id=entry.id,
        allowed=entry.refused_reason is None,
        reason=entry.refused_reason,
        amount=entry.amount,
        from_plan=sum(a for book, a in moved if book == "plan"),
        from_wallet=sum(a for book, a in moved if book == "wallet"),
        plan_balance=acc.plan_balance,
        wallet_balance=acc.wallet_balance,
        agent_status=status,
        replayed=True,
    )


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
    charged = dict.fromkeys(("plan", "wallet"), 0)
    for book, value in session.execute(
        select(_T.c.debit_book, _T.c.amount).where(_T.c.entry_id == entry_id)
    ):
        charged[book] += value
    for book, value in session.execute(
        select(_T.c.credit_book, _T.c.amount)
        .join(_E, _E.c.id == _T.c.entry_id)
        .where(_E.c.refund_of == entry_id)
    ):
        charged[book] -= value
    if amount > charged["plan"] + charged["wallet"]:
        raise InvalidInput("A refund cannot be more than what is left of the charge.")
    to_wallet = min(amount, charged["wallet"])
    to_plan = amount - to_wallet
    entry = post_entry(
        session,
        account,
        "refund",
        [("usage", "wallet", to_wallet), ("usage", "plan", to_plan)],
        now=now,
        idempotency_key=key,
        refund_of=entry_id,
        agent_id=original.agent_id,
        call_id=original.call_id,
        amount=amount,
    )
    agent = session.get(Agent, original.agent_id)
    if agent is not None and agent.month == month_key(original.created_at, account.timezone):
        agent.month_spend = max(0, agent.month_spend - amount)
    resume_agents(session, account, now, "refund", reasons=("wallet_empty", "plan_exhausted"))
    return Refund(entry.id, amount, to_plan, to_wallet)


def _refund_view(session: Session, entry: Entry, *, replayed: bool) -> Refund:
    moved = session.execute(
        select(_T.c.credit_book, _T.c.amount).where(_T.c.entry_id == entry.id)
    ).all()
    return Refund(
        entry.id,
        entry.amount,
        to_plan=sum(a for book, a in moved if book == "plan"),
        to_wallet=sum(a for book, a in moved if book == "wallet"),
        replayed=replayed,
    )
