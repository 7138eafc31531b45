"""`ledger verify`: every cached balance equals the sum of its postings, and the usage
rollup equals the usage in the journal."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, func, select
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


def book_sums(session: Session, account_id: int | None = None) -> dict[tuple[int, str], int]:
    """(account, book) -> credits in minus credits out, from the transfers alone."""
    sums: dict[tuple[int, str], int] = {}
    for book in CACHED:
        stmt = select(
            Transfer.account_id,
            func.sum(
                case((Transfer.credit_book == book, Transfer.amount), else_=0)
                - case((Transfer.debit_book == book, Transfer.amount), else_=0)
            ),
        ).group_by(Transfer.account_id)
        if account_id is not None:
            stmt = stmt.where(Transfer.account_id == account_id)
        for acc, total in session.execute(stmt):
            sums[(acc, book)] = int(total or 0)
    return sums


def verify(session: Session, account_id: int | None = None) -> list[Mismatch | UsageMismatch]:
    """Every difference between a cached balance and its postings, and between the usage
    rollup and the journal, or an empty list.

    Entries cannot be unbalanced (each transfer debits one book and credits another by the
    same positive amount, which the database enforces), and balances cannot be negative
    (CHECK constraints), so the caches are what is left to check.
    """
    sums = book_sums(session, account_id)
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
    found.extend(check(session.connection(), account_id))
    return found
