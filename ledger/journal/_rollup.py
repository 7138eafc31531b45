"""The usage rollup's one write, private to the journal: the gate runs it for every posting
that counts as usage, in the posting's transaction, so the rollup cannot disagree with the
journal (`ledger verify` checks that it does not).

One statement per posting: a charge adds its quantity and what it took from each source to
its agent's row of the day (an UPSERT); a refund subtracts what it gave back to each source
from the row of the charge it refunds (an UPDATE: that row exists, and never goes below
zero, which the table's CHECK holds). On PostgreSQL a charge's UPSERT is part of the
posting's one statement (`upsert_after`, in ledger/journal/_sql.py): no round trip of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from typing import Any, NamedTuple

from sqlalchemy import (
    BigInteger,
    Connection,
    Date,
    Integer,
    String,
    bindparam,
    exists,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.selectable import CTE

from ledger.journal._driver import DriverStatement
from ledger.models import UsageDay

usage_days = UsageDay.__table__
#: The entry kinds that count as usage: charges, and the refunds of charges.
KINDS = ("usage", "refund")


class UsageKey(NamedTuple):
    """The rollup row a posting counts in: the local day of the charge, and its unit."""

    day: date
    unit: str


def _upsert(insert: Any) -> DriverStatement:
    new = insert(usage_days).values(
        account_id=bindparam("account_id", type_=Integer),
        day=bindparam("day", type_=Date),
        agent_id=bindparam("agent_id", type_=Integer),
        unit=bindparam("unit", type_=String),
        quantity=bindparam("quantity", type_=BigInteger),
        from_plan=bindparam("from_plan", type_=BigInteger),
        from_wallet=bindparam("from_wallet", type_=BigInteger),
    )
    c = usage_days.c
    return DriverStatement(
        new.on_conflict_do_update(
            index_elements=[c.account_id, c.day, c.agent_id, c.unit],
            set_={
                "quantity": c.quantity + new.excluded.quantity,
                "from_plan": c.from_plan + new.excluded.from_plan,
                "from_wallet": c.from_wallet + new.excluded.from_wallet,
            },
        )
    )


def upsert_after(entry: CTE) -> Any:
    """PostgreSQL: the charge's UPSERT, run only if the posting's entry was written (the
    `entry` CTE of its one statement). Parameters: `account_id`, `agent_id` and
    `usage_day`, `usage_unit`, `usage_quantity`, `usage_plan`, `usage_wallet`."""
    values = select(
        bindparam("account_id", type_=Integer),
        bindparam("usage_day", type_=Date),
        bindparam("agent_id", type_=Integer),
        bindparam("usage_unit", type_=String),
        bindparam("usage_quantity", type_=BigInteger),
        bindparam("usage_plan", type_=BigInteger),
        bindparam("usage_wallet", type_=BigInteger),
    ).where(exists(select(entry.c.id)))
    new = postgresql.insert(usage_days).from_select(
        ["account_id", "day", "agent_id", "unit", "quantity", "from_plan", "from_wallet"], values
    )
    c = usage_days.c
    return new.on_conflict_do_update(
        index_elements=[c.account_id, c.day, c.agent_id, c.unit],
        set_={
            "quantity": c.quantity + new.excluded.quantity,
            "from_plan": c.from_plan + new.excluded.from_plan,
            "from_wallet": c.from_wallet + new.excluded.from_wallet,
        },
    )


def upsert_params(key: UsageKey, quantity: int, moves: Sequence[tuple[str, str, int]]) -> dict:
    """The parameters of `upsert_after`, or an empty dict when the posting gives usage back
    (a refund: `record` updates its row instead)."""
    from_plan, from_wallet = used(moves)
    if from_plan < 0 or from_wallet < 0:
        return {}
    return {"usage_day": key.day, "usage_unit": key.unit, "usage_quantity": quantity,
            "usage_plan": from_plan, "usage_wallet": from_wallet}  # fmt: skip


# The UPSERT is spelled per database (both say ON CONFLICT ... DO UPDATE).
UPSERT = {"sqlite": _upsert(sqlite.insert), "postgresql": _upsert(postgresql.insert)}
#: The columns of a usage rollup row, in the order of the UPSERT's rows.
COLUMNS = ("account_id", "day", "agent_id", "unit", "quantity", "from_plan", "from_wallet")


def upsert_from(recordset: Callable[[list[tuple[str, Any]]], str]) -> str:
    """PostgreSQL: the UPSERT of many rows (each its own key) in one statement, over the
    rows `recordset` reads (ledger/journal/_sql.py: JSON, keyed as COLUMNS)."""
    return (
        f"INSERT INTO usage_days ({', '.join(COLUMNS)})"
        f" SELECT {', '.join(COLUMNS)} FROM "
        + recordset([(name, usage_days.c[name]) for name in COLUMNS])
        + " ON CONFLICT (account_id, day, agent_id, unit) DO UPDATE SET"
        " quantity = usage_days.quantity + excluded.quantity,"
        " from_plan = usage_days.from_plan + excluded.from_plan,"
        " from_wallet = usage_days.from_wallet + excluded.from_wallet"
    )


_c = usage_days.c
_GIVE_BACK = DriverStatement(
    update(usage_days)
    .where(
        _c.account_id == bindparam("account_id", type_=Integer),
        _c.day == bindparam("day", type_=Date),
        _c.agent_id == bindparam("agent_id", type_=Integer),
        _c.unit == bindparam("unit", type_=String),
    )
    .values(
        from_plan=_c.from_plan - bindparam("back_plan", type_=BigInteger),
        from_wallet=_c.from_wallet - bindparam("back_wallet", type_=BigInteger),
    )
)


def used(moves: Sequence[tuple[str, str, int]]) -> tuple[int, int]:
    """What the moves took from (plan, wallet) into usage, net of what they gave back."""
    net = {"plan": 0, "wallet": 0}
    for debit, credit, amount in moves:
        if credit == "usage" and debit in net:
            net[debit] += amount
        elif debit == "usage" and credit in net:
            net[credit] -= amount
    return net["plan"], net["wallet"]


def record(
    conn: Connection,
    account_id: int,
    agent_id: int,
    key: UsageKey,
    quantity: int,
    moves: Sequence[tuple[str, str, int]],
) -> None:
    """Add the posting to its rollup row (one statement)."""
    from_plan, from_wallet = used(moves)
    params = {"account_id": account_id, "day": key.day, "agent_id": agent_id, "unit": key.unit}
    if from_plan >= 0 and from_wallet >= 0:
        params.update(quantity=quantity, from_plan=from_plan, from_wallet=from_wallet)
        UPSERT[conn.dialect.name].rowcount(conn, params)
        return
    params.update(back_plan=-from_plan, back_wallet=-from_wallet)
    if _GIVE_BACK.rowcount(conn, params) != 1:
        raise RuntimeError(
            f"No usage of agent {agent_id} on {key.day} to refund: run ledger verify."
        )
