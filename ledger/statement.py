"""Account statements: every entry with its time, kind, agent, amounts per source and the
running balances they leave; the whole journal, or one calendar month of it.

Read in pages of entries (each page one query, the entry's transfers summed by the
database), so a statement of millions of entries streams in flat memory.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import TextIO

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from ledger.cycles import local_midnight
from ledger.errors import InvalidInput, UnknownAccount
from ledger.models import Account, Agent, Entry, Transfer
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


def lines(
    session: Session,
    account_id: int,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    progress: Progress | None = None,
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
    total = 0
    if progress is not None:
        total = session.execute(select(func.count()).select_from(Entry).where(*shown)).scalar_one()
    page = (
        select(
            Entry.id, Entry.created_at, Entry.kind, Entry.agent_id, Entry.unit, Entry.quantity,
            Entry.refused_reason, Entry.memo, _change("plan"), _change("wallet"),
        )
        .outerjoin(Transfer, Transfer.entry_id == Entry.id)
        .where(*shown)
        .group_by(Entry.id)
        .order_by(Entry.id)
        .limit(PAGE)
    )  # fmt: skip
    plan = wallet = done = 0
    if since is not None:
        plan, wallet = _balances_before(session, account_id, since)
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


HEADER = ["entry", "time", "kind", "agent", "detail", "plan_change", "wallet_change",
          "plan_balance", "wallet_balance"]  # fmt: skip


def write_csv(
    session: Session,
    account_id: int,
    out: TextIO,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    progress: Progress | None = None,
) -> int:
    """Write the statement to `out` as CSV, credits as decimals ('12.5'), a month's when
    `since` and `until` bound it; how many lines."""
    writer = csv.writer(out)
    writer.writerow(HEADER)
    count = 0
    for line in lines(session, account_id, since=since, until=until, progress=progress):
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


def to_csv(
    session: Session,
    account_id: int,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> str:
    """The statement as one CSV text (`write_csv` streams it instead)."""
    out = io.StringIO()
    write_csv(session, account_id, out, since=since, until=until)
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
