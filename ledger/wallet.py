"""The wallet: credits bought by top-ups (they do not expire) and admin adjustments."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from ledger import audit
from ledger.agent_status import resume_agents
from ledger.audit import Actor
from ledger.cycles import utcnow
from ledger.errors import IdempotencyConflict, InsufficientCredits, InvalidInput
from ledger.journal import Posting, find_entry, lock_account, post
from ledger.models import Entry
from ledger.names import check_text
from ledger.recovery import note_recovery
from ledger.units import format_credits

_SOURCES = {"topup": "topups", "adjustment": "adjustments"}


@dataclass(frozen=True)
class WalletChange:
    entry_id: int | None
    amount: int
    wallet_balance: int
    shortfall: int = 0
    replayed: bool = False


def credit_wallet(
    session: Session,
    account_id: int,
    amount: int,
    *,
    key: str,
    kind: str = "topup",
    memo: str | None = None,
    actor: Actor | None = None,
    now: datetime | None = None,
) -> WalletChange:
    """Add `amount` milli-credits to the wallet, once per `key` (a top-up is keyed on its
    Stripe payment, an adjustment on the admin's own key). Resumes `use_balance` agents
    that stopped because the wallet was empty. An adjustment goes into the audit trail."""
    if kind not in _SOURCES:
        raise InvalidInput(f"Unknown wallet credit kind {kind!r}.")
    memo = _memo(memo)
    if not isinstance(amount, int) or amount <= 0:
        raise InvalidInput("A wallet credit must be more than zero credits.")
    now = now or utcnow()
    account = lock_account(session, account_id)
    existing = find_entry(session, account_id, key)
    if existing is not None:
        return _replay(existing, kind, amount, account.wallet_balance)
    posted = post(
        session,
        Posting(
            account_id, kind, [(_SOURCES[kind], "wallet", amount)], now,
            idempotency_key=key, memo=memo,
        ),
    )  # fmt: skip
    _audit(session, account_id, kind, amount, key, memo, actor, now)
    note_recovery(session, account, now)
    resume_agents(
        session, account, now, "wallet_credit", reasons=("wallet_empty", "account_budget")
    )
    return WalletChange(posted.entry_id, amount, account.wallet_balance)


def debit_wallet(
    session: Session,
    account_id: int,
    amount: int,
    *,
    key: str,
    kind: str = "adjustment",
    memo: str | None = None,
    partial: bool = False,
    actor: Actor | None = None,
    now: datetime | None = None,
) -> WalletChange:
    """Take `amount` milli-credits out of the wallet, once per `key`.

    The wallet never goes negative: without `partial` a debit larger than the wallet is
    refused; with it (a refunded top-up) what the wallet holds is taken and the rest is
    returned as `shortfall` for the caller to record and alert.
    """
    if kind not in _SOURCES:
        raise InvalidInput(f"Unknown wallet debit kind {kind!r}.")
    memo = _memo(memo)
    if not isinstance(amount, int) or amount <= 0:
        raise InvalidInput("A wallet debit must be more than zero credits.")
    now = now or utcnow()
    account = lock_account(session, account_id)
    existing = find_entry(session, account_id, key)
    if existing is not None:
        return _replay(existing, kind, amount, account.wallet_balance, partial=partial)
    taken = amount
    if amount > account.wallet_balance:
        if not partial:
            raise InsufficientCredits(
                f"The wallet holds {format_credits(account.wallet_balance)} credits, less than"
                f" the {format_credits(amount)} to take."
            )
        taken = account.wallet_balance
    posted = post(
        session,
        Posting(
            account_id, kind, [("wallet", _SOURCES[kind], taken)], now,
            idempotency_key=key, memo=memo, amount=taken,
        ),
    )  # fmt: skip
    _audit(session, account_id, kind, -taken, key, memo, actor, now)
    return WalletChange(posted.entry_id, taken, account.wallet_balance, shortfall=amount - taken)


def _audit(
    session: Session,
    account_id: int,
    kind: str,
    amount: int,
    key: str,
    memo: str | None,
    actor: Actor | None,
    now: datetime,
) -> None:
    """A manual adjustment is a setting a person chose: audited (top-ups are payments)."""
    if kind == "adjustment":
        audit.record(
            session, account_id, actor, "wallet.adjustment", {},
            {"amount": amount, "key": key, "memo": memo}, now=now, always=True,
        )  # fmt: skip


def _memo(memo: str | None) -> str | None:
    """A reason kept in the journal (an admin's, or a payment's reference)."""
    if memo is None:
        return None
    return check_text(memo, what="A reason", max_length=500, required=False) or None


def _replay(
    entry: Entry, kind: str, amount: int, wallet_balance: int, *, partial: bool = False
) -> WalletChange:
    """The change a key already made. The same key for another request is a conflict."""
    short_ok = partial and entry.amount < amount
    if entry.kind != kind or (entry.amount != amount and not short_ok):
        raise IdempotencyConflict(f"The key {entry.idempotency_key!r} was used for another change.")
    return WalletChange(
        entry.id, entry.amount, wallet_balance, shortfall=amount - entry.amount, replayed=True
    )
