"""Account statements: every entry with its time, kind, agent, amounts per source and the
running balances they leave; the whole journal, or one calendar month of it."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from ledger.cycles import local_midnight
from ledger.errors import InvalidInput, UnknownAccount
from ledger.models import Account, Agent, Entry, Transfer
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


def lines(
    session: Session,
    account_id: int,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Iterator[StatementLine]:
    """The account's journal in order, with running plan and wallet balances; only the
    entries from `since` (the balances start from what came before) until `until`."""
    names = dict(
        session.execute(select(Agent.id, Agent.name).where(Agent.account_id == account_id)).all()
    )
    shown = [Entry.account_id == account_id]
    if since is not None:
        shown.append(Entry.created_at >= since)
    if until is not None:
        shown.append(Entry.created_at < until)
    changes: dict[int, dict[str, int]] = {}
    for entry_id, debit, credit, amount in session.execute(
        select(Transfer.entry_id, Transfer.debit_book, Transfer.credit_book, Transfer.amount)
        .join(Entry, Entry.id == Transfer.entry_id)
        .where(Transfer.account_id == account_id, *shown)
    ):
        change = changes.setdefault(entry_id, {"plan": 0, "wallet": 0})
        if debit in change:
            change[debit] -= amount
        if credit in change:
            change[credit] += amount
    plan = wallet = 0
    if since is not None:
        plan, wallet = _balances_before(session, account_id, since)
    for entry in session.execute(select(Entry).where(*shown).order_by(Entry.id)).scalars():
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


def _balances_before(session: Session, account_id: int, moment: datetime) -> tuple[int, int]:
    """Plan and wallet as the entries before `moment` left them."""
    sums = []
    for book in ("plan", "wallet"):
        sums.append(
            session.execute(
                select(
                    func.coalesce(
                        func.sum(
                            case((Transfer.credit_book == book, Transfer.amount), else_=0)
                            - case((Transfer.debit_book == book, Transfer.amount), else_=0)
                        ),
                        0,
                    )
                )
                .join(Entry, Entry.id == Transfer.entry_id)
                .where(Transfer.account_id == account_id, Entry.created_at < moment)
            ).scalar_one()
        )
    return int(sums[0]), int(sums[1])


def to_csv(
    session: Session,
    account_id: int,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> str:
    """The statement as CSV, credits written as decimals ('12.5'); a month's statement
    when `since` and `until` bound it."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["entry", "time", "kind", "agent", "detail", "plan_change", "wallet_change",
         "plan_balance", "wallet_balance"]
    )  # fmt: skip
    for line in lines(session, account_id, since=since, until=until):
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


def month_statement(session: Session, account_id: int, month: str) -> str:
    """The statement of one calendar month ('2026-11') of the account's time zone, as CSV:
    its entries, the balances running on from what the months before left."""
    account = session.get(Account, account_id)
    if account is None:
        raise UnknownAccount(f"No account {account_id}.")
    try:
        first = date.fromisoformat(f"{month}-01")
    except ValueError as exc:
        raise InvalidInput(f"{month!r} is not a month: use YYYY-MM, for example 2026-11.") from exc
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return to_csv(
        session,
        account_id,
        since=local_midnight(first, account.timezone),
        until=local_midnight(following, account.timezone),
    )
