"""Account statements: every entry with its time, kind, agent, amounts per source and the
running balances they leave.

Read in pages of entries (each page one query, the entry's transfers summed by the
database), so a statement of millions of entries streams in flat memory.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TextIO

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from ledger.models import Agent, Entry, Transfer
from ledger.units import format_credits

#: Entries read per query.
PAGE = 5_000

#: Told (entries done, entries in all) as the statement goes.
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class StatementLine:
    entry_id: int
    time: datetime
    kind: str
    agent: str
    detail: str
    plan_change: int
    wallet_change: int
    plan_balance: int
    wallet_balance: int


def _change(book: str) -> object:
    """What an entry's transfers add to `book` (negative when they take from it)."""
    return func.coalesce(
        func.sum(
            case((Transfer.credit_book == book, Transfer.amount), else_=0)
            - case((Transfer.debit_book == book, Transfer.amount), else_=0)
        ),
        0,
    )


def count_entries(session: Session, account_id: int) -> int:
    return session.execute(
        select(func.count()).select_from(Entry).where(Entry.account_id == account_id)
    ).scalar_one()


def lines(
    session: Session, account_id: int, *, progress: Progress | None = None
) -> Iterator[StatementLine]:
    """The account's journal in order, with running plan and wallet balances."""
    names = dict(
        session.execute(select(Agent.id, Agent.name).where(Agent.account_id == account_id)).all()
    )
    total = count_entries(session, account_id) if progress is not None else 0
    page = (
        select(
            Entry.id, Entry.created_at, Entry.kind, Entry.agent_id, Entry.unit, Entry.quantity,
            Entry.refused_reason, Entry.memo, _change("plan"), _change("wallet"),
        )
        .outerjoin(Transfer, Transfer.entry_id == Entry.id)
        .where(Entry.account_id == account_id)
        .group_by(Entry.id)
        .order_by(Entry.id)
        .limit(PAGE)
    )  # fmt: skip
    plan = wallet = done = 0
    after = -1
    while True:
        rows = session.execute(page.where(Entry.id > after)).all()
        for entry_id, at, kind, agent_id, unit, quantity, refused, memo, dplan, dwallet in rows:
            plan += int(dplan)
            wallet += int(dwallet)
            detail = memo or ""
            if unit:
                detail = f"{quantity} {unit}"
                if refused:
                    detail += f" refused: {refused}"
            yield StatementLine(
                entry_id, at, kind, names.get(agent_id, "") if agent_id else "", detail,
                int(dplan), int(dwallet), plan, wallet,
            )  # fmt: skip
        done += len(rows)
        if progress is not None:
            progress(done, total)
        if len(rows) < PAGE:
            return
        after = rows[-1][0]


HEADER = ["entry", "time", "kind", "agent", "detail", "plan_change", "wallet_change",
          "plan_balance", "wallet_balance"]  # fmt: skip


def write_csv(
    session: Session, account_id: int, out: TextIO, *, progress: Progress | None = None
) -> int:
    """Write the statement to `out` as CSV, credits as decimals ('12.5'); how many lines."""
    writer = csv.writer(out)
    writer.writerow(HEADER)
    count = 0
    for line in lines(session, account_id, progress=progress):
        writer.writerow(
            [
                line.entry_id,
                line.time.isoformat(),
                line.kind,
                line.agent,
                line.detail,
                format_credits(line.plan_change).replace(",", ""),
                format_credits(line.wallet_change).replace(",", ""),
                format_credits(line.plan_balance).replace(",", ""),
                format_credits(line.wallet_balance).replace(",", ""),
            ]
        )
        count += 1
    return count


def to_csv(session: Session, account_id: int) -> str:
    """The statement as one CSV text (a small account's; `write_csv` streams)."""
    out = io.StringIO()
    write_csv(session, account_id, out)
    return out.getvalue()
