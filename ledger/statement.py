"""Account statements: every entry with its time, kind, agent, amounts per source and the
running balances they leave."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.models import Agent, Entry, Transfer
from ledger.units import format_credits


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


def lines(session: Session, account_id: int) -> Iterator[StatementLine]:
    """The account's journal in order, with running plan and wallet balances."""
    names = dict(
        session.execute(select(Agent.id, Agent.name).where(Agent.account_id == account_id)).all()
    )
    changes: dict[int, dict[str, int]] = {}
    for entry_id, debit, credit, amount in session.execute(
        select(Transfer.entry_id, Transfer.debit_book, Transfer.credit_book, Transfer.amount).where(
            Transfer.account_id == account_id
        )
    ):
        change = changes.setdefault(entry_id, {"plan": 0, "wallet": 0})
        if debit in change:
            change[debit] -= amount
        if credit in change:
            change[credit] += amount
    plan = wallet = 0
    for entry in session.execute(
        select(Entry).where(Entry.account_id == account_id).order_by(Entry.id)
    ).scalars():
        change = changes.get(entry.id, {"plan": 0, "wallet": 0})
        plan += change["plan"]
        wallet += change["wallet"]
        detail = entry.memo or ""
        if entry.unit:
            detail = f"{entry.quantity} {entry.unit}"
            if entry.refused_reason:
                detail += f" refused: {entry.refused_reason}"
        yield StatementLine(
            entry.id,
            entry.created_at,
            entry.kind,
            names.get(entry.agent_id, "") if entry.agent_id else "",
            detail,
            change["plan"],
            change["wallet"],
            plan,
            wallet,
        )


def to_csv(session: Session, account_id: int) -> str:
    """The statement as CSV, credits written as decimals ('12.5')."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["entry", "time", "kind", "agent", "detail", "plan_change", "wallet_change",
         "plan_balance", "wallet_balance"]
    )  # fmt: skip
    for line in lines(session, account_id):
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
    return out.getvalue()
