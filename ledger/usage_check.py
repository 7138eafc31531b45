"""The usage rollup recomputed from the journal: what `ledger verify` compares it with, and
what the migration that created it filled it with.

A charge counts on the local day (account time zone) of its entry, in its unit, for its
agent; a refund counts against the day, unit and agent of the charge it refunds. The time
zone of an account cannot change once its cycles started (ledger/accounts.py), so the day
a charge counts on never moves.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.orm import aliased

from ledger.cycles import zone
from ledger.journal import USAGE_KINDS
from ledger.models import Account, Entry, Transfer, UsageDay

#: (account, day, agent, unit)
Key = tuple[int, date, int, str]
#: [quantity, from plan, from wallet]
Sums = list[int]


def journal_usage(conn: Connection, account_id: int | None = None) -> dict[Key, Sums]:
    """Each rollup row as the journal says it should be (rows that net to nothing left out).

    Reads each usage transfer once, in order, streaming: the cost of `ledger verify`.
    """
    zones = {
        acc: zone(tz)
        for acc, tz in conn.execute(
            select(Account.id, Account.timezone).where(
                True if account_id is None else Account.id == account_id
            )
        )
    }
    original = aliased(Entry)  # the charge a refund gives back
    stmt = (
        select(
            Entry.id,
            Entry.account_id,
            Entry.kind,
            Entry.agent_id,
            Entry.created_at,
            Entry.unit,
            Entry.quantity,
            original.created_at,
            original.unit,
            Transfer.debit_book,
            Transfer.credit_book,
            Transfer.amount,
        )
        .join(Transfer, Transfer.entry_id == Entry.id)
        .outerjoin(original, original.id == Entry.refund_of)
        .where(Entry.kind.in_(USAGE_KINDS))
        .order_by(Entry.id)
    )
    if account_id is not None:
        stmt = stmt.where(Entry.account_id == account_id)
    sums: dict[Key, Sums] = defaultdict(lambda: [0, 0, 0])
    counted = None  # the last entry whose quantity was counted (rows come in entry order)
    for row in _stream(conn, stmt):
        entry_id, acc, kind, agent, at, unit, quantity, refunded_at, refunded_unit = row[:9]
        debit, credit, amount = row[9:]
        if kind == "refund":
            at, unit = refunded_at, refunded_unit
        day = at.astimezone(zones[acc]).date()
        key = (acc, day, agent, unit)
        total = sums[key]
        if kind == "usage" and entry_id != counted:
            counted = entry_id
            total[0] += quantity or 0
        if credit == "usage" and debit in ("plan", "wallet"):
            total[1 if debit == "plan" else 2] += amount
        elif debit == "usage" and credit in ("plan", "wallet"):
            total[1 if credit == "plan" else 2] -= amount
    return {key: value for key, value in sums.items() if any(value)}


def _stream(conn: Connection, stmt: Any) -> Iterator[Any]:
    result = conn.execute(stmt.execution_options(yield_per=10_000))
    try:
        yield from result
    finally:
        result.close()


def rollup_rows(conn: Connection, account_id: int | None = None) -> dict[Key, Sums]:
    """The rollup as it is stored (rows that net to nothing left out)."""
    u = UsageDay
    stmt = select(u.account_id, u.day, u.agent_id, u.unit, u.quantity, u.from_plan, u.from_wallet)
    if account_id is not None:
        stmt = stmt.where(u.account_id == account_id)
    found = {}
    for acc, day, agent, unit, quantity, plan, wallet in conn.execute(stmt):
        if quantity or plan or wallet:
            found[(acc, day, agent, unit)] = [quantity, plan, wallet]
    return found


@dataclass(frozen=True)
class UsageMismatch:
    account_id: int
    day: date
    agent_id: int
    unit: str
    #: (quantity, from plan, from wallet)
    rollup: tuple[int, int, int]
    journal: tuple[int, int, int]

    def __str__(self) -> str:
        return (
            f"account {self.account_id}: usage of agent {self.agent_id} on {self.day} "
            f"({self.unit}) is {self._text(self.rollup)} in the rollup but "
            f"{self._text(self.journal)} in the journal"
        )

    @staticmethod
    def _text(sums: tuple[int, int, int]) -> str:
        return f"quantity {sums[0]}, plan {sums[1]}, wallet {sums[2]}"


def check(conn: Connection, account_id: int | None = None) -> list[UsageMismatch]:
    """Every rollup row that differs from the journal, or an empty list."""
    expected = journal_usage(conn, account_id)
    stored = rollup_rows(conn, account_id)
    found = []
    for key in sorted(set(expected) | set(stored)):
        want, have = expected.get(key, [0, 0, 0]), stored.get(key, [0, 0, 0])
        if want != have:
            found.append(UsageMismatch(*key, rollup=tuple(have), journal=tuple(want)))  # type: ignore[arg-type]
    return found


def rebuild(conn: Connection, account_id: int | None = None) -> int:
    """Replace the rollup with what the journal says (the migration that created it fills it
    this way). Returns the rows written."""
    rows = journal_usage(conn, account_id)
    clear = delete(UsageDay.__table__)
    if account_id is not None:
        clear = clear.where(UsageDay.account_id == account_id)
    conn.execute(clear)
    values = [
        {"account_id": acc, "day": day, "agent_id": agent, "unit": unit,
         "quantity": q, "from_plan": plan, "from_wallet": wallet}
        for (acc, day, agent, unit), (q, plan, wallet) in rows.items()
    ]  # fmt: skip
    for start in range(0, len(values), 5_000):
        conn.execute(insert(UsageDay.__table__), values[start : start + 5_000])
    return len(values)
