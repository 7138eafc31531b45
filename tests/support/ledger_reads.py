"""Reads the ledger tests share: what a user would see after a step (a wallet balance, the
alerts waiting to be posted)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from ledger import outbox
from ledger.accounts import get_account
from ledger.db import transaction


def pending_alerts(sessions: sessionmaker[Session], kind: str) -> list[dict[str, Any]]:
    """The payloads of the alerts of `kind` waiting in the outbox."""
    return transaction(sessions, lambda s: [m.payload for m in outbox.pending(s) if m.kind == kind])


def wallet_of(sessions: sessionmaker[Session], account_id: int) -> int:
    """The account's wallet balance in milli-credits."""
    return transaction(sessions, lambda s: get_account(s, account_id).wallet_balance)
