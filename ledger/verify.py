"""`ledger verify`: every cached balance equals the sum of its postings, and the usage
rollup equals the usage in the journal."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session

from ledger.journal import CACHED
from ledger.models import Account, Transfer
from ledger.usage_check import UsageMismatch, check


@dataclass(frozen=True)
class Mismatch:
    account_id: int
    account_name: str
    book: str
    cached: int
    posted: int

    def __str__(self) -> str:
        return (
            f"account {self.account_id} ({self.account_name}): {self.book} balance is "
            f"{self.cached} but its postings sum to {self.posted}"
        )


#: Transfers summed per query when the whole journal is checked: each chunk is a range of
#: ids (a scan of the primary key), so memory stays flat however long the journal is.
CHUNK = 200_000

#: Told (steps done, steps in all) as the check goes: a step is a chunk of transfers
#: summed, or an account whose usage rollup was checked.
Progress = Callable[[int, int], None]


def _chunks(session: Session, account_id: int | None) -> list[Select[Any]]:
    """The queries that sum the transfers: one per range of ids, or the account's."""
    columns = [
        Transfer.account_id,
        *(
            func.sum(
                case((Transfer.credit_book == book, Transfer.amount), else_=0)
                - case((Transfer.debit_book == book, Transfer.amount), else_=0)
            )
            for book in CACHED
        ),
    ]
    if account_id is not None:
        return [select(*columns).where(Transfer.account_id == account_id)]
    low, high = session.execute(select(func.min(Transfer.id), func.max(Transfer.id))).one()
    low, high = low or 0, high or 0
    return [
        select(*columns).where(Transfer.id >= start, Transfer.id < start + CHUNK)
        for start in range(low, high + 1, CHUNK)
    ]


def book_sums(
    session: Session, account_id: int | None = None, *, step: Callable[[], None] | None = None
) -> dict[tuple[int, str], int]:
    """(account, book) -> credits in minus credits out, from the transfers alone. `step()`
    is called after each chunk."""
    sums: dict[tuple[int, str], int] = {}
    for chunk in _chunks(session, account_id):
        for acc, *totals in session.execute(chunk.group_by(Transfer.account_id)):
            for book, value in zip(CACHED, totals, strict=True):
                sums[(acc, book)] = sums.get((acc, book), 0) + int(value or 0)
        if step is not None:
            step()
    return sums


def verify(
    session: Session, account_id: int | None = None, *, progress: Progress | None = None
) -> list[Mismatch | UsageMismatch]:
    """Every difference between a cached balance and its postings, and between the usage
    rollup and the journal, or an empty list.

    Entries cannot be unbalanced (each transfer debits one book and credits another by the
    same positive amount, which the database enforces), and balances cannot be negative
    (CHECK constraints), so the caches are what is left to check. The journal is read in
    chunks of transfers (memory stays flat); `progress` hears how far the balances got.
    """
    accounts = list(
        session.execute(
            select(Account.id)
            .where(True if account_id is None else Account.id == account_id)
            .order_by(Account.id)
        ).scalars()
    )
    total = len(_chunks(session, account_id)) + len(accounts)
    done = 0

    def step() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    sums = book_sums(session, account_id, step=step)
    stmt = select(Account).order_by(Account.id)
    if account_id is not None:
        stmt = stmt.where(Account.id == account_id)
    found: list[Mismatch | UsageMismatch] = []
    for account in session.execute(stmt).scalars():
        for book, column in CACHED.items():
            cached = getattr(account, column)
            posted = sums.get((account.id, book), 0)
            if cached != posted:
                found.append(Mismatch(account.id, account.name, book, cached, posted))
    # The usage rollup account by account: memory holds one account's rows, not all.
    for acc in accounts:
        found.extend(check(session.connection(), acc))
        step()
    return found
